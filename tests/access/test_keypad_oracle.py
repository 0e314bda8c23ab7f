"""A refused keypad credential tells a guesser nothing (security review, finding 4).

A guest code outside its window, a revoked or used-up code, a disabled user's or an expired PIN answered
"code not accepted, 3 tries left" each time, in a fraction of a wrong code's time: the refusal did not count
toward the lockout, and `find_pin` stopped hashing at the first match.  Now each counts as a wrong code (the
audit keeps the real reason; the door says what it says for a wrong code) and `find_pin` hashes every
(candidate, stored PIN) pair whatever matches.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from limen.access import offline, pins
from limen.access.attempt import code_attempt, pin_attempt
from limen.access.model import AccessState, UserStatus
from limen.access.policy import find_pin, judge
from limen.decision import Reason
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


@pytest.mark.parametrize(("build", "reason"), [(_expired, Reason.CREDENTIAL_EXPIRED),
                                               (_revoked, Reason.CREDENTIAL_REVOKED),
                                               (_used_up, Reason.CREDENTIAL_EXHAUSTED),
                                               (_disabled, Reason.DISABLED_USER)])
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
