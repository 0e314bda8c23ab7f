"""AccessController: credential → policy → door → audit, for every way in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from limen import thresholds
from limen.access.attempt import Attempt, FaceEvidence, FingerprintEvidence
from limen.access.model import PermissionLevel, UserType
from limen.access.policy import AssuranceRule, finger_decades, fusion
from limen.access.store import AccessStore
from limen.audit.event import Event, EventKind, MemoryAuditSink
from limen.capture import Capture
from limen.clock import FixedClock
from limen.controller import AccessController
from limen.db import open_db
from limen.decision import Assurance, QualityGate, Reason
from limen.door import LockState, SimulatedLock
from limen.errors import AuditError
from limen.pad.contract import Purpose
from limen.pad.fusion import ATTACK, BONA_FIDE, PadVerdict

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
OWNER_PIN, MAX_PIN = "246813", "135792"


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thresholds, "PIN_ARGON2_MEMORY_KIB", 64)
    monkeypatch.setattr(thresholds, "PIN_ARGON2_TIME_COST", 1)


def pad(reason: str = BONA_FIDE, assurance: Assurance = Assurance.MEDIUM) -> PadVerdict:
    return PadVerdict(reason == BONA_FIDE, reason, assurance, Purpose.VERIFY, scores={"texture": 1.5})


class Faces:
    """A recognizer double: returns the evidence it is given, whatever the capture."""

    def __init__(self) -> None:
        self.next: FaceEvidence | None = None
        self.calls: list[str | None] = []

    def identify(self, capture: Capture) -> FaceEvidence:
        self.calls.append(None)
        assert self.next is not None
        return self.next

    def verify(self, name: str, capture: Capture) -> FaceEvidence:
        self.calls.append(name)
        assert self.next is not None
        return self.next


class Fingers:
    """A fingerprint-source double: returns the evidence it is given, records who it was compared with."""

    def __init__(self) -> None:
        self.next: FingerprintEvidence | None = None
        self.calls: list[str | None] = []

    def identify(self, image: np.ndarray) -> FingerprintEvidence:
        self.calls.append(None)
        assert self.next is not None
        return self.next

    def verify(self, name: str, image: np.ndarray) -> FingerprintEvidence:
        self.calls.append(name)
        assert self.next is not None
        return self.next


FRAME = Capture.single(np.zeros((8, 8, 3), np.uint8), "test")
PRINT = np.zeros((300, 300), np.uint8)


class Rig:
    def __init__(self, path: Path) -> None:
        self.clock = FixedClock(T0)
        self.sink = MemoryAuditSink()
        self.store = AccessStore(open_db(path), self.sink)
        self.owner = self.store.add_user("Olga", "", T0, pin=OWNER_PIN, permission=PermissionLevel.OWNER).user_id
        self.max = self.store.add_user("Max", self.owner, T0, pin=MAX_PIN).user_id
        self.door = SimulatedLock(self.clock, travel_s=0.5, auto_relock_s=30)
        self.faces = Faces()
        self.fingers = Fingers()
        self.controller = AccessController(self.store, self.door, self.sink, self.clock, faces=self.faces,
                                           fingers=self.fingers)

    def face(self, assurance: Assurance = Assurance.MEDIUM, reason: str = BONA_FIDE, user: str | None = None,
             distance: float = 0.3) -> FaceEvidence:
        self.faces.next = FaceEvidence(user or self.max, distance, 0.45, pad(reason, assurance))
        return self.faces.next

    def finger(self, score: float | None = None, *, user: str | None = None, liveness: bool = False,
               pad_passed: bool = True, refusal: Reason | None = None) -> FingerprintEvidence:
        score = thresholds.FINGER_MATCH_DEFAULT + 1.0 if score is None else score   # a match unless told
        self.fingers.next = FingerprintEvidence(user or self.max, None if refusal else score,
                                                None if refusal else thresholds.FINGER_MATCH_DEFAULT, pad_passed,
                                                liveness, refusal=refusal, detail="unreadable" if refusal else "")
        return self.fingers.next

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


def test_duress_opens_and_is_marked_for_the_silent_alarm(rig: Rig) -> None:
    rig.store.add_user("Forced", rig.owner, T0, user_type=UserType.FORCED)
    from limen.access.model import CredentialType

    rig.store.add_credential("Forced", CredentialType.PIN, rig.owner, T0, secret="975313")
    d = rig.controller.keypad("975313")
    assert d.accepted and rig.settle() is LockState.UNLOCKED
    assert rig.events(EventKind.UNLOCK_ATTEMPT)[-1].data["duress"] is True  # the audit's rules raise the alarm


def test_mechanical_key_offline_limit(rig: Rig) -> None:
    rig.store.set_online(False)
    for _ in range(3):
        assert rig.controller.key_turned().accepted
    alarm = rig.events(EventKind.ALARM)[-1]
    assert alarm.reason == "mechanical_key" and alarm.outcome == "critical" and "re-authorise" in alarm.data["text"]
    assert rig.door.relay is False  # the key is physical: the relay was never driven
    assert rig.controller.keypad(MAX_PIN).reason is Reason.OWNER_REAUTH_REQUIRED
    assert rig.controller.keypad(OWNER_PIN).accepted
    assert rig.controller.keypad(MAX_PIN).accepted


def test_rgb_face_alone_asks_for_the_second_factor(rig: Rig) -> None:
    rig.face(Assurance.MEDIUM)
    d = rig.controller.face(FRAME)
    assert d.reason is Reason.SECOND_FACTOR_MISSING and d.detail == "face recognised; enter your PIN/code to complete"
    assert rig.settle() is LockState.LOCKED


def test_rgb_face_then_pin_at_the_same_kiosk_opens_as_one_attempt(rig: Rig) -> None:
    rig.face(Assurance.MEDIUM)
    assert rig.controller.face(FRAME, session="kiosk-1").reason is Reason.SECOND_FACTOR_MISSING
    assert rig.controller.holding_face("kiosk-1") and not rig.controller.holding_face("kiosk-2")
    d = rig.controller.keypad(MAX_PIN, session="kiosk-1")
    assert d.accepted and d.credential_id == "face:" + rig.max + "+pin:2"
    assert rig.events(EventKind.UNLOCK_ATTEMPT)[-1].data["factors"] == ["face", "pin"]
    assert not rig.controller.holding_face("kiosk-1")  # used once


def test_held_face_is_bound_to_its_session_and_expires(rig: Rig) -> None:
    from limen.access.model import CredentialRule

    rig.store.modify_user("Max", rig.owner, T0, credential_rule=CredentialRule.DUAL)  # a PIN alone cannot open
    rig.face(Assurance.MEDIUM)
    rig.controller.face(FRAME, session="kiosk-1")
    assert rig.controller.keypad(MAX_PIN, session="kiosk-2").reason is Reason.FACE_FIRST
    rig.controller.face(FRAME, session="kiosk-1")
    rig.clock.advance(thresholds.SECOND_FACTOR_WINDOW_S + 1)
    assert rig.controller.keypad(MAX_PIN, session="kiosk-1").reason is Reason.FACE_FIRST


def test_high_assurance_face_alone_opens(rig: Rig) -> None:
    rig.face(Assurance.HIGH)
    d = rig.controller.face(FRAME)
    assert d.accepted and d.assurance is Assurance.HIGH and d.scores["pad.texture"] == 1.5
    assert rig.settle() is LockState.UNLOCKED


def test_allow_face_alone_rgb_opens_a_medium_face(rig: Rig) -> None:
    controller = AccessController(rig.store, rig.door, rig.sink, rig.clock, faces=rig.faces,
                                  rule=AssuranceRule.from_settings(allow_face_alone_rgb=True))
    rig.face(Assurance.MEDIUM)
    assert controller.face(FRAME).accepted


def test_claimed_face_goes_through_verify(rig: Rig) -> None:
    rig.face(Assurance.HIGH)
    assert rig.controller.face(FRAME, claim="Max").accepted and rig.faces.calls == ["Max"]


def test_attack_counts_and_is_recorded_as_attack(rig: Rig) -> None:
    rig.face(Assurance.MEDIUM, reason=ATTACK)
    d = rig.controller.face(FRAME)
    assert d.reason is Reason.PAD_FAILED
    assert rig.events(EventKind.UNLOCK_ATTEMPT)[-1].data["pad"] == "attack"
    assert rig.store.load_state().lockout.bio_fail_count == 1


def test_no_face_is_not_counted(rig: Rig) -> None:
    rig.faces.next = FaceEvidence(None, None, None, None, quality_gate=QualityGate.NO_FACE, refusal=Reason.NO_FACE)
    d = rig.controller.face(FRAME)
    assert d.reason is Reason.NO_FACE and "uncover" in d.detail
    assert rig.store.load_state().lockout.bio_fail_count == 0
    assert "pad" not in rig.events(EventKind.UNLOCK_ATTEMPT)[-1].data


def test_one_audit_record_per_face_attempt(rig: Rig) -> None:
    before = len(rig.sink.events)
    rig.face(Assurance.HIGH)
    rig.controller.face(FRAME)
    new = rig.sink.events[before:]
    assert [e.kind for e in new if e.kind is EventKind.UNLOCK_ATTEMPT] == [EventKind.UNLOCK_ATTEMPT]


def test_face_plus_pin_for_dual_rule(rig: Rig) -> None:
    from limen.access.model import CredentialRule

    rig.store.modify_user("Max", rig.owner, T0, credential_rule=CredentialRule.DUAL)
    rig.face(Assurance.HIGH)
    assert rig.controller.face(FRAME, session="k").reason is Reason.SECOND_FACTOR_MISSING
    assert rig.controller.keypad(MAX_PIN, session="k").accepted


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


def test_jam_is_recorded_and_the_audit_raises_the_alarm(rig: Rig, settings) -> None:  # type: ignore[no-untyped-def]
    from limen.audit import open_audit

    log = open_audit(settings)
    try:
        controller = AccessController(rig.store, rig.door, log, rig.clock)
        rig.door.jam = True
        controller.keypad(MAX_PIN)
        rig.clock.advance(thresholds.DOOR_JAM_TIMEOUT_S + 0.1)
        assert controller.tick() is LockState.JAMMED
        alarms = [r for r in log.records(0, ("alarm",))]
        assert [a["reason"] for a in alarms] == ["lock_jammed"]
    finally:
        log.close()


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
        controller.faces = rig.faces
        rig.face(Assurance.LOW, reason=ATTACK)
        controller.face(FRAME)
        controller.remote(rig.owner, authorised=True, pin=OWNER_PIN, device="phone-1")
        for _ in range(3):
            controller.key_turned()
        rig.clock.advance(1)
        controller.tick()
        records = list(log.records(0))
        kinds = [r["kind"] for r in records]
        assert kinds.count("unlock_attempt") == 8
        assert any(r["kind"] == "alarm" and r["reason"] == "mechanical_key" for r in records)
        assert any(r["kind"] == "alarm" and r["reason"] == "presentation_attack" for r in records)
        assert MAX_PIN not in repr(records) and OWNER_PIN not in repr(records)
        log.verify()
    finally:
        log.close()


def test_dark_frames_raise_no_alarm_and_do_not_count(rig: Rig, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from limen.audit import open_audit
    from limen.bio.templates import InMemoryTemplateStore
    from limen.recognition import FaceRecognizer

    def alarmist_pad(capture: Capture, purpose: Purpose, boxes: object = None) -> PadVerdict:
        return pad(ATTACK)  # would say attack if it were asked: a dark frame must never reach it

    log = open_audit(settings)
    try:
        faces = FaceRecognizer(open_db(tmp_path / "faces.db"), InMemoryTemplateStore(), log, pad=alarmist_pad)
        controller = AccessController(rig.store, rig.door, log, rig.clock, faces=faces)
        dark = Capture.single(np.zeros((240, 320, 3), np.uint8), "covered camera")
        for _ in range(thresholds.BIO_FAILURE_LIMIT + 1):
            d = controller.face(dark)
            assert d.reason is Reason.NO_FACE and not d.accepted
        assert rig.store.load_state().lockout.bio_fail_count == 0
        assert [r["reason"] for r in log.records(0, ("alarm",))] == []
        attempts = list(log.records(0, ("unlock_attempt",)))
        assert len(attempts) == thresholds.BIO_FAILURE_LIMIT + 1  # one record per attempt, none by the recognizer
        assert "uncover" in attempts[-1]["data"]["detail"]
    finally:
        log.close()


def test_a_face_asked_for_its_pin_after_biometric_failures_is_held_too(rig: Rig) -> None:
    from limen.access.model import CredentialRule

    rig.store.modify_user("Max", rig.owner, T0, credential_rule=CredentialRule.DUAL)
    for _ in range(thresholds.BIO_FAILURE_LIMIT):
        rig.face(Assurance.HIGH, distance=0.9)  # not recognised: counts
        assert rig.controller.face(FRAME).reason is Reason.NO_MATCH
    rig.face(Assurance.HIGH)
    assert rig.controller.face(FRAME, session="k").reason is Reason.PIN_REQUIRED
    assert rig.controller.keypad(MAX_PIN, session="k").accepted  # face + PIN: the dual rule is met


# ------------------------------------------------------------------ fingerprint


def test_finger_alone_from_a_sensor_without_liveness_asks_for_the_second_factor(rig: Rig) -> None:
    rig.finger()
    d = rig.controller.finger(PRINT, session="k")
    assert d.reason is Reason.SECOND_FACTOR_MISSING and "fingerprint recognised" in d.detail
    assert d.assurance is Assurance.MEDIUM and rig.settle() is LockState.LOCKED
    assert rig.controller.holding("k") == "fingerprint" and not rig.controller.holding_face("k")
    assert rig.fingers.calls == [None]                          # 1:N without a claim
    d = rig.controller.keypad(MAX_PIN, session="k")           # finger + PIN: one attempt
    assert d.accepted and d.user_id == rig.max and rig.settle() is LockState.UNLOCKED
    attempts = rig.events(EventKind.UNLOCK_ATTEMPT)
    assert len(attempts) == 2 and attempts[-1].data["factors"] == ["fingerprint", "pin"]
    assert attempts[0].data["method"] == "fingerprint" and attempts[0].source == "fingerprint_sensor"
    assert attempts[0].data.get("pad") is None                  # no liveness report: PAD did not judge a finger


def test_finger_with_sensor_liveness_opens_alone(rig: Rig) -> None:
    rig.finger(liveness=True)
    d = rig.controller.finger(PRINT)
    assert d.accepted and d.assurance is Assurance.HIGH and rig.settle() is LockState.UNLOCKED
    assert rig.events(EventKind.UNLOCK_ATTEMPT)[-1].data["pad"] == "bona_fide"


def test_held_face_then_finger_of_that_person_is_two_factors(rig: Rig) -> None:
    rig.face()
    assert rig.controller.face(FRAME, session="k").reason is Reason.SECOND_FACTOR_MISSING
    rig.finger()
    d = rig.controller.finger(PRINT, session="k")
    assert d.accepted and d.user_id == rig.max and rig.settle() is LockState.UNLOCKED
    assert rig.fingers.calls == [rig.max]                       # compared 1:1 with the held face's person
    assert rig.events(EventKind.UNLOCK_ATTEMPT)[-1].data["factors"] == ["fingerprint", "face"]
    assert not rig.controller.holding("k")


def test_held_finger_then_face_is_two_factors(rig: Rig) -> None:
    rig.finger()
    rig.controller.finger(PRINT, session="k")
    rig.face()
    d = rig.controller.face(FRAME, session="k")
    assert d.accepted and rig.faces.calls == [rig.max]


def test_fusion_lets_a_matched_face_carry_a_finger_below_its_own_threshold(rig: Rig) -> None:
    weak = (thresholds.FINGER_MATCH_FMR_1E3 + thresholds.FINGER_MATCH_FMR_1E4) / 2
    assert weak < thresholds.FINGER_MATCH_DEFAULT
    rig.finger(weak)
    assert rig.controller.finger(PRINT).reason is Reason.NO_MATCH          # alone: not recognised
    rig.face()
    rig.controller.face(FRAME, session="k")
    rig.finger(weak)
    d = rig.controller.finger(PRINT, session="k")
    assert d.accepted and d.scores["fusion.decades"] == pytest.approx(4.0 + 3.5)


def test_fusion_never_rescues_a_finger_below_its_floor_or_an_unmatched_face(rig: Rig) -> None:
    rig.face()
    rig.controller.face(FRAME, session="k")
    rig.finger(thresholds.FINGER_MATCH_FMR_1E3 - 0.05)                # above 1e-2, below the floor (1e-3)
    d = rig.controller.finger(PRINT, session="k")
    assert d.reason is Reason.NO_MATCH and rig.settle() is LockState.LOCKED
    unmatched = FaceEvidence(rig.max, 0.6, 0.45, pad())
    strong = FingerprintEvidence(rig.max, 9.0, thresholds.FINGER_MATCH_DEFAULT, True)
    fused = fusion((unmatched, strong))
    assert fused is not None and not fused.accepted             # a strong finger does not make a face
    d = rig.controller.attempt(Attempt((unmatched, strong)))
    assert d.reason is Reason.NO_MATCH


def test_fusion_needs_one_person_and_usable_evidence(rig: Rig) -> None:
    face = FaceEvidence(rig.max, 0.3, 0.45, pad())
    assert fusion((face, FingerprintEvidence(rig.owner, 2.0, 1.5, True))) is None
    assert fusion((face, FingerprintEvidence(rig.max, 2.0, 1.5, False))) is None
    assert fusion((face, FingerprintEvidence(rig.max, None, None, True, refusal=Reason.LOW_QUALITY))) is None
    assert fusion((FingerprintEvidence(rig.max, 2.0, 1.5, True),)) is None
    assert finger_decades(0.0) == 0.0 and finger_decades(100.0) == thresholds.FUSION_FINGER_MAX_DECADES
    assert finger_decades(thresholds.FINGER_MATCH_FMR_1E3) == pytest.approx(3.0)


def test_face_and_finger_captured_together(rig: Rig) -> None:
    rig.finger()
    rig.face()
    d = rig.controller.face_and_finger(FRAME, PRINT)
    assert d.accepted and rig.fingers.calls == [None] and rig.faces.calls == [rig.max]
    assert len(rig.events(EventKind.UNLOCK_ATTEMPT)) == 1


def test_unreadable_finger_is_refused_without_counting(rig: Rig) -> None:
    rig.finger(refusal=Reason.LOW_QUALITY)
    d = rig.controller.finger(PRINT, session="k")
    assert d.reason is Reason.LOW_QUALITY and d.detail == "unreadable"
    assert d.scores["bio_fail_count"] == 0 and not rig.controller.holding("k")


def test_finger_attack_and_non_match_count_as_biometric_failures(rig: Rig) -> None:
    rig.finger(pad_passed=False)
    d = rig.controller.finger(PRINT)
    assert d.reason is Reason.PAD_FAILED and rig.events(EventKind.UNLOCK_ATTEMPT)[-1].data["pad"] == "attack"
    rig.finger(0.1)
    d = rig.controller.finger(PRINT)
    assert d.reason is Reason.NO_MATCH and d.scores["bio_fail_count"] == 2


def test_controller_without_a_finger_source_is_a_wiring_error(rig: Rig) -> None:
    bare = AccessController(rig.store, rig.door, rig.sink, rig.clock)
    with pytest.raises(RuntimeError):
        bare.finger(PRINT)


def test_an_unreadable_second_factor_keeps_the_first_within_its_window(rig: Rig) -> None:
    rig.face()
    rig.controller.face(FRAME, session="k")
    rig.finger(refusal=Reason.LOW_QUALITY)
    assert rig.controller.finger(PRINT, session="k").reason is Reason.LOW_QUALITY
    assert rig.controller.holding("k") == "face"                # place the finger again: the face still waits
    rig.finger()
    assert rig.controller.finger(PRINT, session="k").accepted
    rig.finger()
    rig.controller.finger(PRINT, session="j")
    rig.faces.next = FaceEvidence(None, None, None, None, quality_gate=QualityGate.NO_FACE, refusal=Reason.NO_FACE)
    assert rig.controller.face(FRAME, session="j").reason is Reason.NO_FACE
    assert rig.controller.holding("j") == "fingerprint"
    rig.clock.advance(thresholds.SECOND_FACTOR_WINDOW_S + 1)
    assert rig.controller.holding("j") is None                  # …but never past its window


def test_pending_tamper_secures_the_door_even_when_the_audit_fails(rig: Rig) -> None:
    assert rig.controller.keypad(MAX_PIN).accepted and rig.settle() is LockState.UNLOCKED

    class Pending:
        finished = 0

        def pending(self) -> bool:
            return True

        def finish(self) -> None:
            self.finished += 1

    class Failing:
        def append(self, event: Event) -> int:
            raise AuditError("disk full")

    intent = Pending()
    controller = AccessController(rig.store, rig.door, Failing(), rig.clock, tamper=intent)  # type: ignore[arg-type]
    with pytest.raises(AuditError):
        controller.keypad(MAX_PIN)
    assert intent.finished == 1
    assert rig.door.relay is False  # driven shut before the record was attempted (fail closed)


def test_the_door_key_switch_is_recorded_as_the_mechanical_key(rig: Rig) -> None:
    rig.door.key_in = True
    rig.controller.tick()  # a key already in when polling starts is no new use
    rig.door.key_in = False
    rig.controller.tick()
    assert [e for e in rig.events(EventKind.UNLOCK_ATTEMPT) if e.data["method"] == "key"] == []
    rig.store.set_online(False)
    for _ in range(3):  # three key uses while offline, seen by the poll alone
        rig.door.key_in = True
        rig.controller.tick()
        rig.controller.tick()  # still in: the same use
        rig.door.key_in = False
        rig.controller.tick()
    keys = [e for e in rig.events(EventKind.UNLOCK_ATTEMPT) if e.data["method"] == "key"]
    assert len(keys) == 3 and all(e.outcome == "accept" for e in keys)
    assert rig.events(EventKind.ALARM)[-1].reason == "mechanical_key"
    assert rig.door.relay is False  # the key is physical: the relay was never driven
    assert rig.controller.keypad(MAX_PIN).reason is Reason.OWNER_REAUTH_REQUIRED


def test_a_burst_without_a_live_challenge_is_refused_recorded_and_not_counted(rig: Rig) -> None:
    """The controller, not the web layer, refuses an unchallenged burst: one record, no recognition, no count."""
    rig.face(Assurance.HIGH)  # a face that would open alone, were it looked at
    before = len(rig.sink.events)
    d = rig.controller.face(FRAME, session="kiosk", challenged=True)  # no moves in the capture's meta
    assert not d.accepted and d.reason is Reason.INSUFFICIENT_EVIDENCE and "challenge" in d.detail
    assert rig.faces.calls == [] and rig.settle() is LockState.LOCKED
    new = [e for e in rig.sink.events[before:] if e.kind is EventKind.UNLOCK_ATTEMPT]
    assert [(e.outcome, e.reason) for e in new] == [("reject", "insufficient_evidence")]
    assert rig.store.load_state().lockout.bio_fail_count == 0
    assert not any(e.kind is EventKind.ALARM for e in rig.sink.events[before:])
    answered = Capture(FRAME.frames, source="test", meta={"challenge": "left,right"})
    assert rig.controller.face(answered, challenged=True).accepted and rig.faces.calls == [None]


def test_an_unchallenged_burst_leaves_a_held_finger_waiting(rig: Rig) -> None:
    rig.finger()
    rig.controller.finger(PRINT, session="kiosk")
    assert rig.controller.holding("kiosk") == "fingerprint"
    rig.controller.face(FRAME, session="kiosk", challenged=True)
    assert rig.controller.holding("kiosk") == "fingerprint"


def test_an_owner_s_lock_request_is_recorded_by_the_controller_before_the_bolt_moves(rig: Rig) -> None:
    rig.controller.keypad(MAX_PIN)
    rig.settle()
    before = len(rig.sink.events)
    rig.controller.lock("olga", source="api")
    rig.settle()
    states = [(e.actor, e.source, e.data["state"]) for e in rig.sink.events[before:] if e.kind is EventKind.LOCK_STATE]
    assert states == [("olga", "api", "locking"), ("system", "door", "locked")]
    before = len(rig.sink.events)
    rig.controller.keypad(MAX_PIN)
    rig.settle()
    rig.controller.lock()  # the door's own relock or a link command: no request record
    rig.settle()
    assert [e.data["state"] for e in rig.sink.events[before:] if e.kind is EventKind.LOCK_STATE] == [
        "unlocked", "locked"]
