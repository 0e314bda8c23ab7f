"""The bridge's drain passes: many messages in one transaction give the same rows as one at a time, a
redelivery inside a pass is a duplicate (not a rewrite), and several workers keep each lock's order."""

from __future__ import annotations

import ssl
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from limen.audit.event import EventKind
from limen.db import open_db
from limen.link.forward import EventForwarder
from limen.link.mqtt import Delivery
from limen_cloud.bridge import CloudBridge
from limen_cloud.db import sessions
from limen_cloud.models import Alarm, Lock, Record

from .test_evidence import Trail

LOCKS = [f"lock-{k:02d}" for k in range(13)]


class Locks:
    """Simulated locks, each with its own chain and forwarder; `messages()` is what each would publish now."""

    def __init__(self, tmp: Path) -> None:
        self.trails = {i: Trail() for i in LOCKS}
        self.conns = {i: open_db(tmp / f"{i}.db") for i in LOCKS}
        self.forwarders = {i: EventForwarder(self.trails[i], self.conns[i], i) for i in LOCKS}

    def messages(self, lock_id: str) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        self.forwarders[lock_id].forward(lambda p: out.append((f"limen/{lock_id}/events", p)))
        return out

    def close(self) -> None:
        for conn in self.conns.values():
            conn.close()


def _state(engine: Engine) -> tuple[list[Any], list[Any], list[Any]]:
    with sessions(engine)() as s:
        records = s.execute(select(Record.lock_id, Record.idx, Record.hash, Record.body)
                            .order_by(Record.lock_id, Record.idx)).all()
        alarms = s.execute(select(Alarm.lock_id, Alarm.rule, Alarm.detail).order_by(Alarm.lock_id, Alarm.rule)).all()
        locks = s.execute(select(Lock.lock_id, Lock.head_count, Lock.head_hash, Lock.reported_count)
                          .order_by(Lock.lock_id)).all()
    return list(records), list(alarms), list(locks)


def _traffic(locks: Locks) -> list[tuple[str, bytes]]:
    """Three rounds from every lock (records, an alarm, records again), interleaved, each round sent twice."""
    out: list[tuple[str, bytes]] = []
    for round_ in range(3):
        for lock_id in LOCKS:
            if round_ == 1:
                locks.trails[lock_id].add(1, reason="forced", kind=EventKind.ALARM)
            else:
                locks.trails[lock_id].add(3)
            sent = locks.messages(lock_id)
            out += sent + sent  # a redelivery (no PUBACK reached the lock) right behind the first
    return out


def test_one_pass_stores_what_message_by_message_stores(engine: Engine, tmp_path: Path,
                                                        request: pytest.FixtureRequest) -> None:
    locks = Locks(tmp_path)
    traffic = _traffic(locks)
    locks.close()
    bridge = CloudBridge(engine, ssl.create_default_context(), "127.0.0.1", 1)
    bridge.process(traffic)  # every message in one pass (one transaction)
    records, alarms, heads = _state(engine)
    assert len(records) == len(LOCKS) * 7 and not bridge.refused
    assert [a.rule for a in alarms] == ["lock:forced"] * len(LOCKS)  # one each; the redelivery raised none
    assert all(h.head_count == 7 and h.reported_count == 7 for h in heads)
    # the same traffic one message per transaction, into a second database: the same rows
    other = _second_engine(engine, tmp_path, request)
    single = CloudBridge(other, ssl.create_default_context(), "127.0.0.1", 1)
    for message in traffic:
        single.received(*message)
    assert _state(other) == (records, alarms, heads)


def test_a_rewritten_record_inside_a_pass_is_alarmed_once(engine: Engine, tmp_path: Path) -> None:
    locks = Locks(tmp_path)
    lock_id = LOCKS[0]
    locks.trails[lock_id].add(4)
    first = locks.messages(lock_id)
    locks.trails[lock_id].items[2]["reason"] = "denied"  # history edited after it was sent …
    locks.conns[lock_id].execute("UPDATE link_forward SET next_index = 0")  # … and sent again
    again = locks.messages(lock_id)
    locks.close()
    bridge = CloudBridge(engine, ssl.create_default_context(), "127.0.0.1", 1)
    bridge.process(first + again + again)
    records, alarms, heads = _state(engine)
    assert len(records) == 4 and heads[0].head_count == 4
    assert [a.rule for a in alarms] == ["audit_rewritten"]  # found in the pass's own rows; raised once


def test_several_workers_keep_each_locks_order_and_ack_each_message_once(engine: Engine, tmp_path: Path) -> None:
    locks = Locks(tmp_path)
    traffic: list[tuple[str, bytes]] = []
    for _ in range(6):  # one record per message: a message taken before its predecessor is a gap
        for lock_id in LOCKS:
            locks.trails[lock_id].add(1)
            traffic += locks.messages(lock_id)
    locks.close()
    bridge = CloudBridge(engine, ssl.create_default_context(), "127.0.0.1", 1, workers=4)
    assert len({bridge.worker_of(f"limen/{i}/events") for i in LOCKS}) > 1  # the locks are spread
    assert all(bridge.worker_of(f"limen/{i}/events") == bridge.worker_of(f"limen/{i}/result") for i in LOCKS)
    acked: list[int] = []
    guard = threading.Lock()

    def ack(d: Delivery) -> None:
        with guard:
            acked.append(d.mid)

    bridge.mqtt.ack = ack  # type: ignore[method-assign]
    bridge.start_workers()
    for mid, (topic, payload) in enumerate(traffic, 1):
        bridge._deliver(Delivery(topic, payload, mid, 1))
    deadline = time.monotonic() + 60
    while len(acked) < len(traffic) and time.monotonic() < deadline:
        time.sleep(0.05)
    bridge.close()
    records, alarms, heads = _state(engine)
    assert sorted(acked) == list(range(1, len(traffic) + 1))  # each acknowledged once, after its commit
    assert not alarms and len(records) == len(LOCKS) * 6 and all(h.head_count == 6 for h in heads)


