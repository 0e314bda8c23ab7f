"""The cloud re-verifies each lock's chain: duplicates are harmless, every cut-back or rewrite is alarmed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, func, select

from limen.audit.chain import GENESIS, make_checkpoint, make_record
from limen.audit.event import Event, EventKind
from limen.audit.keys import SigningKey
from limen.db import open_db
from limen.link.forward import EventForwarder
from limen_cloud.db import sessions
from limen_cloud.evidence import BadMessage, ingest, parse
from limen_cloud.models import Alarm, Lock, Owner, Record

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LOCK = "front-door"


class Trail:
    """A lock's audit records, built with the lock's own chain functions, that a test may tamper with."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.signed: list[dict[str, Any]] = []
        self.key = SigningKey(Ed25519PrivateKey.generate())

    def add(self, n: int, reason: str = "granted", kind: EventKind = EventKind.UNLOCK_ATTEMPT) -> None:
        for _ in range(n):
            i = len(self.items)
            prev = self.items[-1]["hash"] if self.items else GENESIS
            event = Event(kind, T0 + timedelta(minutes=i), actor="u1", outcome="accept", reason=reason,
                          source="keypad", data={"method": "pin", "text": "door forced"})
            self.items.append(make_record(event, i, prev, (T0 + timedelta(minutes=i)).isoformat()))

    def count(self) -> int:
        return len(self.items)

    def records(self, start: int = 0, kinds: tuple[str, ...] = ()) -> Iterator[dict[str, Any]]:
        yield from (dict(r) for r in self.items[start:])

    def checkpoints(self) -> list[dict[str, Any]]:
        return self.signed

    def public_keys(self) -> dict[str, Any]:
        return {self.key.key_id: self.key.public}

    def sign(self, index: int, key: SigningKey | None = None) -> None:
        self.signed.append(make_checkpoint(key or self.key, LOCK, index, self.items[index]["hash"], "t", 100))


class Rig:
    def __init__(self, engine: Engine, tmp: Path) -> None:
        self.sessions = sessions(engine)
        with self.sessions() as s, s.begin():
            owner = Owner(email="olga@example.org", password_hash="x", created_at=datetime(2026, 1, 1))
            s.add(owner)
            s.flush()
            s.add(Lock(lock_id=LOCK, owner_id=owner.id, name="Front", head_count=0, reported_count=0))
        self.trail = Trail()
        self.conn = open_db(tmp / "limen.db")
        self.forwarder = EventForwarder(self.trail, self.conn, LOCK)
        self.alarms: list[str] = []

    def publish(self, payload: bytes) -> None:
        with self.sessions() as s, s.begin():
            lock = s.get(Lock, LOCK)
            assert lock is not None
            self.alarms += ingest(s, lock, parse(payload, LOCK), datetime(2026, 3, 3)).alarms

    def connect(self) -> int:
        return self.forwarder.forward(self.publish)

    def held(self) -> int:
        with self.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(Record)) or 0)

    def pending(self) -> list[str]:
        with self.sessions() as s:
            return list(s.scalars(select(Alarm.rule).where(Alarm.acknowledged_at.is_(None))).all())


@pytest.fixture
def rig(engine: Engine, tmp_path: Path) -> Iterator[Rig]:
    r = Rig(engine, tmp_path)
    yield r
    r.conn.close()


def test_forwarded_records_are_kept_once_and_resume_after_offline(rig: Rig) -> None:
    rig.trail.add(450)  # more than two batches
    assert rig.connect() == 450 and rig.held() == 450
    rig.trail.add(3)  # "days offline", then connected again: only the new ones travel
    assert rig.connect() == 3 and rig.held() == 453
    rig.conn.execute("UPDATE link_forward SET next_index = 100")  # the lock forgot what was acknowledged
    assert rig.connect() == 353 and rig.held() == 453
    assert rig.pending() == []


def test_alarms_raised_on_the_lock_reach_the_owner(rig: Rig) -> None:
    rig.trail.add(2)
    rig.trail.add(1, reason="door_forced", kind=EventKind.ALARM)
    rig.connect()
    assert rig.pending() == ["lock:door_forced"]


@pytest.mark.parametrize("tamper", ["cut_back", "deleted", "rolled_back_then_grew", "refilled_same_length",
                                    "edited_before_sending"])
