"""The rule table of `access.policy`, one test per row (pure: no database)."""

from __future__ import annotations

from dataclasses import replace
from datetime import time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from limen.access import offline
from limen.access.attempt import (
    Attempt,
    FaceEvidence,
    FingerprintEvidence,
    PinEntry,
    RfidEntry,
    code_attempt,
    key_attempt,
    keypad_entry,
    pin_attempt,
    remote_attempt,
)
from limen.access.model import (
    Credential,
    CredentialRule,
    CredentialType,
    Day,
    HolidaySchedule,
    LockConfig,
    LockoutState,
    OperatingMode,
    PermissionLevel,
    UserStatus,
    UserType,
    WeekDaySchedule,
    YearDaySchedule,
)
from limen.access.policy import AssuranceRule, evaluate, judge, rfid_digest
from limen.decision import Assurance, Outcome, QualityGate, Reason
from limen.pad.contract import Purpose
from limen.pad.fusion import ATTACK, BONA_FIDE, INSUFFICIENT, PadVerdict

from .builders import SALT, at, household, offline_cred, pin_cred, state, user, with_user


def verdict(reason: str = BONA_FIDE, assurance: Assurance = Assurance.HIGH, **scores: float) -> PadVerdict:
    return PadVerdict(reason == BONA_FIDE, reason, assurance, Purpose.VERIFY, scores=scores)


FACE_OK = FaceEvidence("max", 0.30, 0.45, verdict(depth=0.9))
RGB_FACE = FaceEvidence("max", 0.30, 0.45, verdict(assurance=Assurance.MEDIUM, texture=0.8, motion=0.5))


def face(uid: str | None = "max", distance: float = 0.30, pad: bool = True) -> Attempt:
    return Attempt((FaceEvidence(uid, distance, 0.45, verdict(BONA_FIDE if pad else ATTACK)),))


def no_evidence(refusal: Reason | None, gate: QualityGate | None = None, pad: PadVerdict | None = None) -> Attempt:
    return Attempt((FaceEvidence(None, None, None, pad, quality_gate=gate, refusal=refusal),))


def test_valid_pin_opens_and_names_user_and_credential() -> None:
    d = evaluate(pin_attempt("135792"), household(), at())
    assert d.outcome is Outcome.ACCEPT and d.reason is Reason.GRANTED
    assert d.user_id == "max" and d.credential_id == "pin:2"


def test_anti_peep_decoys_before_and_after() -> None:
    d = evaluate(pin_attempt("90135792447"), household(), at())
    assert d.accepted and d.user_id == "max"


def test_unknown_pin_is_unknown_credential_and_counts() -> None:
    j = judge(pin_attempt("999111"), household(), at())
    assert j.decision.reason is Reason.UNKNOWN_CREDENTIAL and not j.decision.accepted
    assert j.update.lockout is not None and j.update.lockout.wrong_code_count == 1


def test_empty_attempt_is_refused() -> None:
    assert evaluate(Attempt(()), household(), at()).reason is Reason.UNKNOWN_CREDENTIAL


def test_non_digit_pin_is_refused_without_error() -> None:
    assert evaluate(pin_attempt("12a456"), household(), at()).reason is Reason.UNKNOWN_CREDENTIAL


@pytest.mark.parametrize("status", [UserStatus.DISABLED, UserStatus.AVAILABLE])
def test_disabled_user(status: UserStatus) -> None:
    s = with_user(household(), user("max", 2, status=status))
    assert evaluate(pin_attempt("135792"), s, at()).reason is Reason.DISABLED_USER


def test_non_access_user_never_opens() -> None:
    s = with_user(household(), user("max", 2, user_type=UserType.NON_ACCESS))
    d = evaluate(pin_attempt("135792"), s, at())
    assert d.reason is Reason.DISABLED_USER and "non-access" in d.detail


def test_remote_only_user_refused_at_keypad() -> None:
    s = with_user(household(), user("max", 2, user_type=UserType.REMOTE_ONLY))
    assert evaluate(pin_attempt("135792"), s, at()).reason is Reason.REMOTE_ONLY_USER


