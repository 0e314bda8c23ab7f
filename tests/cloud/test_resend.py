"""Records the broker took but the cloud did not get in order (a broker restart) are resent, not lost: the cloud
answers a message that starts after its head with that head on `limen/<id>/head`, the lock rewinds its cursor and
resends; only records missing from the lock's own log are alarmed as `audit_gap`."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from limen.db import open_db
from limen.link import pki
from limen.link.forward import EventForwarder
from limen.link.mqtt import LockLink, Topics
from limen_cloud.bridge import CloudBridge
from limen_cloud.db import sessions
from limen_cloud.models import Alarm, Lock, Record
from tests.link.broker import CLOUD_ID, Broker, start_broker
from tests.link.conftest import build_rig

from .test_evidence import Trail
from .test_fleet import wait_for

LOCK = "front-door"
TOPIC = f"limen/{LOCK}/events"


def _held(engine: Engine) -> tuple[list[int], list[str], int]:
    with sessions(engine)() as s:
        idx = list(s.scalars(select(Record.idx).where(Record.lock_id == LOCK).order_by(Record.idx)))
        rules = list(s.scalars(select(Alarm.rule)))
        head = s.scalar(select(Lock.head_count).where(Lock.lock_id == LOCK))
    return idx, rules, int(head or 0)


class Bench:
    """One lock forwarding three batches of 3 records through a capture; the bridge's head answers captured."""

    def __init__(self, engine: Engine, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.trail, self.conn = Trail(), open_db(tmp / "limen.db")
        self.forwarder = EventForwarder(self.trail, self.conn, LOCK)
        self.bridge = CloudBridge(engine, ssl.create_default_context(), "127.0.0.1", 1)
        self.answers: list[tuple[str, dict[str, object]]] = []
        monkeypatch.setattr(self.bridge.mqtt, "publish",
                            lambda topic, payload, *a, **k: self.answers.append((topic, json.loads(payload))))

    def batch(self, n: int) -> bytes:
        self.trail.add(n)
        out: list[bytes] = []
        self.forwarder.forward(out.append)
        assert len(out) == 1
        return out[0]


@pytest.mark.parametrize("one_pass", [False, True])
def test_a_message_overtaken_by_the_next_one_is_resent_not_lost(engine: Engine, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 one_pass: bool) -> None:
    bench = Bench(engine, tmp_path, monkeypatch)
    m1, m2, m3 = bench.batch(7), bench.batch(3), bench.batch(3)  # records 0–6, 7–9, 10–12
    bench.bridge.process([(TOPIC, m1)])
    if one_pass:  # 7–9 lost on the way (acked by the broker, gone with its restart): 10–12 is all that comes
        bench.bridge.process([(TOPIC, m3)])
    else:  # 7–9 late: it comes after 10–12, in the same drain pass
        bench.bridge.process([(TOPIC, m3), (TOPIC, m2)])
    idx, rules, head = _held(engine)
    assert rules == [] and head == (7 if one_pass else 10)
    assert bench.answers == [(Topics(LOCK).head, {"v": 1, "lock": LOCK, "count": head,
                                                  "hash": bench.trail.items[head - 1]["hash"]})]
    assert bench.forwarder.rewind(head) and bench.forwarder.cursor == head
    resent: list[bytes] = []
    bench.forwarder.forward(resent.append)
    bench.bridge.process([(TOPIC, p) for p in resent])
    idx, rules, head = _held(engine)
    assert idx == list(range(13)) and rules == [] and head == 13 and not bench.bridge.refused
    assert len(bench.answers) == 1 and not bench.forwarder.rewind(13)  # nothing more asked; a late head: no-op
    bench.conn.close()


def test_a_head_only_message_past_the_cloud_asks_again(engine: Engine, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer itself was lost: the lock's periodic head (no records) asks again."""
    bench = Bench(engine, tmp_path, monkeypatch)
    m1, _lost = bench.batch(4), bench.batch(4)
    bench.bridge.process([(TOPIC, m1)])
    bench.bridge.process([(TOPIC, bench.batch(0))])  # cursor 8, nothing new: the head only
    assert [a[1]["count"] for a in bench.answers] == [4] and _held(engine)[1] == []


def test_records_missing_from_the_locks_own_log_are_still_a_gap(engine: Engine, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    bench = Bench(engine, tmp_path, monkeypatch)
    bench.bridge.process([(TOPIC, bench.batch(7))])
    bench.trail.add(6)
    del bench.trail.items[7:10]  # records 7–9 deleted on the lock before they were forwarded
    out: list[bytes] = []
    bench.forwarder.forward(out.append)  # read from 7, the cloud's head: 10–12 come
    bench.bridge.process([(TOPIC, p) for p in out])
    idx, rules, head = _held(engine)
    assert rules == ["audit_gap"] and head == 7 and idx == list(range(7)) and bench.answers == []


def test_a_message_without_start_from_an_older_lock_is_alarmed_as_before(engine: Engine, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    bench = Bench(engine, tmp_path, monkeypatch)
    bench.bridge.process([(TOPIC, bench.batch(3))])
    bench.batch(3)
    old = json.loads(bench.batch(3))
    del old["start"]
    bench.bridge.process([(TOPIC, json.dumps(old).encode())])
    assert _held(engine)[1] == ["audit_gap"] and bench.answers == []


@pytest.fixture
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One broker per test: the cloud's and the lock's sessions are persistent, so a message the previous test's
    cloud committed but had not acknowledged when it closed would be redelivered to this test's cloud (another
    database), which would answer the lock with its own head (0)."""
    yield from start_broker(tmp_path_factory.mktemp("broker"))


def test_over_mosquitto_the_lock_resends_what_the_broker_lost(broker: Broker, engine: Engine,
                                                               tmp_path: Path) -> None:
    rig = build_rig(tmp_path)
    trail, conn = Trail(), open_db(tmp_path / "link.db")
    forwarder = EventForwarder(trail, conn, LOCK)
    bridge = CloudBridge(engine, pki.client_context(broker.ca_file, *broker.client(CLOUD_ID)), broker.host,
                         broker.port).connect(timeout=5)
    lock = LockLink(LOCK, pki.client_context(broker.ca_file, *broker.client(LOCK)), broker.host, broker.port,
                    rig.link).connect(timeout=5)
    try:
        trail.add(7)
        lock.forward(forwarder)
        wait_for(lambda: _held(engine)[2] == 7)
        trail.add(3)
        forwarder.forward(lambda payload: None)  # 7–9: acknowledged, then lost with the broker's restart
        trail.add(3)
        lock.forward(forwarder)  # 10–12 arrive first: the cloud answers with its head (7) on limen/L/head
        wait_for(lambda: lock._rewind == 7)
        assert _held(engine)[1] == []
        lock.forward(forwarder)  # the lock's next pass resends from 7
        wait_for(lambda: _held(engine)[2] == 13)
        idx, rules, _ = _held(engine)
        assert idx == list(range(13)) and rules == [] and not bridge.refused
    finally:
        lock.close()
        bridge.close()
        conn.close()
        rig.devices.conn.close()


def test_the_lock_ignores_a_malformed_head_and_keeps_the_lowest(tmp_path: Path) -> None:
    rig = build_rig(tmp_path)
    lock = LockLink(LOCK, ssl.create_default_context(), "127.0.0.1", 1, rig.link)
    head = Topics(LOCK).head
    for bad in (b"[" * 100_000, b'{"lock":"front-door","count":true}', b'{"lock":"other","count":1}',
                json.dumps({"lock": LOCK, "count": 2**40}).encode(), b"\xff"):
        lock._received(head, bad)
    assert lock._rewind is None
    lock._received(head, json.dumps({"lock": LOCK, "count": 9}).encode())
    lock._received(head, json.dumps({"lock": LOCK, "count": 4}).encode())
    assert lock._rewind == 4
    rig.devices.conn.close()
