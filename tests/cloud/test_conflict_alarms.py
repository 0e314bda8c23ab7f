"""A lock whose chain is in conflict (its audit cut, deleted or rolled back) is not silenced: the cloud refuses to
extend the verified chain but still reads the ALARM records the lock sends, and raises them flagged unverified —
once per record, at most `CLOUD_UNVERIFIED_ALARMS_PER_HOUR` a lock an hour, then one `audit_unverified_capped`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from limen import thresholds as T
from limen.audit.event import EventKind
from limen_cloud.db import sessions
from limen_cloud.evidence import IngestPass, ingest, parse
from limen_cloud.models import Alarm, Lock

from .test_evidence import LOCK
from .test_pages import browser, log_in, own_lock, sign_up
from .test_replacement import NOW, Lock2
from .test_replacement import Rig as ReplacementRig

CAP = T.CLOUD_UNVERIFIED_ALARMS_PER_HOUR


class Rig(ReplacementRig):
    """The replacement tests' rig (locks' hardware, resend on the cloud's head, the owner's mark) with a clock."""

    def __init__(self, engine: Engine, tmp: Path) -> None:
        super().__init__(engine, tmp)
        self.now = NOW

    def publish(self, payload: bytes) -> None:
        with self.sessions() as s, s.begin():
            lock = s.get(Lock, LOCK)
            assert lock is not None
            result = ingest(s, lock, parse(payload, LOCK), self.now)
            if result.resend_from is not None:
                self.resend = result.resend_from

    def unverified(self) -> list[tuple[str, str | None]]:
        """(rule, record hash) of the unverified alarms, in the order raised."""
        with self.sessions() as s:
            rows = s.execute(select(Alarm.rule, Alarm.record_hash).where(Alarm.unverified.is_(True))
                             .order_by(Alarm.id)).all()
            return [(r.rule, r.record_hash) for r in rows]

    def count(self, rule: str) -> int:
        with self.sessions() as s:
            return len(s.scalars(select(Alarm.id).where(Alarm.rule == rule)).all())


@pytest.fixture
def rig(engine: Engine, tmp_path: Path) -> Iterator[Rig]:
    r = Rig(engine, tmp_path)
    yield r
    r.close()


def alarm(hw: Lock2, rule: str = "remote_unknown_source", n: int = 1) -> list[str]:
    """`n` ALARM records appended on the lock (as its anomaly monitor writes them); their hashes."""
    hw.trail.add(n, reason=rule, kind=EventKind.ALARM)
    return [r["hash"] for r in hw.trail.items[-n:]]


def deleted(rig: Rig) -> Lock2:
    """A lock that forwarded 14 records, then lost its audit.db (the cloud alarms the cut-back)."""
    hw = rig.hardware("lock")
    hw.add(13)
    assert hw.connect() == 14
    hw.trail.items.clear()  # audit.db deleted: the lock starts a new chain from genesis
    hw.connect()
    assert rig.pending() == ["audit_truncated"]
    return hw


def test_after_the_audit_is_deleted_a_later_alarm_on_the_lock_reaches_the_owner_unverified(rig: Rig) -> None:
    hw = deleted(rig)
    before, head = rig.held(), (rig.lock().head_count, rig.lock().head_hash)
    hw.add(2)  # ordinary records: nothing to raise
    [forged] = alarm(hw)  # a forged remote command, refused and recorded by the lock
    hw.add(1)
    hw.connect()
    assert rig.pending() == ["audit_rewritten", "audit_truncated", "lock:remote_unknown_source"]
    assert rig.unverified() == [("lock:remote_unknown_source", forged)]
    with rig.sessions() as s:
        raised = s.scalars(select(Alarm).where(Alarm.unverified.is_(True))).one()
        assert raised.detail.startswith("UNVERIFIED") and "record 2" in raised.detail
    # the verified chain is untouched: the same head, the same 14 records, none of the new chain's stored
    assert rig.held() == before and len(before) == 14
    assert (rig.lock().head_count, rig.lock().head_hash) == head


def test_a_resent_record_raises_its_alarm_once_even_after_acknowledgement(rig: Rig) -> None:
    hw = deleted(rig)
    [forged] = alarm(hw)
    hw.connect()
    rig.acknowledge()
    hw.forwarder.rewind(0)  # the lock sends the same records again
    hw.connect()
    assert rig.unverified() == [("lock:remote_unknown_source", forged)]
    assert rig.pending() == ["audit_rewritten", "audit_truncated"]  # the conflict, alarmed again once acknowledged

    twice = hw.forwarder._message(hw.trail.items, [], {"count": 1, "hash": forged}, 0)
    hw.trail.items.clear()
    [other] = alarm(hw, "door_forced")
    again = hw.forwarder._message(hw.trail.items, [], {"count": 1, "hash": other}, 0)
    with rig.sessions() as s, s.begin():  # two messages in one pass (the bridge's), rows written at its end
        batch = IngestPass(s)
        lock = s.get(Lock, LOCK)
        assert lock is not None
        for payload in (again, again, twice):
            ingest(s, lock, parse(payload, LOCK), rig.now, batch)
        batch.flush()
    assert rig.unverified() == [("lock:remote_unknown_source", forged), ("lock:door_forced", other)]


def test_a_flooding_lock_is_capped_per_hour_with_one_alarm_saying_so(rig: Rig) -> None:
    hw = deleted(rig)
    flood = alarm(hw, "keypad_brute_force", CAP + 10)
    hw.connect()
    assert [h for _, h in rig.unverified()] == flood[:CAP]
    assert rig.count("audit_unverified_capped") == 1
    rig.acknowledge()
    more = alarm(hw, "keypad_brute_force", 5)  # past the cloud's head: resent from it, read, still capped
    hw.connect()
    assert len(rig.unverified()) == CAP and rig.count("audit_unverified_capped") == 1
    assert len(rig.held()) == 14

    rig.now += timedelta(hours=1, minutes=1)  # the next hour: those dropped are raised when resent, up to the cap
    hw.add(1)
    hw.connect()
    assert [h for _, h in rig.unverified()] == flood + more
    assert rig.count("audit_unverified_capped") == 1


def test_in_conflict_a_record_that_does_not_hash_as_claimed_raises_nothing(rig: Rig) -> None:
    hw = deleted(rig)
    alarm(hw)
    hw.trail.items[0]["data"] = {"text": "edited after hashing"}
    hw.connect()
    assert rig.unverified() == []
    assert rig.pending() == ["audit_rewritten", "audit_truncated"]


def test_records_held_back_as_late_are_not_read_unverified_but_taken_when_resent(rig: Rig) -> None:
    hw = rig.hardware("lock")
    hw.add(4)
    hw.connect()
    hw.add(2)
    hw.conn.execute("UPDATE link_forward SET next_index = 7")  # records 5 and 6 went missing on the way
    [fine] = alarm(hw, "door_forced")
    hw.connect()  # record 7 is held back (no alarm), the cloud answers its head, the lock resends from 5
    assert rig.unverified() == []
    assert rig.pending() == ["lock:door_forced"] and rig.held()[-1] == fine


def test_after_the_owners_mark_the_new_chain_is_taken_and_its_alarms_are_verified(rig: Rig) -> None:
    old = rig.hardware("old")
    old.add(29)
    old.connect()
    new = rig.hardware("new")
    [first] = alarm(new, "tamper")
    new.connect()  # before the mark: a chain in conflict, its alarm raised unverified
    assert rig.unverified() == [("lock:tamper", first)]
    rig.acknowledge()
    rig.mark()
    [later] = alarm(new, "door_forced")
    new.connect()  # resent from the reset head (0): the new chain taken, as without this change
    assert rig.held() == [r["hash"] for r in new.trail.items]
    assert rig.lock().head_hash == later
    with rig.sessions() as s:
        verified = s.scalars(select(Alarm).where(Alarm.rule == "lock:door_forced")).one()
        assert (verified.unverified, verified.record_hash) == (False, None)
    assert rig.unverified() == [("lock:tamper", first)]


def test_the_unverified_flag_is_shown_on_the_alarms_page_and_in_the_api(engine: Engine) -> None:
    client = browser(engine)
    sign_up(client, "olga@example.org")
    own_lock(engine, client, "olga@example.org", LOCK, "Front door")
    with sessions(engine)() as s, s.begin():
        s.add(Alarm(lock_id=LOCK, rule="lock:tamper", detail="UNVERIFIED …: tamper", raised_at=datetime(2026, 3, 3),
                    unverified=True, record_hash="ab" * 32))
        s.add(Alarm(lock_id=LOCK, rule="audit_truncated", detail="cut back", raised_at=datetime(2026, 3, 3)))
    log_in(client, "olga@example.org")
    page = client.get("/alarms").text
    assert page.count("unverified: read from a chain in conflict") == 1
    token = client.post("/api/sessions", json={"email": "olga@example.org", "password": "correct horse battery"})
    listed = client.get("/api/alarms", headers={"Authorization": f"Bearer {token.json()['token']}"}).json()
    assert sorted((a["rule"], a["unverified"]) for a in listed) == [("audit_truncated", False), ("lock:tamper", True)]
    assert json.dumps(listed).count("record_hash") == 0  # the flag only: the key stays the cloud's