def test_week_day_schedule_inside_and_outside() -> None:
    s = with_user(household(), user("max", 2, user_type=UserType.WEEK_DAY_SCHEDULE))
    s = replace(s, week_days=(WeekDaySchedule("max", 1, Day.MONDAY, time(9), time(17)),))
    assert evaluate(pin_attempt("135792"), s, at(0)).accepted          # Monday 10:00
    assert evaluate(pin_attempt("135792"), s, at(8)).reason is Reason.OUTSIDE_SCHEDULE  # 18:00
    assert evaluate(pin_attempt("135792"), s, at(24)).reason is Reason.OUTSIDE_SCHEDULE  # Tuesday


def test_week_day_schedule_uses_lock_time_zone() -> None:
    s = with_user(household(), user("max", 2, user_type=UserType.WEEK_DAY_SCHEDULE))
    s = replace(s, week_days=(WeekDaySchedule("max", 1, Day.MONDAY, time(9), time(10)),),
                config=LockConfig(timezone="Europe/Paris"))
    assert evaluate(pin_attempt("135792"), s, at(-1.5)).accepted       # 08:30 UTC = 09:30 Paris
    assert not evaluate(pin_attempt("135792"), s, at(0)).accepted      # 11:00 Paris


def test_year_day_schedule() -> None:
    s = with_user(household(), user("max", 2, user_type=UserType.YEAR_DAY_SCHEDULE))
    s = replace(s, year_days=(YearDaySchedule("max", 1, at(-1), at(1)),))
    assert evaluate(pin_attempt("135792"), s, at()).accepted
    assert evaluate(pin_attempt("135792"), s, at(2)).reason is Reason.OUTSIDE_SCHEDULE


def test_schedule_restricted_without_schedules_is_refused() -> None:
    s = with_user(household(), user("max", 2, user_type=UserType.SCHEDULE_RESTRICTED))
    assert evaluate(pin_attempt("135792"), s, at()).reason is Reason.OUTSIDE_SCHEDULE


def test_schedule_restricted_needs_both_kinds() -> None:
    s = with_user(household(), user("max", 2, user_type=UserType.SCHEDULE_RESTRICTED))
    s = replace(s, week_days=(WeekDaySchedule("max", 1, Day.MONDAY, time(9), time(17)),),
                year_days=(YearDaySchedule("max", 1, at(1), at(30)),))
    assert evaluate(pin_attempt("135792"), s, at(0)).reason is Reason.OUTSIDE_SCHEDULE
    assert evaluate(pin_attempt("135792"), s, at(2)).accepted


@pytest.mark.parametrize(
    ("mode", "remote_ok", "local_ok"),
    [
        (OperatingMode.NORMAL, True, True),
        (OperatingMode.VACATION, True, False),
        (OperatingMode.PRIVACY, False, False),
        (OperatingMode.NO_REMOTE_LOCK_UNLOCK, False, True),
        (OperatingMode.PASSAGE, True, True),
    ],
)
def test_operating_modes(mode: OperatingMode, remote_ok: bool, local_ok: bool) -> None:
    s = replace(household(), mode=mode)
    remote = evaluate(remote_attempt("olga", True, pin="246813"), s, at())
    local = evaluate(pin_attempt("135792"), s, at())
    assert remote.accepted is remote_ok and local.accepted is local_ok
    if not remote_ok:
        assert remote.reason is Reason.MODE_FORBIDS
    if not local_ok:
        assert local.reason is Reason.MODE_FORBIDS


def test_passage_mode_opens_without_credential() -> None:
    s = replace(household(), mode=OperatingMode.PASSAGE)
    d = evaluate(pin_attempt("000001"), s, at())
    assert d.accepted and d.user_id is None and "passage" in d.detail


def test_holiday_schedule_switches_mode() -> None:
    s = replace(household(), holidays=(HolidaySchedule(1, at(-1), at(1), OperatingMode.VACATION),))
    assert evaluate(pin_attempt("135792"), s, at()).reason is Reason.MODE_FORBIDS
    assert evaluate(pin_attempt("135792"), s, at(2)).accepted