def _second_engine(engine: Engine, tmp_path: Path, request: pytest.FixtureRequest) -> Engine:
    """An empty migrated database of the same kind as `engine` (dropped with the test)."""
    from sqlalchemy import create_engine, text

    from limen_cloud.db import make_engine, upgrade

    from .conftest import PG_URL

    if engine.dialect.name == "sqlite":
        other = make_engine(f"sqlite:///{tmp_path / 'single.db'}")
    else:
        schema = f"limen_single_{int(time.time() * 1000) % 10**8}"
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))

        def drop() -> None:
            other.dispose()
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
        other = make_engine(PG_URL, schema=schema)
        request.addfinalizer(drop)
    upgrade(other)
    with sessions(other)() as s:
        assert s.scalar(select(func.count()).select_from(Lock)) == 0
    return other


def test_the_bridge_reconnects_by_itself_after_a_broker_restart(engine: Engine, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from limen.link import pki
    from limen.link.mqtt import MqttLink, Topics
    from limen_cloud import bridge as bridge_module
    from tests.link.broker import CLOUD_ID, launch, mosquitto, prepare

    mosquitto()
    monkeypatch.setattr(bridge_module, "RECONNECT_S", 0.2)
    broker = prepare(tmp_path / "broker", persistence=True)
    procs = [launch(broker)]
    locks = Locks(tmp_path)
    lock_id = LOCKS[0]
    bridge = CloudBridge(engine, pki.client_context(broker.ca_file, *broker.client(CLOUD_ID)), broker.host,
                         broker.port).connect(timeout=5)
    link = MqttLink(lock_id, pki.client_context(broker.ca_file, *broker.client(lock_id)), broker.host, broker.port)
    try:
        procs[0].terminate()
        procs[0].wait(10)
        deadline = time.monotonic() + 10
        while bridge.mqtt.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not bridge.mqtt.connected  # it noticed
        procs.append(launch(broker))
        link.connect(timeout=5)
        locks.trails[lock_id].add(5)
        locks.forwarders[lock_id].forward(lambda p: link.publish(Topics(lock_id).events, p))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(_state(engine)[0]) < 5:
            time.sleep(0.1)
        assert len(_state(engine)[0]) == 5 and bridge.mqtt.connected  # nobody called connect() again
    finally:
        try:
            link.close()
            bridge.close()
            locks.close()
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)


def test_a_redelivered_older_message_is_not_a_cut_back_but_a_fresh_short_head_is(engine: Engine,
                                                                                  tmp_path: Path) -> None:
    locks = Locks(tmp_path)
    lock_id = LOCKS[0]
    locks.trails[lock_id].add(3)
    older = locks.messages(lock_id)  # taken, but its acknowledgement was lost with the connection …
    locks.trails[lock_id].add(4)
    newer = locks.messages(lock_id)
    locks.trails[lock_id].items[1:] = []  # the lock's log cut back to one record
    locks.conns[lock_id].execute("UPDATE link_forward SET next_index = 1")
    cut = locks.messages(lock_id)
    locks.close()
    bridge = CloudBridge(engine, ssl.create_default_context(), "127.0.0.1", 1)
    bridge.process(older + newer)
    bridge.process(older, [True])  # … so the broker sends it again after the newer one: old news
    records, alarms, heads = _state(engine)
    assert not alarms and len(records) == 7 and heads[0].reported_count == 7
    forged = [(t, p.replace(b'"count":3', b'"count":2')) for t, p in older]  # not a prefix the cloud holds
    bridge.process(forged, [True])
    assert [a.rule for a in _state(engine)[1]] == ["audit_truncated"]
    with sessions(engine)() as s, s.begin():
        s.execute(Alarm.__table__.delete())
    bridge.process(older)  # the lock resent a batch it had no acknowledgement for: old news too
    assert _state(engine)[1] == []
    bridge.process(cut)  # the lock's next message after a real cut-back (its head, no records): alarmed
    assert [a.rule for a in _state(engine)[1]] == ["audit_truncated"]


def test_acknowledgements_from_an_earlier_connection_are_dropped() -> None:
    from limen.link.mqtt import MqttLink

    link = MqttLink("limen-cloud", ssl.create_default_context(), "127.0.0.1", 1, session_expiry_s=60)
    sent: list[int] = []
    link.client.ack = lambda mid, qos: sent.append(mid)  # type: ignore[method-assign,assignment,misc]
    link._connection = 2
    link.ack(Delivery("limen/a/events", b"", 7, 1, connection=1))  # its packet id may name another message now
    link.ack(Delivery("limen/a/events", b"", 8, 1, connection=2))
    assert sent == [8]
