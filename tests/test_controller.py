"""AccessController: credential → policy → door → audit, for every way in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from limen import thresholds
from limen.access.attempt import PinEntry
from limen.access.model import PermissionLevel, UserType
from limen.access.store import AccessStore
from limen.audit.event import Event, EventKind, MemoryAuditSink
from limen.clock import FixedClock
from limen.controller import AccessController
from limen.db import open_db
from limen.decision import Assurance, Reason, accept
from limen.door import LockState, SimulatedLock
from limen.errors import AuditError

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
OWNER_PIN, MAX_PIN = "246813", "135792"


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thresholds, "PIN_ARGON2_MEMORY_KIB", 64)
    monkeypatch.setattr(thresholds, "PIN_ARGON2_TIME_COST", 1)


class Rig:
    def __init__(self, path: Path) -> None:
        self.clock = FixedClock(T0)
        self.sink = MemoryAuditSink()
        self.store = AccessStore(open_db(path), self.sink)
        self.owner = self.store.add_user("Olga", "", T0, pin=OWNER_PIN, permission=PermissionLevel.OWNER).user_id
        self.max = self.store.add_user("Max", self.owner, T0, pin=MAX_PIN).user_id
        self.door = SimulatedLock(self.clock, travel_s=0.5, auto_relock_s=30)
        self.controller = AccessController(self.store, self.door, self.sink, self.clock)

    def settle(self) -> LockState:
        self.clock.advance(0.5)
        return self.controller.tick()

    def events(self, kind: EventKind) -> list[Event]:
        return [e for e in self.sink.events if e.kind is kind]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path / "limen.db")
    yield r
    r.store.conn.close()


def test_valid_pin_opens_and_is_audited(rig: Rig) -> None:
    d = rig.controller.keypad(MAX_PIN + "#")
    assert d.accepted and rig.settle() is LockState.UNLOCKED
    attempt = rig.events(EventKind.UNLOCK_ATTEMPT)[-1]
    assert attempt.outcome == "accept" and attempt.actor == rig.max and attempt.source == "keypad"
    assert MAX_PIN not in repr(rig.sink.events)
    assert [e.data["state"] for e in rig.events(EventKind.LOCK_STATE)] == ["unlocked"]
    assert attempt.data["method"] == "pin" and attempt.subject == "pin:2"


def test_wrong_pin_keeps_door_locked(rig: Rig) -> None:
    d = rig.controller.keypad("999111")
    assert not d.accepted and rig.settle() is LockState.LOCKED
    assert rig.events(EventKind.UNLOCK_ATTEMPT)[-1].reason == Reason.UNKNOWN_CREDENTIAL.value


def test_auto_relock_after_auto_relock_time(rig: Rig) -> None:
    rig.controller.keypad(MAX_PIN)
    rig.settle()
    rig.clock.advance(29)
    assert rig.controller.tick() is LockState.UNLOCKED
    rig.clock.advance(1)
    assert rig.controller.tick() is LockState.LOCKING
    assert rig.settle() is LockState.LOCKED


def test_duress_opens_and_raises_silent_alarm(rig: Rig) -> None:
    rig.store.add_user("Forced", rig.owner, T0, user_type=UserType.FORCED)
    from limen.access.model import CredentialType

    rig.store.add_credential("Forced", CredentialType.PIN, rig.owner, T0, secret="975313")
    d = rig.controller.keypad("975313")
    assert d.accepted and rig.settle() is LockState.UNLOCKED
    alarm = rig.events(EventKind.ALARM)[-1]
    assert alarm.reason == "duress" and alarm.data["silent"] is True
    assert rig.events(EventKind.UNLOCK_ATTEMPT)[-1].data["duress"] is True


def test_mechanical_key_offline_limit(rig: Rig) -> None:
    rig.store.set_online(False)
    for _ in range(3):
        assert rig.controller.key_turned().accepted
    assert rig.events(EventKind.ALARM)[-1].reason == "mechanical_key_offline_limit"
    assert rig.door.relay is False  # the key is physical: the relay was never driven
    assert rig.controller.keypad(MAX_PIN).reason is Reason.OWNER_REAUTH_REQUIRED
    assert rig.controller.keypad(OWNER_PIN).accepted
    assert rig.controller.keypad(MAX_PIN).accepted


def test_face_with_pad_verdict(rig: Rig) -> None:
    class Verdict:
        passed = True
        assurance = Assurance.HIGH
        scores = {"depth": 0.97}

    matched = accept(Reason.MATCHED, user_id=rig.max, score=0.3, threshold=0.45)
    rig.controller.keypad(MAX_PIN)  # strong credential used recently
    d = rig.controller.face(matched, Verdict())
    assert d.accepted and d.scores["pad.depth"] == 0.97
    spoof = type("Spoof", (), {"passed": False, "assurance": "low", "scores": {"depth": 0.1}})()
    assert rig.controller.face(matched, spoof).reason is Reason.PAD_FAILED


def test_face_plus_pin_for_dual_rule(rig: Rig) -> None:
    from limen.access.model import CredentialRule

    rig.store.modify_user("Max", rig.owner, T0, credential_rule=CredentialRule.DUAL)
    matched = accept(Reason.MATCHED, user_id=rig.max, score=0.3, threshold=0.45)
    verdict = type("V", (), {"passed": True, "assurance": "high", "scores": {}})()
    assert rig.controller.face(matched, verdict).reason is Reason.SECOND_FACTOR_MISSING
    assert rig.controller.face(matched, verdict, PinEntry(MAX_PIN)).accepted


def test_remote_needs_owner_and_is_refused_in_no_remote_mode(rig: Rig) -> None:
    from limen.access.model import OperatingMode

    assert rig.controller.remote(rig.owner, authorised=True, pin=OWNER_PIN).accepted
    assert rig.controller.remote(rig.max, authorised=True, pin=MAX_PIN).reason is Reason.REMOTE_NOT_AUTHORISED
    rig.store.set_mode(OperatingMode.NO_REMOTE_LOCK_UNLOCK, rig.owner, T0)
    assert rig.controller.remote(rig.owner, authorised=True, pin=OWNER_PIN).reason is Reason.MODE_FORBIDS
    assert rig.events(EventKind.UNLOCK_ATTEMPT)[-1].source == "remote"


def test_lockdown_refuses_codes_but_not_key(rig: Rig) -> None:
    rig.store.set_lockdown(True, "tamper", T0)
    assert rig.controller.keypad(OWNER_PIN).reason is Reason.LOCKDOWN
    assert rig.controller.key_turned().accepted


def test_audit_failure_keeps_door_shut_but_counts(rig: Rig) -> None:
    class Failing:
        def append(self, event: Event) -> int:
            raise AuditError("disk full")

    controller = AccessController(rig.store, rig.door, Failing(), rig.clock)
    with pytest.raises(AuditError):
        controller.keypad(MAX_PIN)
    assert rig.door.relay is False
    with pytest.raises(AuditError):
        controller.keypad("999111")
    assert rig.store.load_state().lockout.wrong_code_count == 1


def test_jam_is_reported_as_alarm(rig: Rig) -> None:
    rig.door.jam = True
    rig.controller.keypad(MAX_PIN)
    rig.clock.advance(thresholds.DOOR_JAM_TIMEOUT_S + 0.1)
    assert rig.controller.tick() is LockState.JAMMED
    assert rig.events(EventKind.ALARM)[-1].reason == "jammed"


def test_secure_is_safe_any_time(rig: Rig) -> None:
    rig.controller.keypad(MAX_PIN)
    rig.settle()
    rig.controller.secure()
    assert rig.settle() is LockState.LOCKED


def test_door_sensor_events(rig: Rig) -> None:
    rig.controller.keypad(MAX_PIN)
    rig.settle()
    rig.door.door_open = True
    rig.controller.tick()
    rig.door.door_open = False
    rig.controller.tick()
    assert [e.data["state"] for e in rig.events(EventKind.DOOR_STATE)] == ["open", "closed"]


def test_events_pass_the_real_audit_log(rig: Rig, settings) -> None:  # type: ignore[no-untyped-def]
    audit_pkg = pytest.importorskip("limen.audit")
    log = audit_pkg.open_audit(settings)
    try:
        controller = AccessController(rig.store, rig.door, log, rig.clock)
        rig.store.set_online(False)
        for typed in (MAX_PIN, "999111", "*123"):
            controller.keypad(typed)
        matched = accept(Reason.MATCHED, user_id=rig.max, score=0.3, threshold=0.45,
                         scores={"sharpness": 80.0})
        verdict = type("V", (), {"passed": False, "assurance": "low", "scores": {"depth": 0.1}})()
        controller.face(matched, verdict)
        controller.remote(rig.owner, authorised=True, pin=OWNER_PIN, device="phone-1")
        for _ in range(3):
            controller.key_turned()
        rig.clock.advance(1)
        controller.tick()
        records = list(log.records(0))
        kinds = [r["kind"] for r in records]
        assert kinds.count("unlock_attempt") == 8
        assert any(r["kind"] == "alarm" and r["reason"] == "mechanical_key" for r in records)
        assert MAX_PIN not in repr(records) and OWNER_PIN not in repr(records)
        log.verify()
    finally:
        log.close()
