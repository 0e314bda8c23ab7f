"""Bad input over the real broker, from a lock's own certificate: garbage, an oversized events message, another
lock's and unknown topics.  Nothing of it is stored, the lock's next good batch still arrives whole, and each
refusal is visible to the operator: the cloud's log line and counter give its kind and reason; the broker answers a
publish outside the lock's ACL with MQTT 5 "Not authorized" and the cloud never sees it."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from limen import thresholds as T
from limen.db import open_db
from limen.link import pki
from limen.link.forward import EventForwarder
from limen.link.mqtt import LockLink, MqttLink
from limen_cloud.bridge import CloudBridge, Refusal
from limen_cloud.db import sessions
from limen_cloud.models import Alarm, Lock, Record
from tests.link.broker import CLOUD_ID, Broker, start_broker
from tests.link.conftest import build_rig

from .test_evidence import Trail
from .test_fleet import wait_for

LOCK = "front-door"
OTHER = "other-lock"


@pytest.fixture
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from start_broker(tmp_path_factory.mktemp("broker"))


def _held(engine: Engine, lock_id: str) -> tuple[list[int], int | None]:
    with sessions(engine)() as s:
        idx = list(s.scalars(select(Record.idx).where(Record.lock_id == lock_id).order_by(Record.idx)))
        return idx, s.scalar(select(Lock.head_count).where(Lock.lock_id == lock_id))


def test_garbage_oversized_and_foreign_topics_from_a_locks_certificate_store_nothing_and_lose_nothing(
        broker: Broker, engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "limen_cloud.bridge")
    rig = build_rig(tmp_path)
    trail, conn = Trail(), open_db(tmp_path / "link.db")
    forwarder = EventForwarder(trail, conn, LOCK)
    cert, key = broker.client(LOCK)
    bridge = CloudBridge(engine, pki.client_context(broker.ca_file, *broker.client(CLOUD_ID)), broker.host,
                         broker.port).connect(timeout=5)
    lock = LockLink(LOCK, pki.client_context(broker.ca_file, cert, key), broker.host, broker.port,
                    rig.link).connect(timeout=5)
    # the same certificate, as a stolen one would be used: its own client id, publishing whatever it likes
    rogue = MqttLink(f"{LOCK}-rogue", pki.client_context(broker.ca_file, cert, key), broker.host, broker.port
                     ).connect(timeout=5)
    acks: dict[int, str] = {}
    rogue.client.on_publish = lambda client, userdata, mid, reason, properties: acks.update({mid: str(reason)})
    try:
        trail.add(5)
        lock.forward(forwarder)
        wait_for(lambda: _held(engine, LOCK)[1] == 5)

        foreign = json.dumps({"v": 1, "lock": OTHER, "records": [], "head": {"count": 0}}).encode()
        delivered = [  # reach the cloud (the ACL lets the lock write its own events and results)
            (f"limen/{LOCK}/events", b"\x00garbage\xff"),
            (f"limen/{LOCK}/events", b"{" * (T.CLOUD_MAX_EVENTS_BYTES + 1)),
            (f"limen/{LOCK}/events", foreign),  # another lock's events on its own topic
            (f"limen/{LOCK}/result", b"[not an outcome"),
        ]
        denied = [(f"limen/{OTHER}/events", foreign), (f"limen/{LOCK}/anything", b"{}"),
                  (f"limen/{OTHER}/cmd", b"{}"), (f"limen/{LOCK}/cert", b"x"), ("elsewhere", b"x")]
        for topic, payload in delivered + denied:
            rogue.publish(topic, payload)  # (one at a time: message ids 1, 2, ...)
        wait_for(lambda: bridge.refused.total == len(delivered))

        trail.add(4)  # the lock's next batch
        lock.forward(forwarder)
        wait_for(lambda: _held(engine, LOCK)[1] == 9)
        time.sleep(0.5)  # anything still on its way would arrive now
    finally:
        rogue.close()
        lock.close()
        bridge.close()
        conn.close()

    idx, head = _held(engine, LOCK)
    assert idx == list(range(9)) and head == 9  # nothing lost, nothing of the garbage stored
    assert _held(engine, OTHER) == ([], None)
    with sessions(engine)() as s:
        assert s.scalar(select(func.count()).select_from(Alarm)) == 0
    assert bridge.refused.total == len(delivered)  # the denied ones never reached the cloud
    counts = bridge.refused.counts
    assert counts[Refusal.MALFORMED] == 3 and counts[Refusal.OVERSIZED] == 1
    assert [acks[k] for k in range(len(delivered) + 1, len(delivered) + len(denied) + 1)] \
        == ["Not authorized"] * len(denied)  # the broker's answer to the rogue
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused a message")]
    assert any(f"'limen/{LOCK}/events' (oversized)" in line and f"{T.CLOUD_MAX_EVENTS_BYTES + 1} bytes" in line
               for line in lines)
    assert any("(malformed)" in line and "not JSON" in line for line in lines)
    assert any("(malformed)" in line and "another lock" in line for line in lines)
    assert any(f"'limen/{LOCK}/result' (malformed)" in line for line in lines)