def test_locked_out_refuses_valid_pin() -> None:
    s = replace(household(), lockout=LockoutState(locked_until=at(0.1)))
    d = evaluate(pin_attempt("135792"), s, at())
    assert d.reason is Reason.LOCKED_OUT and d.scores["lockout_remaining_s"] == pytest.approx(360)


def test_keypad_lockout_does_not_block_face() -> None:
    s = replace(household(), lockout=LockoutState(locked_until=at(1)))
    assert evaluate(face(), s, at()).accepted


def test_pad_failure_counts_as_biometric_failure() -> None:
    j = judge(face(pad=False), household(), at())
    assert j.decision.reason is Reason.PAD_FAILED
    assert j.update.lockout is not None and j.update.lockout.bio_fail_count == 1
    assert j.update.lockout.wrong_code_count == 0


def test_face_no_match() -> None:
    assert evaluate(face(distance=0.6), household(), at()).reason is Reason.NO_MATCH
    assert evaluate(face(uid=None), household(), at()).reason is Reason.NO_MATCH


def test_biometric_failures_then_pin_required() -> None:
    s = replace(household(), lockout=LockoutState(bio_fail_count=5))
    assert evaluate(face(), s, at()).reason is Reason.PIN_REQUIRED
    j = judge(pin_attempt("135792"), s, at())
    assert j.decision.accepted and j.update.lockout is not None and j.update.lockout.bio_fail_count == 0


def test_face_requires_pin_after_72_hours_without_it() -> None:
    s = with_user(household(), user("max", 2, last_pin_at=at(-73)))
    assert evaluate(face(), s, at()).reason is Reason.PIN_REQUIRED
    s = with_user(household(), user("max", 2, last_pin_at=at(-71)))
    assert evaluate(face(), s, at()).accepted


def test_face_user_without_pin_is_not_held_to_72_hours() -> None:
    s = state(user("max", 2))
    assert evaluate(face(), s, at()).accepted


def test_dual_rule_face_and_pin() -> None:
    s = with_user(household(), user("max", 2, credential_rule=CredentialRule.DUAL, last_pin_at=at(-1)))
    assert evaluate(face(), s, at()).reason is Reason.SECOND_FACTOR_MISSING
    both = Attempt((FACE_OK, PinEntry("135792")))
    d = evaluate(both, s, at())
    assert d.accepted and d.credential_id == "face:max+pin:2"
    assert d.scores["pad.depth"] == 0.9 and d.score == 0.30 and d.threshold == 0.45


def test_tri_rule_needs_three_types() -> None:
    s = with_user(household(), user("max", 2, credential_rule=CredentialRule.TRI, last_pin_at=at(-1)))
    two = Attempt((FACE_OK, PinEntry("135792")))
    assert evaluate(two, s, at()).reason is Reason.SECOND_FACTOR_MISSING
    finger = FingerprintEvidence("max", 80.0, 40.0, pad_passed=True)
    assert evaluate(Attempt((FACE_OK, PinEntry("135792"), finger)), s, at()).accepted


def test_factors_of_different_users_are_refused() -> None:
    both = Attempt((FACE_OK, PinEntry("246813")))
    assert evaluate(both, household(), at()).reason is Reason.UNKNOWN_CREDENTIAL


def test_unknown_user_from_face() -> None:
    assert evaluate(face(uid="ghost"), household(), at()).reason is Reason.UNKNOWN_USER


def test_rfid_tag() -> None:
    tag = Credential("rfid:1", "max", CredentialType.RFID, 1, secret=rfid_digest("04:A2:19", SALT))
    s = replace(household(), credentials=(*household().credentials, tag))
    assert evaluate(Attempt((RfidEntry("04:a2:19"),)), s, at()).accepted
    assert evaluate(Attempt((RfidEntry("04:a2:18"),)), s, at()).reason is Reason.UNKNOWN_CREDENTIAL


def test_revoked_credential() -> None:
    s = replace(household(), credentials=(pin_cred("max", "135792", 2, revoked=True),))
    assert evaluate(pin_attempt("135792"), s, at()).reason is Reason.CREDENTIAL_REVOKED


