"""One lock's message cannot stall the fleet's ingestion: an unstorable message is refused alone (logged, counted,
acknowledged) and the other locks' messages of the same pass are stored, in order; a busy database is retried."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError

from limen.link.mqtt import Delivery
from limen_cloud import bridge as bridge_module
from limen_cloud.bridge import CloudBridge, Unfinished
from limen_cloud.db import sessions
from limen_cloud.evidence import MESSAGE_VERSION, BadMessage, parse
from limen_cloud.models import Alarm, Lock

from .test_ingest_pass import LOCKS, Locks


def head_count(engine: Engine, lock_id: str) -> int | None:
    with sessions(engine)() as s:
        return s.scalar(select(Lock.head_count).where(Lock.lock_id == lock_id))


def _evil(**fields: Any) -> bytes:
    return json.dumps({"v": MESSAGE_VERSION, "lock": "evil-lock", "records": [], "head": {"count": 0},
                       **fields}).encode()


@pytest.mark.parametrize("bad", [_evil(head={"count": 2**70}), b"[" * 100_000,
                                 _evil(records=[{"index": 2**40}]), _evil(checkpoints=[{"index": -1}]),
                                 _evil(head={"count": True}), b'{"v":1,"head":{"count":' + b"9" * 5000 + b"}}"])
def test_an_out_of_range_or_too_deep_message_is_refused_and_the_fleet_goes_on(engine: Engine, tmp_path: Path,
                                                                             bad: bytes) -> None:
    locks = Locks(tmp_path)
    locks.trails[LOCKS[1]].add(3)
    good = locks.messages(LOCKS[1])
    locks.close()
    bridge = CloudBridge(engine, ssl.create_default_context(), "127.0.0.1", 1)
    bridge.process([("limen/evil-lock/events", bad), *good])
    assert head_count(engine, LOCKS[1]) == 3 and any("evil-lock" in r for r in bridge.refused)
    assert head_count(engine, "evil-lock") is None  # nothing stored for it
    with pytest.raises(BadMessage):
        parse(bad, "evil-lock")


def test_a_message_that_fails_alone_is_refused_and_the_others_keep_their_order(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locks = Locks(tmp_path)
    for lock_id in LOCKS[:3]:
        locks.trails[lock_id].add(3)
    first = {i: locks.messages(i) for i in LOCKS[:3]}
    for lock_id in LOCKS[:3]:
        locks.trails[lock_id].add(2)
    second = {i: locks.messages(i) for i in LOCKS[:3]}
    locks.close()
    real = bridge_module.ingest

    def ingest(session: Any, lock: Lock, message: dict[str, Any], *args: Any) -> Any:
        if lock.lock_id == LOCKS[0] and message["records"] and message["records"][0]["index"] == 3:
            raise OverflowError("Python int too large to convert to SQLite INTEGER")  # a fault not yet foreseen
        return real(session, lock, message, *args)

    monkeypatch.setattr(bridge_module, "ingest", ingest)
    bridge = CloudBridge(engine, ssl.create_default_context(), "127.0.0.1", 1)
    traffic = [m for i in LOCKS[:3] for m in first[i]] + [m for i in LOCKS[:3] for m in second[i]]
    bridge.process(traffic)
    assert [head_count(engine, i) for i in LOCKS[:3]] == [3, 5, 5]
    assert len(bridge.refused) == 1 and f"limen/{LOCKS[0]}/events" in bridge.refused[0] \
        and "OverflowError" in bridge.refused[0]
    with sessions(engine)() as s:
        assert s.scalars(select(Alarm.rule)).all() == []  # no message overtook another: no false gap


def test_a_busy_database_is_retried_not_refused(engine: Engine, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    locks = Locks(tmp_path)
    for lock_id in LOCKS[:2]:
        locks.trails[lock_id].add(3)
    traffic = [m for i in LOCKS[:2] for m in locks.messages(i)]
    locks.close()
    real = bridge_module.ingest
    failures = [0]

    def ingest(session: Any, lock: Lock, message: dict[str, Any], *args: Any) -> Any:
        if lock.lock_id == LOCKS[1] and failures[0] < 2:
            failures[0] += 1
            raise OperationalError("UPDATE", {}, Exception("database is locked"))
        return real(session, lock, message, *args)

    monkeypatch.setattr(bridge_module, "ingest", ingest)
    monkeypatch.setattr(bridge_module.time, "sleep", lambda s: None)
    bridge = CloudBridge(engine, ssl.create_default_context(), "127.0.0.1", 1)
    with pytest.raises(Unfinished):
        bridge.process(traffic)  # transient: raised for the caller to retry, nothing refused
    assert not bridge.refused and head_count(engine, LOCKS[1]) is None
    deliveries = [Delivery(t, p, k, 1) for k, (t, p) in enumerate(traffic)]
    assert bridge._process_retrying(deliveries)
    assert not bridge.refused and [head_count(engine, i) for i in LOCKS[:2]] == [3, 3]