def test_every_local_tampering_is_detected_once_connected(rig: Rig, tamper: str) -> None:
    rig.trail.add(40)
    if tamper == "edited_before_sending":
        rig.trail.items[30]["reason"] = "no_match"
        rig.connect()
        assert rig.pending() == ["audit_chain_broken"] and rig.held() == 30
        return
    rig.connect()
    assert rig.pending() == []
    if tamper == "cut_back":
        del rig.trail.items[25:]
    elif tamper == "deleted":
        rig.trail.items.clear()
    elif tamper == "rolled_back_then_grew":
        del rig.trail.items[35:]
        rig.trail.add(20, reason="other")
    else:
        del rig.trail.items[38:]
        rig.trail.add(2, reason="other")
    rig.connect()
    expected = {"cut_back": "audit_truncated", "deleted": "audit_truncated",
                "rolled_back_then_grew": "audit_chain_broken", "refilled_same_length": "audit_rewritten"}[tamper]
    assert rig.pending() == [expected]
    rig.connect()
    assert rig.pending() == [expected]  # one alarm until acknowledged, not one per connection
    assert rig.held() == 40  # the cloud's copy is evidence: never overwritten


@pytest.mark.parametrize("payload", [b"\xff", b"[]", b'{"v":2}', b'{"v":1,"lock":"back-door","records":[],'
                                     b'"head":{"count":0}}', b'{"v":1,"lock":"front-door","records":[1],'
                                     b'"head":{"count":0}}', b'{"v":1,"lock":"front-door","records":[]}'])
def test_malformed_or_misaddressed_messages_are_refused_whole(payload: bytes) -> None:
    with pytest.raises(BadMessage):
        parse(payload, LOCK)


def test_signed_checkpoints_are_checked_against_the_pinned_key(rig: Rig) -> None:
    rig.trail.add(30)
    rig.trail.sign(9)
    rig.connect()
    assert rig.pending() == []
    rig.trail.add(30)
    rig.trail.sign(39, key=SigningKey(Ed25519PrivateKey.generate()))  # signed by someone without the lock's key
    rig.connect()
    assert rig.pending() == ["audit_checkpoint_invalid"]


def test_a_key_announced_after_the_first_is_alarmed(rig: Rig) -> None:
    rig.trail.add(10)
    rig.connect()
    intruder = SigningKey(Ed25519PrivateKey.generate())
    rig.trail.key = intruder  # e.g. a key file dropped into the lock's keys directory
    rig.trail.add(10)
    rig.trail.sign(19)
    rig.connect()
    assert rig.pending() == ["audit_key_added"]


def test_a_pass_that_cannot_be_written_raises_sqlalchemys_error_and_moves_no_head(engine: Engine) -> None:
    """The pass's rows go in one round trip on PostgreSQL (a psycopg pipeline): a failure surfaces as SQLAlchemy's
    own exception (the bridge tells a busy database from a message that cannot be stored by it) and the
    transaction keeps nothing, not even the heads written with it."""
    from sqlalchemy.exc import IntegrityError

    from limen_cloud.evidence import IngestPass

    with sessions(engine)() as s, s.begin():
        s.add_all(Lock(lock_id=f"l{i}", owner_id=None, name="x", head_count=0, reported_count=0) for i in range(2))
        s.add(Record(lock_id="l0", idx=0, hash="h0", kind="x", at="t", body="{}"))
    with pytest.raises(IntegrityError), sessions(engine)() as s, s.begin():
        batch = IngestPass(s)
        for lock in s.scalars(select(Lock).order_by(Lock.lock_id)):
            lock.head_count = 1
            batch.add_record(lock.lock_id, {"index": 0, "hash": "h1", "kind": "x", "at": "t"})  # l0's is held
            batch.add_alarm(lock.lock_id, "lock:x", "d", datetime(2026, 1, 1))
        batch.flush()
    with sessions(engine)() as s:
        assert list(s.scalars(select(Lock.head_count))) == [0, 0]
        assert s.scalar(select(func.count()).select_from(Alarm)) == 0
        assert list(s.scalars(select(Record.hash))) == ["h0"]


def test_a_pass_writes_the_heads_it_moved_and_leaves_other_changes_to_the_orm(engine: Engine) -> None:
    from limen_cloud.evidence import IngestPass

    with sessions(engine)() as s, s.begin():
        s.add_all(Lock(lock_id=f"l{i}", owner_id=None, name="x", head_count=0, reported_count=0) for i in range(3))
    with sessions(engine)() as s, s.begin():
        batch = IngestPass(s)
        l0, l1, l2 = s.scalars(select(Lock).order_by(Lock.lock_id))
        l0.head_count, l0.head_hash, l1.reported_count = 1, "h", 5
        l2.name = "renamed"  # not a head column: the ORM's flush writes it
        batch.add_record("l0", {"index": 0, "hash": "h", "kind": "x", "at": "t"})
        batch.flush()
        l0.reported_count = 1  # changed after the pass's flush: still written (ORM)
    with sessions(engine)() as s:
        rows = s.execute(select(Lock.lock_id, Lock.head_count, Lock.head_hash, Lock.reported_count, Lock.name)
                         .order_by(Lock.lock_id)).all()
        assert [tuple(r) for r in rows] == [("l0", 1, "h", 1, "x"), ("l1", 0, None, 5, "x"),
                                            ("l2", 0, None, 0, "renamed")]