def test_credential_validity_window() -> None:
    s = replace(household(), credentials=(pin_cred("max", "135792", 2, valid_from=at(1), valid_until=at(2)),))
    assert evaluate(pin_attempt("135792"), s, at(0)).reason is Reason.CREDENTIAL_EXPIRED
    assert evaluate(pin_attempt("135792"), s, at(1.5)).accepted
    assert evaluate(pin_attempt("135792"), s, at(2)).reason is Reason.CREDENTIAL_EXPIRED


def test_max_uses() -> None:
    s = replace(household(), credentials=(pin_cred("max", "135792", 2, max_uses=2, uses=2),))
    assert evaluate(pin_attempt("135792"), s, at()).reason is Reason.CREDENTIAL_EXHAUSTED
    j = judge(pin_attempt("135792"), replace(s, credentials=(pin_cred("max", "135792", 2, max_uses=2, uses=1),)),
              at())
    assert j.decision.accepted and j.update.credentials_used == ("pin:2",)


def test_expiring_after_first_use() -> None:
    cred = pin_cred("max", "135792", 2, expire_after_first_use_s=600, first_used_at=at(0))
    s = replace(household(), credentials=(cred,))
    assert evaluate(pin_attempt("135792"), s, at(0.1)).accepted
    assert evaluate(pin_attempt("135792"), s, at(0.2)).reason is Reason.CREDENTIAL_EXPIRED


def test_pin_too_old_when_owner_requires_changes() -> None:
    s = with_user(household(), user("max", 2, pin_max_age_days=30))
    assert evaluate(pin_attempt("135792"), s, at()).accepted
    assert evaluate(pin_attempt("135792"), s, at(24 * 31)).reason is Reason.CREDENTIAL_EXPIRED


def test_backup_pin_limited_offline_uses() -> None:
    cred = pin_cred("max", "135792", 2, backup=True, offline_max_uses=2, offline_uses=2)
    s = replace(household(), credentials=(cred,), online=False)
    assert evaluate(pin_attempt("135792"), s, at()).reason is Reason.CREDENTIAL_EXHAUSTED
    assert evaluate(pin_attempt("135792"), replace(s, online=True), at()).accepted


def test_duress_opens_and_raises_silent_alarm() -> None:
    s = with_user(household(), user("max", 2, user_type=UserType.FORCED))
    j = judge(pin_attempt("135792"), s, at())
    assert j.decision.accepted and j.decision.reason is Reason.DURESS
    assert j.update.alarms == ("duress",)


def test_remote_needs_owner_signature_and_pin() -> None:
    s = household()
    assert evaluate(remote_attempt("olga", False, pin="246813"), s, at()).reason is Reason.REMOTE_NOT_AUTHORISED
    assert evaluate(remote_attempt("max", True, pin="135792"), s, at()).reason is Reason.REMOTE_NOT_AUTHORISED
    assert evaluate(remote_attempt("olga", True), s, at()).reason is Reason.PIN_REQUIRED
    wrong = judge(remote_attempt("olga", True, pin="135792"), s, at())  # another user's PIN
    assert wrong.decision.reason is Reason.UNKNOWN_CREDENTIAL
    assert evaluate(remote_attempt("olga", True, pin="246813"), s, at()).accepted
    no_pin = replace(s, config=LockConfig(require_pin_for_remote=False))
    assert evaluate(remote_attempt("olga", True), no_pin, at()).accepted


def test_lockdown_refuses_all_but_key_and_owner_recovery() -> None:
    s = replace(household(), lockdown=True)
    assert evaluate(pin_attempt("246813"), s, at()).reason is Reason.LOCKDOWN
    assert evaluate(face(), s, at()).reason is Reason.LOCKDOWN
    assert evaluate(key_attempt(), s, at()).accepted
    assert evaluate(remote_attempt("olga", True, pin="246813", link_verified=True), s, at()).accepted
    assert evaluate(remote_attempt("max", True, pin="135792", link_verified=True), s, at()).reason is Reason.LOCKDOWN
    web = evaluate(remote_attempt("olga", True, pin="246813", device="web"), s, at())  # logged in, not signed
    assert web.reason is Reason.LOCKDOWN and "signed" in web.detail  # the owner is told why


