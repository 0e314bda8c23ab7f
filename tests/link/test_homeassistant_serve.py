"""Home Assistant inside `limen serve` (`homeassistant = true`), over a real TLS Mosquitto."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from limen.audit.event import Event, EventKind
from limen.cli.serve import _start_link
from limen.config import load_settings
from limen.errors import ConfigError
from limen.link import pki
from limen.link.loop import LinkLoop
from limen.link.mqtt import MqttLink
from limen.service import close_app, create_app

from .broker import Broker, start_broker
from .test_homeassistant import Seen
from .test_run import LOCK, provision

BASE = f"limen/{LOCK}/ha"


@pytest.fixture  # one per test: retained discovery must not carry into the next test
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from start_broker(tmp_path_factory.mktemp("broker"))


class Recorded(Seen):
    """`Seen`, also keeping every message in order."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, bytes]] = []

    def put(self, topic: str, payload: bytes) -> None:
        self.log.append((topic, payload))
        super().put(topic, payload)


def home_assistant(broker: Broker, seen: Seen) -> MqttLink:
    """Home Assistant's own client (CN homeassistant), subscribed as its MQTT integration is."""
    return MqttLink("homeassistant", pki.client_context(broker.ca_file, *broker.client("homeassistant")),
                    broker.host, broker.port, subscriptions=("homeassistant/#", f"{BASE}/#"),
                    on_message=seen.put).connect(timeout=5)


def remote_commands(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["kind"] == "remote_command" and r["actor"] == "remote:homeassistant"]


def test_limen_serve_with_homeassistant_publishes_discovery_and_state_and_refuses_unlock(
        broker: Broker, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "data"
    provision(d, tmp_path, broker, Ed25519PrivateKey.generate())
    settings = load_settings(d, link_broker=f"{broker.host}:{broker.port}", homeassistant=True,
                             link_cloud_may_lock=True)  # Home Assistant may lock (unsigned) only where allowed
    app = create_app(settings)
    ctx = app.state.ctx
    seen = Recorded()
    ha_client = home_assistant(broker, seen)
    loop = _start_link(ctx)  # what `limen serve` starts
    assert loop is not None and loop.homeassistant is not None
    assert "Home Assistant discovery on" in capsys.readouterr().out
    try:
        seen.until(f"{BASE}/state", b"LOCKED", timeout=60)
        seen.until(f"{BASE}/lockdown", b"OFF")
        seen.until(f"{BASE}/tamper", b"OFF")
        config = json.loads(seen.last[f"homeassistant/lock/limen_{LOCK}/lock/config"])
        assert config["command_topic"] == f"{BASE}/set" and config["state_topic"] == f"{BASE}/state"
        assert config["state_opening"] == "OPENING" and config["state_open"] == "OPEN"
        for entity in ("binary_sensor/limen_{}/tamper", "binary_sensor/limen_{}/lockdown", "event/limen_{}/activity"):
            assert f"homeassistant/{entity.format(LOCK)}/config" in seen.last

        ha_client.publish(f"{BASE}/set", b"UNLOCK")  # Home Assistant cannot sign: refused and audited
        ha_client.publish(f"{BASE}/set", b"LOCK")  # the safe direction runs
        deadline = time.monotonic() + 30
        while len(remote_commands(ctx.runtime.audit.tail(50))) < 2:
            assert time.monotonic() < deadline, "Home Assistant's commands were not audited"
            time.sleep(0.05)
        unlock, lock = remote_commands(ctx.runtime.audit.tail(50))
        assert (unlock["outcome"], unlock["reason"], unlock["data"]["action"]) == ("refused", "unsigned", "unlock")
        assert (lock["outcome"], lock["data"]["action"]) == ("executed", "lock")
        with ctx.lock.serialised():
            assert ctx.runtime.controller.door.is_locked

        with ctx.lock.serialised():
            ctx.runtime.controller.door.inner.door_open = True  # the simulated contact opens (the service polls)
        ctx.lock.tick()
        seen.until(f"{BASE}/state", b"OPEN")
        while b'"event_type": "door_state"' not in seen.last.get(f"{BASE}/activity", b""):  # after its alarm's
            topic, payload = seen.messages.get(timeout=10)
            seen.last[topic] = payload
        kinds = [json.loads(p)["event_type"] for t, p in seen.log if t == f"{BASE}/activity"]
        assert {"remote_command", "lock_state", "alarm", "door_state"} <= set(kinds)  # one per audit record
    finally:
        loop.stop()
        ha_client.close()
        close_app(app)
    assert not loop.homeassistant.mqtt.connected  # stopping the service stops it
    states = [p for t, p in seen.log if t == f"{BASE}/state"]
    assert b"OPEN" in states and b"OPENING" not in states  # declared, never sent: Limen's door has no latch phase


def test_limen_serve_without_the_setting_publishes_nothing_for_home_assistant(broker: Broker, tmp_path: Path) -> None:
    d = tmp_path / "data"
    provision(d, tmp_path, broker, Ed25519PrivateKey.generate())
    app = create_app(load_settings(d, link_broker=f"{broker.host}:{broker.port}"))
    ctx = app.state.ctx
    seen = Recorded()
    ha_client = home_assistant(broker, seen)
    loop = LinkLoop(ctx.runtime, ctx.lock.serialised(), period_s=0.2).start()
    try:
        ha_client.publish(f"{BASE}/probe", b"1")
        seen.until(f"{BASE}/probe", b"1")  # Home Assistant's subscription is live
        deadline = time.monotonic() + 60
        while not (loop.passes >= 2 and loop.link.mqtt.connected):
            assert time.monotonic() < deadline, "the link did not come up"
            time.sleep(0.05)
        ctx.runtime.audit.append(Event(EventKind.CONFIG_CHANGE, datetime.now(UTC), actor="system", subject="lock",
                                       reason="a record Home Assistant would be told of", source="cli"))
        passes = loop.passes
        while loop.passes < passes + 2:  # the record was forwarded: the link ran after it
            assert time.monotonic() < deadline, "the link stopped"
            time.sleep(0.05)
        ha_client.publish(f"{BASE}/probe", b"2")
        seen.until(f"{BASE}/probe", b"2")
    finally:
        loop.stop()
        ha_client.close()
        close_app(app)
    assert loop.homeassistant is None
    assert seen.log == [(f"{BASE}/probe", b"1"), (f"{BASE}/probe", b"2")]


def test_the_setting_needs_a_broker(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs link_broker"):
        load_settings(tmp_path / "data", homeassistant=True)
