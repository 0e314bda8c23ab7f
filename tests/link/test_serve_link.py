"""The link inside the lock service: commands run on the service's controller and door, under its lock."""

from __future__ import annotations

import json
import queue
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from limen.config import load_settings
from limen.errors import BadRequest
from limen.link import pki
from limen.link.commands import Action, Command, sign
from limen.link.loop import LinkLoop, broker_address
from limen.link.mqtt import MqttLink, Topics
from limen.service import close_app, create_app

from .broker import CLOUD_ID, Broker, start_broker
from .test_run import LOCK, provision


@pytest.fixture  # one per test: persistent MQTT sessions must not carry a message into the next test
def broker(tmp_path_factory: pytest.TempPathFactory) -> object:
    yield from start_broker(tmp_path_factory.mktemp("broker"))


def test_limen_serve_runs_the_link_on_its_own_door_and_lock(broker: Broker, tmp_path: Path) -> None:
    d = tmp_path / "data"
    phone = Ed25519PrivateKey.generate()
    provision(d, tmp_path, broker, phone)
    settings = load_settings(d, link_broker=f"{broker.host}:{broker.port}")
    app = create_app(settings)
    ctx = app.state.ctx
    received: queue.Queue[tuple[str, bytes]] = queue.Queue()
    cloud = MqttLink(CLOUD_ID, pki.client_context(broker.ca_file, *broker.client(CLOUD_ID)), broker.host,
                     broker.port, subscriptions=(Topics(LOCK).result, Topics(LOCK).events),
                     on_message=lambda t, p: received.put((t, p))).connect(timeout=5)
    loop = LinkLoop(ctx.runtime, ctx.lock.serialised(), period_s=0.2).start()
    try:
        deadline = time.monotonic() + 30
        while not (loop.passes and loop.link.mqtt.connected) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert loop.link.mqtt.connected
        time.sleep(0.3)
        assert ctx.runtime.controller.door.is_locked
        with ctx.lock.serialised():  # the service is busy at the door: the command waits for it
            cmd = Command(LOCK, Action.UNLOCK, 1, datetime.now(UTC) + timedelta(seconds=120), "olga-phone")
            cloud.publish(Topics(LOCK).cmd, sign(cmd, phone).to_bytes())
            time.sleep(1.0)
            waited = [t for t, _ in list(received.queue) if t == Topics(LOCK).result]
        result, kinds, state = None, set(), ""
        while result is None or "unlock_attempt" not in kinds:
            topic, payload = received.get(timeout=60)
            if topic == Topics(LOCK).result:
                result = json.loads(payload)
                state = ctx.runtime.controller.door.state.value  # the service polls the door; not here
            else:
                kinds |= {r["kind"] for r in json.loads(payload)["records"]}
    finally:
        loop.stop()
        cloud.close()
        close_app(app)
    assert waited == []  # nothing ran while the service held its lock
    assert result["executed"] and result["reason"] == "granted"
    assert state in ("unlocking", "unlocked")  # the service's own door is opening


def test_a_missing_or_malformed_broker_setting_is_refused() -> None:
    for value in (None, "", "host", "host:", ":1883", "host:99999", "host:port"):
        with pytest.raises(BadRequest):
            broker_address(value)
    assert broker_address("broker.example.org:8883") == ("broker.example.org", 8883)
