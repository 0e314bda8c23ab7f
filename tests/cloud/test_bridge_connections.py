"""Several bridge connections (MQTT 5 shared subscriptions): the broker spreads the locks' messages over them, and
each lock's chain is still taken in order and once; a message that overtook its predecessor on another connection
waits for it (unacknowledged) instead of making the lock resend."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from limen.db import open_db
from limen.link import pki
from limen.link.forward import EventForwarder
from limen.link.mqtt import Delivery, MqttLink, Topics
from limen_cloud import bridge as bridge_module
from limen_cloud.bridge import CloudBridge
from limen_cloud.db import sessions
from limen_cloud.models import Alarm, Lock, Record
from tests.link.broker import CLOUD_ID, Broker, start_broker

from .test_evidence import Trail
from .test_fleet import wait_for

LOCKS = [f"lock-{k}" for k in range(4)]
MESSAGES = 25  # per lock, one record each: a message taken before its predecessor would be a gap


def _held(engine: Engine) -> tuple[dict[str, list[int]], list[str], dict[str, int]]:
    with sessions(engine)() as s:
        idx: dict[str, list[int]] = {}
        for lock_id, i in s.execute(select(Record.lock_id, Record.idx).order_by(Record.lock_id, Record.idx)):
            idx.setdefault(lock_id, []).append(i)
        rules = list(s.scalars(select(Alarm.rule)))
        heads = {lock_id: n for lock_id, n in s.execute(select(Lock.lock_id, Lock.head_count))}
    return idx, rules, heads


class Counted:
    """Counts what each of the bridge's connections received and acknowledged."""

    def __init__(self, bridge: CloudBridge) -> None:
        self.received = [0] * len(bridge.links)
        self.acked: list[list[int]] = [[] for _ in bridge.links]
        self.guard = threading.Lock()
        deliver = bridge._deliver

        def counted(delivery: Delivery, link: int = 0) -> None:
            with self.guard:
                self.received[link] += 1
            deliver(delivery, link)
        bridge._deliver = counted  # type: ignore[method-assign]
        for k, link in enumerate(bridge.links):
            link.ack = self._ack(k, link.ack)  # type: ignore[method-assign]

    def _ack(self, k: int, ack):  # type: ignore[no-untyped-def]
        def counted(delivery: Delivery) -> None:
            with self.guard:
                self.acked[k].append(delivery.mid)
            ack(delivery)
        return counted


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One broker per module (the cloud's sessions are persistent: see tests/cloud/test_resend.py)."""
    yield from start_broker(tmp_path_factory.mktemp("broker"))


def test_two_connections_share_the_load_and_each_lock_is_taken_in_order_once(broker: Broker, engine: Engine,
                                                                              tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # an overtaken message waits for its predecessor; on a loaded CI machine that may take more than the default
    # 2 s, and the test is about order and once-only, not about the wait's length
    monkeypatch.setattr(bridge_module, "REORDER_WAIT_S", 60.0)
    bridge = CloudBridge(engine, pki.client_context(broker.ca_file, *broker.client(CLOUD_ID)), broker.host,
                         broker.port, connections=2)
    counted = Counted(bridge)
    bridge.connect(timeout=5)
    rewinds: dict[str, list[int]] = {i: [] for i in LOCKS}

    def lock(lock_id: str) -> None:
        trail, conn = Trail(), open_db(tmp_path / f"{lock_id}.db")
        forwarder = EventForwarder(trail, conn, lock_id)

        def head(topic: str, payload: bytes) -> None:  # what `LockLink` does with the cloud's head answer
            rewinds[lock_id].append(int(json.loads(payload)["count"]))

        link = MqttLink(lock_id, pki.client_context(broker.ca_file, *broker.client(lock_id)), broker.host,
                        broker.port, subscriptions=(Topics(lock_id).head,), on_message=head).connect(timeout=5)
        try:
            for _ in range(MESSAGES):
                trail.add(1)
                if rewinds[lock_id]:
                    forwarder.rewind(min(rewinds[lock_id]))
                    rewinds[lock_id].clear()
                assert forwarder.forward(lambda p: link.publish(Topics(lock_id).events, p)) >= 1
        finally:
            link.close()
            conn.close()

    try:
        threads = [threading.Thread(target=lock, args=(i,)) for i in LOCKS]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        wait_for(lambda: sum(map(len, _held(engine)[0].values())) == len(LOCKS) * MESSAGES, 30)
        wait_for(lambda: sum(map(len, counted.acked)) == sum(counted.received))
    finally:
        bridge.close()
    idx, rules, heads = _held(engine)
    assert all(n > 0 for n in counted.received)  # the broker used both connections
    assert sum(counted.received) >= len(LOCKS) * MESSAGES
    assert idx == {i: list(range(MESSAGES)) for i in LOCKS}  # every record once, none missing
    assert heads == {i: MESSAGES for i in LOCKS} and rules == [] and not bridge.refused
    assert all(rewinds[i] == [] for i in LOCKS)  # no lock was asked to resend
    for k, acked in enumerate(counted.acked):  # each acknowledged once, on the connection it came on
        assert len(acked) == len(set(acked)) == counted.received[k]


def _messages(tmp: Path, lock_id: str, n: int) -> list[tuple[str, bytes]]:
    trail, conn = Trail(), open_db(tmp / f"{lock_id}.db")
    forwarder = EventForwarder(trail, conn, lock_id)
    out: list[tuple[str, bytes]] = []
    for _ in range(n):
        trail.add(2)
        forwarder.forward(lambda p: out.append((Topics(lock_id).events, p)))
    conn.close()
    return out


@pytest.mark.parametrize("lost", [False, True])
def test_a_message_that_overtook_its_predecessor_waits_for_it(engine: Engine, tmp_path: Path, lost: bool,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # lost: the wait must end within the test (3 s, well inside wait_for's 10 s); kept: it must not end before
    # `second` is delivered, however loaded the machine
    monkeypatch.setattr(bridge_module, "REORDER_WAIT_S", 3.0 if lost else 60.0)
    first, second, third = _messages(tmp_path, "front", 3)
    bridge = CloudBridge(engine, ssl.create_default_context(), "127.0.0.1", 1, connections=2)
    answers: list[tuple[str, int]] = []
    monkeypatch.setattr(bridge.mqtt, "publish", lambda topic, payload, *a, **k: answers.append(
        (topic, json.loads(payload)["count"])))
    counted = Counted(bridge)
    taken: list[str] = []
    process = bridge.process

    def noted(messages: list[tuple[str, bytes]], *args: object, **kw: object) -> list[bool]:
        out = process(messages, *args, **kw)  # type: ignore[arg-type]
        taken.extend(t for t, _ in messages)
        return out
    monkeypatch.setattr(bridge, "process", noted)
    bridge.start_workers()
    try:
        bridge._deliver(Delivery(*first, 1, 1), 0)
        wait_for(lambda: counted.acked[0] == [1])
        bridge._deliver(Delivery(*third, 2, 1), 1)  # overtook `second`, which comes on the other connection
        wait_for(lambda: len(taken) == 2)  # taken once: kept
        bridge._deliver(Delivery("limen/front/result", b'{"executed": false}', 3, 1), 1)  # queued behind it
        wait_for(lambda: _held(engine)[2].get("front") == 2 and bridge.refused == [])
        assert counted.acked == [[1], []]  # kept, unacknowledged
        if lost:  # `second` never comes: after the wait the lock is answered with the head and resends
            wait_for(lambda: counted.acked[1] == [2, 3])
            assert answers == [(Topics("front").head, 2)] and _held(engine)[2]["front"] == 2
            return
        bridge._deliver(Delivery(*second, 4, 1), 0)
        wait_for(lambda: _held(engine)[2]["front"] == 6 and len(counted.acked[1]) == 2)
    finally:
        bridge.close()
    idx, rules, _ = _held(engine)
    assert idx == {"front": list(range(6))} and rules == [] and answers == []  # in order, no resend asked
    assert counted.acked == [[1, 4], [2, 3]]  # each once, on its own connection, the result after the events