def test_a_lockdown_refusal_names_its_cause_and_what_lifts_it() -> None:
    from limen.tamper.lockdown import LockdownCause

    owner = evaluate(pin_attempt("246813"), replace(household(), lockdown=True,
                                                    lockdown_cause=LockdownCause.COMMAND), at())
    assert owner.detail.startswith("owner lockdown") and "limen access lockdown off" in owner.detail
    assert "tamper" not in owner.detail and "erased" in owner.detail  # "nothing was erased"
    tamper = evaluate(pin_attempt("246813"), replace(household(), lockdown=True,
                                                     lockdown_cause=LockdownCause.TAMPER), at())
    assert tamper.detail.startswith("tamper lockdown") and "limen tamper clear" in tamper.detail
    unknown = evaluate(pin_attempt("246813"), replace(household(), lockdown=True), at())
    assert unknown.detail == tamper.detail  # no cause known: the strict way out
    web = evaluate(remote_attempt("olga", True, pin="246813", device="web"),
                   replace(household(), lockdown=True, lockdown_cause=LockdownCause.COMMAND), at())
    assert web.detail.startswith("owner lockdown") and "signed" in web.detail


def test_mechanical_key_offline_limit_raises_alarm_and_needs_owner() -> None:
    s = replace(household(), online=False, key_offline_uses=2)
    j = judge(key_attempt(), s, at())
    assert j.decision.accepted and j.update.owner_reauth_required is True
    assert j.update.alarms == ("mechanical_key_offline_limit",)
    s = replace(s, owner_reauth_required=True, key_offline_uses=3)
    assert evaluate(pin_attempt("135792"), s, at()).reason is Reason.OWNER_REAUTH_REQUIRED
    owner = judge(pin_attempt("246813"), s, at())
    assert owner.decision.accepted and owner.update.owner_reauth_required is False
    assert owner.update.key_offline_uses == 0


def test_mechanical_key_online_is_recorded_without_counting() -> None:
    j = judge(key_attempt(), household(), at())
    assert j.decision.accepted and j.update.key_offline_uses is None and j.update.mode is None


def test_mechanical_key_ends_privacy_mode() -> None:
    j = judge(key_attempt(), replace(household(), mode=OperatingMode.PRIVACY), at())
    assert j.decision.accepted and j.update.mode is OperatingMode.NORMAL


def test_offline_codes_rules() -> None:
    secret = offline.new_secret()
    s = replace(household(), credentials=(*household().credentials, offline_cred("olga", secret)))
    code = offline.issue_single_use(secret, at(), 7)
    first = judge(code_attempt(code), s, at(1))
    assert first.decision.accepted and first.decision.user_id == "olga"
    assert first.update.code_use is not None
    used = replace(s, code_uses=(first.update.code_use,))
    assert evaluate(code_attempt(code), used, at(2)).reason is Reason.CODE_REPLAYED
    assert evaluate(code_attempt(code), s, at(7)).reason is Reason.UNKNOWN_CREDENTIAL  # beyond 6 h
    revoked = replace(s, revoked_codes=frozenset({first.update.code_use.code_id}))
    assert evaluate(code_attempt(code), revoked, at(1)).reason is Reason.CREDENTIAL_REVOKED


def test_revoked_code_secret_refuses_its_codes() -> None:
    secret = offline.new_secret()
    cred = replace(offline_cred("olga", secret), revoked=True)
    s = replace(household(), credentials=(*household().credentials, cred))
    code = offline.issue_limited(secret, at(), 48, 0)
    assert evaluate(code_attempt(code), s, at(1)).reason is Reason.CREDENTIAL_REVOKED


def test_clear_code_revokes_and_keeps_door_shut() -> None:
    secret = offline.new_secret()
    s = replace(household(), credentials=(*household().credentials, offline_cred("olga", secret)))
    code = offline.issue_limited(secret, at(), 48, 0)
    clear = offline.issue_clear(secret, code, at())
    j = judge(code_attempt(clear), s, at(1))
    assert not j.decision.accepted and j.decision.reason is Reason.CODE_CLEARED
    assert j.update.revoke_code is not None
    revoked = replace(s, revoked_codes=frozenset({j.update.revoke_code}))
    assert evaluate(code_attempt(code), revoked, at(1)).reason is Reason.CREDENTIAL_REVOKED


