"""Home Assistant discovery over a real Mosquitto: entities appear, states follow the door, only LOCK is taken."""

from __future__ import annotations

import json
import queue
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from limen import thresholds as T
from limen.audit import open_audit
from limen.audit.event import Event, EventKind, MemoryAuditSink
from limen.clock import FixedClock
from limen.config import load_settings
from limen.link import pki
from limen.link.commands import Action
from limen.link.homeassistant import HomeAssistant
from limen.link.mqtt import MqttLink

from .broker import Broker, start_broker
from .conftest import LOCK_ID, build_rig


@pytest.fixture  # one per test: persistent MQTT sessions must not carry a message into the next test
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from start_broker(tmp_path_factory.mktemp("broker"))


class Seen:
    def __init__(self) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.last: dict[str, bytes] = {}

    def put(self, topic: str, payload: bytes) -> None:
        self.messages.put((topic, payload))

    def until(self, topic: str, value: bytes, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.last.get(topic) != value:
            t, p = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            self.last[t] = p


def test_the_lock_appears_in_home_assistant_and_refuses_to_open_from_it(broker: Broker, tmp_path: Path) -> None:
    audit = open_audit(load_settings(tmp_path / "data"))
    rig = build_rig(tmp_path, audit=audit, clock=FixedClock(datetime.now(UTC)))
    seen = Seen()
    ha_client = MqttLink("homeassistant", pki.client_context(broker.ca_file, *broker.client("homeassistant")),
                         broker.host, broker.port, subscriptions=("homeassistant/#", f"limen/{LOCK_ID}/ha/#"),
                         on_message=seen.put).connect(timeout=5)
    ha = HomeAssistant(LOCK_ID, pki.client_context(broker.ca_file, *broker.client(LOCK_ID)), broker.host,
                       broker.port, rig.controller, audit, may_lock=True)  # the owner allowed unsigned locking
    audit.add_observer(ha.observe)
    base = f"limen/{LOCK_ID}/ha"
    try:
        ha.connect(timeout=5)
        seen.until(f"{base}/state", b"LOCKED")
        seen.until(f"{base}/lockdown", b"OFF")
        lock_config = json.loads(seen.last[f"homeassistant/lock/limen_{LOCK_ID}/lock/config"])
        assert lock_config["command_topic"] == f"{base}/set" and lock_config["state_jammed"] == "JAMMED"
        assert "code_format" not in lock_config
        assert f"homeassistant/binary_sensor/limen_{LOCK_ID}/tamper/config" in seen.last

        assert rig.send(rig.signed(Action.UNLOCK)).executed  # the owner's phone opens it
        rig.settle()
        seen.until(f"{base}/state", b"UNLOCKED")
        assert json.loads(seen.last[f"{base}/activity"])["event_type"] in ("lock_state", "unlock_attempt")

        ha_client.publish(f"{base}/set", b"LOCK")
        seen.until(f"{base}/state", b"LOCKING")
        rig.settle()
        ha_client.publish(f"{base}/set", b"UNLOCK")
        ha_client.publish(f"{base}/set", b"OPEN")
        deadline = time.monotonic() + 10
        while len([r for r in audit.tail(50) if r["kind"] == "remote_command" and r["reason"] == "unsigned"]) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        rig.settle()
        assert rig.door.is_locked

        audit.append(Event(EventKind.TAMPER, datetime.now(UTC), actor="system", reason="case opened",
                           source="tamper:case"))
        seen.until(f"{base}/tamper", b"ON")
    finally:
        ha.close()
        ha_client.close()
        audit.close()
        rig.devices.conn.close()


def test_every_door_state_is_a_home_assistant_state_and_opening_is_declared_only() -> None:
    """Limen's door has no latch phase: OPENING is in the discovery (no YAML) but no door state maps to it."""
    from limen.door.actuator import LockState
    from limen.link.homeassistant import _STATES, OPENING

    ha = HomeAssistant(LOCK_ID, ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), "localhost", 8883,
                       None, MemoryAuditSink())  # type: ignore[arg-type]  # discovery reads no controller
    lock_config = dict(ha.discovery())[f"homeassistant/lock/limen_{LOCK_ID}/lock/config"]
    declared = {k.removeprefix("state_"): v for k, v in lock_config.items()
                if k.startswith("state_") and k != "state_topic"}
    assert declared == {"locked": "LOCKED", "unlocked": "UNLOCKED", "locking": "LOCKING", "unlocking": "UNLOCKING",
                        "jammed": "JAMMED", "open": "OPEN", "opening": "OPENING"}
    assert set(_STATES) == {s.value for s in LockState} and OPENING not in _STATES.values()


