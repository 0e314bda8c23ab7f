"""`policy.remote_step_up` (the owner's PIN a signed add_user / add_code needs) runs the remote unlock's checks
of the owner and of the PIN that matched, not only the match (review 4: a revoked or too old owner PIN, refused
an unlock, let a stolen phone add a person): a refusal is the unlock's reason, counted as a wrong code as at
the door, and the PIN is not recorded as used."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from limen.access.attempt import remote_attempt
from limen.access.model import AccessState, PermissionLevel, UserStatus, UserType
from limen.access.policy import judge, remote_step_up
from limen.access.store import AccessStore
from limen.audit.anomaly import AnomalyDetector, Rule
from limen.audit.event import MemoryAuditSink
from limen.decision import Reason

from .builders import OWNER_PIN, T0, at, pin_cred, state, user


def _lock(owner_kw: dict[str, object], **pin_kw: object) -> AccessState:
    owner = user("olga", 1, permission=PermissionLevel.OWNER, **owner_kw)
    return state(owner, creds=(pin_cred("olga", OWNER_PIN, 1, **pin_kw),))


CASES = {  # built in the test: the PIN hashes must follow the fixtures' Argon2 cost
    "revoked": (lambda: _lock({}, revoked=True), Reason.CREDENTIAL_REVOKED),
    "too_old": (lambda: _lock({"pin_max_age_days": 1}, created_at=T0 - timedelta(days=2)), Reason.CREDENTIAL_EXPIRED),
    "window": (lambda: _lock({}, valid_until=T0 - timedelta(minutes=1)), Reason.CREDENTIAL_EXPIRED),
    "used_up": (lambda: _lock({}, max_uses=3, uses=3), Reason.CREDENTIAL_EXHAUSTED),
    "disabled": (lambda: _lock({"status": UserStatus.DISABLED}), Reason.DISABLED_USER),
    "non_access": (lambda: _lock({"user_type": UserType.NON_ACCESS}), Reason.DISABLED_USER),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_pin_the_remote_unlock_refuses_the_step_up_refuses_as_a_wrong_code(case: str) -> None:
    build, reason = CASES[case]
    s = build()
    unlock = judge(remote_attempt("olga", True, pin=OWNER_PIN, link_verified=True), s, at())
    assert not unlock.decision.accepted and unlock.decision.reason is reason
    # review 5: the unlock spends a try too, else a stolen phone tests PINs against the revoked ones for free
    assert unlock.update.lockout is not None and unlock.update.lockout.wrong_code_count == 1
    step = remote_step_up(remote_attempt("olga", True, pin=OWNER_PIN, link_verified=True), s, at())
    assert not step.decision.accepted and step.decision.reason is reason
    assert step.update.pin_used_by is None  # a refused step-up is no use of the PIN (72 h rule)
    assert step.update.lockout is not None and step.update.lockout.wrong_code_count == 1


def test_the_step_up_is_granted_on_a_good_pin_and_records_it_used() -> None:
    s = _lock({"pin_max_age_days": 30})
    step = remote_step_up(remote_attempt("olga", True, pin=OWNER_PIN, link_verified=True), s, at())
    assert step.decision.accepted and step.update.pin_used_by == "olga" and step.update.lockout is None


def test_without_a_pin_asked_a_disabled_owner_is_refused_and_nothing_counted() -> None:
    s = CASES["disabled"][0]()
    s = replace(s, config=replace(s.config, require_pin_for_remote=False))
    step = remote_step_up(remote_attempt("olga", True, link_verified=True), s, at())
    assert step.decision.reason is Reason.DISABLED_USER and step.update.lockout is None
    unlock = judge(remote_attempt("olga", True, link_verified=True), s, at())
    assert unlock.decision.reason is Reason.DISABLED_USER and unlock.update.lockout is None


def test_a_forced_owners_step_up_goes_on_with_the_silent_duress_alarm_as_her_unlock() -> None:
    """Review 5: a duress (forced) owner's step-up was plain GRANTED: an add_code under coercion raised no alarm."""
    s = _lock({"user_type": UserType.FORCED})
    unlock = judge(remote_attempt("olga", True, pin=OWNER_PIN, link_verified=True), s, at())
    step = remote_step_up(remote_attempt("olga", True, pin=OWNER_PIN, link_verified=True), s, at())
    assert unlock.decision.reason is Reason.DURESS and unlock.update.alarms == ("duress",)
    assert step.decision.accepted and step.decision.reason is Reason.DURESS  # the action goes on
    assert step.update.alarms == ("duress",) and step.update.pin_used_by == "olga"


def test_a_forced_owners_step_up_is_audited_with_duress(store: AccessStore, sink: MemoryAuditSink) -> None:
    """The store audits it (`duress: true`), from which the audit package raises its silent alarm."""
    olga = store.add_user("Olga", "", T0, pin=OWNER_PIN, permission=PermissionLevel.OWNER,
                          user_type=UserType.FORCED).user_id
    start = len(sink.events)
    step = store.step_up(remote_attempt(olga, True, pin=OWNER_PIN, link_verified=True), at())
    assert step.decision.accepted
    duress = [e for e in sink.events[start:] if e.data.get("duress") is True]
    assert len(duress) == 1 and duress[0].reason == "duress" and duress[0].actor == olga
    assert [f.rule for f in AnomalyDetector().observe(0, duress[0])] == [Rule.DURESS]