def test_offline_code_issuer_must_still_program() -> None:
    secret = offline.new_secret()
    s = replace(household(), credentials=(offline_cred("max", secret),))
    code = offline.issue_limited(secret, at(), 48, 0)
    assert evaluate(code_attempt(code), s, at(1)).reason is Reason.DISABLED_USER


def test_period_quota_per_day() -> None:
    secret = offline.new_secret()
    s = replace(household(), credentials=(offline_cred("olga", secret),))
    code = offline.issue_period_quota(secret, at(), 7, 1, 0)
    j = judge(code_attempt(code), s, at(1))
    assert j.decision.accepted and j.update.code_use is not None
    used = replace(s, code_uses=(j.update.code_use,))
    assert evaluate(code_attempt(code), used, at(2)).reason is Reason.CREDENTIAL_EXHAUSTED
    assert evaluate(code_attempt(code), used, at(24)).accepted


def test_keypad_entry_parsing() -> None:
    assert isinstance(keypad_entry("135792#").factors[0], PinEntry)
    assert keypad_entry("*123").factors[0].__class__.__name__ == "CodeEntry"


def test_rgb_face_alone_is_a_first_factor() -> None:
    d = evaluate(Attempt((RGB_FACE,)), household(), at())
    assert d.reason is Reason.SECOND_FACTOR_MISSING and not d.accepted
    assert d.detail == "face recognised; enter your PIN/code to complete"
    assert d.assurance is Assurance.MEDIUM and d.user_id == "max"


def test_rgb_face_plus_pin_opens() -> None:
    d = evaluate(Attempt((RGB_FACE, PinEntry("135792"))), household(), at())
    assert d.accepted and d.credential_id == "face:max+pin:2"


def test_high_assurance_face_alone_opens() -> None:
    assert evaluate(Attempt((FACE_OK,)), household(), at()).accepted


def test_allow_face_alone_rgb_lets_medium_open_but_not_low() -> None:
    rule = AssuranceRule.from_settings(allow_face_alone_rgb=True)
    assert evaluate(Attempt((RGB_FACE,)), household(), at(), rule).accepted
    low = FaceEvidence("max", 0.30, 0.45, verdict(assurance=Assurance.LOW, texture=0.8))
    assert evaluate(Attempt((low,)), household(), at(), rule).reason is Reason.SECOND_FACTOR_MISSING


def test_fingerprint_alone_needs_sensor_liveness() -> None:
    s = replace(household(), credentials=(*household().credentials,
                Credential(id="fingerprint:1", user_id="max", type=CredentialType.FINGERPRINT, index=1)))
    plain = FingerprintEvidence("max", 80.0, 40.0, pad_passed=True)
    live = FingerprintEvidence("max", 80.0, 40.0, pad_passed=True, sensor_liveness=True)
    assert evaluate(Attempt((plain,)), s, at()).reason is Reason.SECOND_FACTOR_MISSING
    assert evaluate(Attempt((live,)), s, at()).accepted
    assert evaluate(Attempt((plain, RGB_FACE)), s, at()).accepted  # face + fingerprint: two factors


def test_first_factor_without_a_pin_says_the_owner_must_add_one() -> None:
    d = evaluate(Attempt((RGB_FACE,)), state(user("max", 2)), at())
    assert d.reason is Reason.SECOND_FACTOR_MISSING and "owner adds one" in d.detail


@pytest.mark.parametrize(("refusal", "gate", "words"), [
    (Reason.NO_FACE, QualityGate.NO_FACE, "uncover"),
    (Reason.LOW_QUALITY, QualityGate.TOO_SMALL, "come closer"),
    (Reason.LOW_QUALITY, QualityGate.UNDEREXPOSED, "too dark"),
])
def test_no_face_is_not_an_attack_and_does_not_count(refusal: Reason, gate: QualityGate, words: str) -> None:
    j = judge(no_evidence(refusal, gate), household(), at())
    assert j.decision.reason is refusal and words in j.decision.detail
    assert j.decision.quality_gate is gate
    assert j.update.lockout is None or j.update.lockout.bio_fail_count == 0