class CountingController:
    door = None

    def __init__(self) -> None:
        self.locks = 0

    def lock(self) -> None:
        self.locks += 1


def offline(controller: object, audit: MemoryAuditSink, **kw: object) -> HomeAssistant:
    """A HomeAssistant whose command path is driven directly (no broker: the MQTT client never connects)."""
    return HomeAssistant(LOCK_ID, ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), "localhost", 8883,
                         controller, audit, **kw)  # type: ignore[arg-type]


def test_a_flood_on_the_command_topic_is_audited_within_a_budget_and_counted_beyond_it() -> None:
    """A broker publishing 300 UNLOCK: the first LINK_REFUSALS_AUDITED_BURST are recorded, the rest counted into the
    next record (review: 300 records, 2.7 MB, each under the service's lock)."""
    audit, clock = MemoryAuditSink(), FixedClock(datetime.now(UTC))
    ha = offline(CountingController(), audit, clock=clock)
    for _ in range(300):
        ha._received(ha.command_topic, b"UNLOCK")
    refused = [e for e in audit.events if e.kind is EventKind.REMOTE_COMMAND]
    assert len(refused) == T.LINK_REFUSALS_AUDITED_BURST
    assert {(e.outcome, e.reason, e.data["action"]) for e in refused} == {("refused", "unsigned", "unlock")}
    clock.advance(60 / T.LINK_REFUSALS_AUDITED_PER_MIN)  # one refusal's worth of budget back
    ha._received(ha.command_topic, b"OPEN")
    last = audit.events[-1]
    assert len(audit.events) == T.LINK_REFUSALS_AUDITED_BURST + 1 and last.data["action"] == "open"
    assert last.data["not_recorded_before"] == {"unsigned": 300 - T.LINK_REFUSALS_AUDITED_BURST}


def test_home_assistant_locks_only_where_the_owner_allowed_unsigned_locking() -> None:
    """`link_cloud_may_lock` off (the default): anyone who may publish on the topic (on a fleet broker also the
    cloud's identity) cannot lock unsigned through it either (review: 50 LOCK ran controller.lock() 50 times)."""
    audit, controller = MemoryAuditSink(), CountingController()
    ha = offline(controller, audit)
    for _ in range(50):
        ha._received(ha.command_topic, b"LOCK")
    assert controller.locks == 0
    refused = [e for e in audit.events if e.kind is EventKind.REMOTE_COMMAND]
    assert len(refused) == T.LINK_REFUSALS_AUDITED_BURST  # refusals: within the same budget
    assert {(e.outcome, e.reason, e.data["action"]) for e in refused} == {("refused", "unsigned", "lock")}

    allowed = offline(controller, audit, may_lock=True)
    assert allowed.command(b"LOCK", datetime.now(UTC)) and controller.locks == 1
    assert (audit.events[-1].outcome, audit.events[-1].data["action"]) == ("executed", "lock")
    assert not allowed.command(b"UNLOCK", datetime.now(UTC)) and controller.locks == 1  # never the other way


def test_a_closed_home_assistant_link_no_longer_reads_the_lockdown_flag() -> None:
    """After close() the runtime may have closed the flag's connection, which reads as a lockdown (fail closed): a
    link loop still running must not publish that as ON (review)."""
    reads: list[int] = []

    def flag() -> bool:
        reads.append(1)
        return True

    ha = offline(CountingController(), MemoryAuditSink(), lockdown_flag=flag)
    ha._published_lockdown = False  # Home Assistant was last told OFF
    ha.close()
    before = len(reads)
    assert ha.follow_lockdown() is False and len(reads) == before
