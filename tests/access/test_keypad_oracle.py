"""A refused keypad credential tells a guesser nothing (security review, finding 4).

A guest code outside its window, a revoked or used-up code, a disabled user's or an expired PIN answered
"code not accepted, 3 tries left" each time, in a fraction of a wrong code's time: the refusal did not count
toward the lockout, and `find_pin` stopped hashing at the first match.  Now each counts as a wrong code (the
audit keeps the real reason; the door says what it says for a wrong code) and `find_pin` hashes every
(candidate, stored PIN) pair whatever matches.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import time

import pytest

from limen import thresholds as T
from limen.access import lockout, offline, pins
from limen.access.attempt import Attempt, FaceEvidence, PinEntry, code_attempt, pin_attempt
from limen.access.model import AccessState, CredentialRule, Day, UserStatus, UserType, WeekDaySchedule
from limen.access.policy import find_pin, judge
from limen.decision import Assurance, Reason
from limen.pad.contract import Purpose
from limen.pad.fusion import BONA_FIDE, PadVerdict
from limen.service.messages import WRONG_CODE, keypad_message

from .builders import SALT, T0, at, household, offline_cred, pin_cred, user, with_user

SECRET = b"k" * 32


def _expired() -> AccessState:
    return replace(household(), credentials=(pin_cred("max", "135792", 2, valid_from=at(1), valid_until=at(2)),))


def _revoked() -> AccessState:
    return replace(household(), credentials=(pin_cred("max", "135792", 2, revoked=True),))


def _used_up() -> AccessState:
    return replace(household(), credentials=(pin_cred("max", "135792", 2, max_uses=1, uses=1),))


def _disabled() -> AccessState:
    return with_user(household(), user("max", 2, status=UserStatus.DISABLED))


def _remote_only() -> AccessState:
    return with_user(household(), user("max", 2, user_type=UserType.REMOTE_ONLY))


@pytest.mark.parametrize(("build", "reason"), [(_expired, Reason.CREDENTIAL_EXPIRED),
                                               (_revoked, Reason.CREDENTIAL_REVOKED),
                                               (_used_up, Reason.CREDENTIAL_EXHAUSTED),
                                               (_disabled, Reason.DISABLED_USER),
                                               (_remote_only, Reason.REMOTE_ONLY_USER)])
def test_a_refused_pin_counts_as_a_wrong_code(build: object, reason: Reason) -> None:
    s = build()  # type: ignore[operator]
    j = judge(pin_attempt("135792"), s, at(0))
    assert j.decision.reason is reason  # the owner's audit keeps why
    assert j.update.lockout is not None and j.update.lockout.wrong_code_count == 1
    assert keypad_message(j.decision) == WRONG_CODE == keypad_message(judge(pin_attempt("999111"), s, at(0)).decision)


def test_a_code_outside_its_window_or_revoked_counts_as_a_wrong_code() -> None:
    owner_secret = replace(household(), credentials=(*household().credentials, offline_cred("olga", SECRET, 3)))
    code = offline.issue_limited(SECRET, T0, 1, 0)
    grant = offline.verify(SECRET, code, T0)
    assert isinstance(grant, offline.OfflineGrant)
    assert judge(code_attempt(code), owner_secret, at(0.5)).decision.accepted  # within its hour
    late = judge(code_attempt(code), owner_secret, at(3))
    revoked = judge(code_attempt(code), replace(owner_secret, revoked_codes=frozenset({grant.code_id})), at(0.5))
    for j, reason in ((late, Reason.CREDENTIAL_EXPIRED), (revoked, Reason.CREDENTIAL_REVOKED)):
        assert j.decision.reason is reason and keypad_message(j.decision) == WRONG_CODE
        assert j.update.lockout is not None and j.update.lockout.wrong_code_count == 1


def test_find_pin_hashes_every_candidate_whatever_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    computed: list[str] = []
    submit = pins._submit

    def counting(pin: str, salt: bytes):  # type: ignore[no-untyped-def]
        computed.append(pin)
        return submit(pin, salt)

    hasher = pins.PinHasher(pins.NO_PEPPER, SALT)  # per-credential salts: one Argon2id per (window, PIN)
    s = replace(household(), pin_hasher=hasher, credentials=(
        pin_cred("olga", "246813", 1, secret=hasher.secret_for("246813")),
        pin_cred("max", "135792", 2, secret=hasher.secret_for("135792"))))  # two 6-digit PINs, the owner's first
    monkeypatch.setattr(pins, "_submit", counting)
    work = {}
    for entry in ("246813", "135792", "999111", "12469813500"):  # right (first, second), wrong, decoys
        computed.clear()
        found = find_pin(entry, s)
        work[entry] = (found.user_id if found else None, len(computed))
    assert work["246813"] == ("olga", 2) and work["135792"] == ("max", 2) and work["999111"] == (None, 2)
    assert work["12469813500"][1] == 2 * pins.guesses_per_entry(6, 11)  # every window × every PIN


# ------------------------------------------------------------------ a right entry refused for who or when
# (final review, finding 1): the door keeps its guiding message for the person the PIN belongs to, and the
# answer spends a try, so the lockout bounds what a guesser learns as it bounds what they open.

def _dual() -> AccessState:
    return with_user(household(), user("max", 2, credential_rule=CredentialRule.DUAL, last_pin_at=at(-1)))


def _tri() -> AccessState:
    return with_user(household(), user("max", 2, credential_rule=CredentialRule.TRI, last_pin_at=at(-1)))


def _outside_schedule() -> AccessState:
    s = with_user(household(), user("max", 2, user_type=UserType.WEEK_DAY_SCHEDULE))
    return replace(s, week_days=(WeekDaySchedule("max", 1, Day.MONDAY, time(6), time(7)),))  # at(0) is 10:00


def _reauth() -> AccessState:
    return replace(household(), owner_reauth_required=True)


@pytest.mark.parametrize(("build", "reason"), [(_dual, Reason.FACE_FIRST), (_tri, Reason.FACE_FIRST),
                                               (_outside_schedule, Reason.OUTSIDE_SCHEDULE),
                                               (_reauth, Reason.OWNER_REAUTH_REQUIRED)])
def test_a_right_pin_refused_for_who_or_when_spends_a_try(build: object, reason: Reason) -> None:
    s = build()  # type: ignore[operator]
    j = judge(pin_attempt("135792"), s, at(0))
    assert j.decision.reason is reason and keypad_message(j.decision) != WRONG_CODE  # the guiding message stays
    assert j.update.lockout is not None and j.update.lockout.wrong_code_count == 1
    assert j.update.lockout.window_count == 1


def test_a_guesser_told_face_first_is_locked_out_as_for_wrong_codes() -> None:
    s = _dual()
    for i in range(s.config.wrong_code_entry_limit):
        assert not lockout.is_locked_out(s.lockout, at(0))
        j = judge(pin_attempt("135792"), s, at(0))
        assert j.decision.reason is Reason.FACE_FIRST and j.update.lockout is not None, i
        s = replace(s, lockout=j.update.lockout)
    assert lockout.is_locked_out(s.lockout, at(0))
    assert judge(pin_attempt("135792"), s, at(0)).decision.reason is Reason.LOCKED_OUT


def _medium_face(uid: str) -> FaceEvidence:
    return FaceEvidence(uid, 0.30, 0.45, PadVerdict(True, BONA_FIDE, Assurance.MEDIUM, Purpose.VERIFY, scores={}))


def test_a_dual_rule_person_at_the_door_is_never_locked_out_in_normal_use() -> None:
    """The kiosk holds the face and judges the PIN with it (one attempt, not keypad-only: it costs nothing); a
    PIN typed first by mistake spends one try, the opening that follows resets the run, not the hourly count."""
    s = _dual()
    for visit in range(T.KEYPAD_WRONG_WINDOW_ENTRIES - 1):  # each visit: PIN first by mistake, face, face + PIN
        at_visit = at(visit * 0.05)
        first = judge(pin_attempt("135792"), s, at_visit)
        assert first.decision.reason is Reason.FACE_FIRST and first.update.lockout is not None
        s = replace(s, lockout=first.update.lockout)
        face = judge(Attempt((_medium_face("max"),)), s, at_visit)
        assert face.decision.reason is Reason.SECOND_FACTOR_MISSING  # held by the controller for the PIN
        both = judge(Attempt((_medium_face("max"), PinEntry("135792"))), s, at_visit)
        assert both.decision.accepted, visit
        assert both.update.lockout is not None and both.update.lockout.wrong_code_count == 0
        assert both.update.lockout.window_count == visit + 1  # an opening does not reset the hourly count
        s = replace(s, lockout=both.update.lockout)
    assert not lockout.is_locked_out(s.lockout, at(1))
    for _ in range(5):  # face first, as the door asks: no try spent
        j = judge(Attempt((_medium_face("max"), PinEntry("135792"))), s, at(1))
        assert j.decision.accepted and j.update.lockout is not None
        assert j.update.lockout.window_count == s.lockout.window_count


def test_a_held_face_with_someone_elses_right_pin_counts_as_a_wrong_code() -> None:
    """Max's face held, Olga's right PIN: 'factors name different users' said 'code not accepted' but did not
    count, so the tries left told Max he had found Olga's PIN."""
    s = _dual()
    right = judge(Attempt((_medium_face("max"), PinEntry("246813"))), s, at(0))
    wrong = judge(Attempt((_medium_face("max"), PinEntry("999111"))), s, at(0))
    for j in (right, wrong):
        assert keypad_message(j.decision) == WRONG_CODE
        assert j.update.lockout is not None and j.update.lockout.wrong_code_count == 1