def test_insufficient_pad_evidence_does_not_count_but_attack_does() -> None:
    thin = Attempt((FaceEvidence("max", 0.3, 0.45, verdict(INSUFFICIENT, Assurance.NONE)),))
    j = judge(thin, household(), at())
    assert j.decision.reason is Reason.INSUFFICIENT_EVIDENCE and "come closer" in j.decision.detail
    assert j.update.lockout is None or j.update.lockout.bio_fail_count == 0
    j = judge(face(pad=False), household(), at())
    assert j.update.lockout is not None and j.update.lockout.bio_fail_count == 1


def test_face_without_pad_fails_closed_without_counting() -> None:
    j = judge(Attempt((FaceEvidence("max", 0.3, 0.45, None),)), household(), at())
    assert j.decision.reason is Reason.INSUFFICIENT_EVIDENCE and not j.decision.accepted
    assert j.update.lockout is None or j.update.lockout.bio_fail_count == 0


def test_vault_erased_face_is_refused_without_counting() -> None:
    j = judge(no_evidence(Reason.VAULT_ERASED), household(), at())
    assert j.decision.reason is Reason.VAULT_ERASED
    assert j.update.lockout is None or j.update.lockout.bio_fail_count == 0


def test_biometric_failures_do_not_strand_a_person_without_pin() -> None:
    s = replace(state(user("max", 2)), lockout=LockoutState(bio_fail_count=9))
    assert evaluate(face(), s, at()).accepted  # a HIGH face, nobody to ask a PIN of
    s = replace(household(), lockout=LockoutState(bio_fail_count=9))
    assert evaluate(face(uid=None), s, at()).reason is Reason.NO_MATCH  # a stranger: "not recognised"


def test_programming_user_opens() -> None:
    s = with_user(household(), user("max", 2, user_type=UserType.PROGRAMMING, permission=PermissionLevel.OWNER))
    assert evaluate(pin_attempt("135792"), s, at()).accepted


def test_evaluate_is_pure() -> None:
    s = household()
    before = repr(s)
    first = evaluate(pin_attempt("999111"), s, at())
    second = evaluate(pin_attempt("999111"), s, at())
    assert first == second and repr(s) == before
    assert evaluate(pin_attempt("135792"), s, at() + timedelta(days=400)).accepted


@given(entry=st.text(alphabet="0123456789", min_size=0, max_size=14))
@settings(max_examples=60, deadline=None)
def test_entries_without_a_stored_pin_never_open(entry: str) -> None:
    s = household()
    contains = any(p in entry[:12] for p in ("246813", "135792"))
    assert evaluate(pin_attempt(entry), s, at()).accepted is contains


@given(mode=st.sampled_from(list(OperatingMode)), lockdown=st.booleans(), online=st.booleans(),
       typed=st.text(alphabet="0123456789", min_size=6, max_size=6))
@settings(max_examples=60, deadline=None)
def test_unknown_codes_never_open_outside_passage(mode: OperatingMode, lockdown: bool, online: bool,
                                                  typed: str) -> None:
    s = replace(household(), mode=mode, lockdown=lockdown, online=online)
    d = evaluate(code_attempt("1" + typed + "00000"), s, at())
    assert d.accepted is (mode is OperatingMode.PASSAGE and not lockdown)


def test_keypad_lockout_also_refuses_a_remote_pin() -> None:
    """A PIN guessed through the remote path counts against and is stopped by the same lockout."""
    s = replace(household(), lockout=LockoutState(locked_until=at(0.1)))
    d = evaluate(remote_attempt("olga", True, pin="246813"), s, at())
    assert d.reason is Reason.LOCKED_OUT and not d.accepted
    assert evaluate(remote_attempt("olga", True, pin="246813"), household(), at()).accepted


def test_remote_pin_must_be_exact_no_decoys() -> None:
    s = household()
    assert evaluate(pin_attempt("9246813"), s, at()).accepted  # decoys allowed at the keypad
    d = evaluate(remote_attempt("olga", True, pin="9246813"), s, at())
    assert not d.accepted and d.reason is Reason.UNKNOWN_CREDENTIAL
