"""Clock skew between the owner's device and the lock: within LINK_CLOCK_SKEW_S either way a command signed with
`sign-command`'s default validity is accepted; beyond it the refusal names the lock's clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from limen import thresholds as T
from limen.audit.event import EventKind
from limen.link.commands import Action, Command, Refusal, sign

from .conftest import LockRig

DEFAULT_VALIDITY = T.LINK_COMMAND_MAX_VALIDITY_S - T.LINK_CLOCK_SKEW_S  # `limen-cloud sign-command`'s default


def signed_now(rig: LockRig, lock_offset_s: float, validity_s: float = DEFAULT_VALIDITY,
               issued: bool = True) -> bytes:
    """A LOCK command signed on a device whose clock reads the lock's clock minus `lock_offset_s` (a lock
    `lock_offset_s` seconds fast; negative: slow), as sign-command makes it."""
    now = rig.clock.now() - timedelta(seconds=lock_offset_s)
    command = rig.command(Action.LOCK)
    command = replace(command, expires=now + timedelta(seconds=validity_s), issued=now if issued else None)
    return sign(command, rig.phone).to_bytes()


@pytest.mark.parametrize("offset", [-T.LINK_CLOCK_SKEW_S, -5, 0, 5, T.LINK_CLOCK_SKEW_S,
                                    DEFAULT_VALIDITY + T.LINK_CLOCK_SKEW_S - 1])
def test_a_lock_slow_or_fast_within_the_tolerance_accepts_the_default_validity(rig: LockRig,
                                                                               offset: float) -> None:
    outcome = rig.send(signed_now(rig, offset))
    assert outcome.executed, outcome


def test_the_audited_31_s_slow_lock_is_refused_as_clock_skew_not_too_long(rig: LockRig) -> None:
    """Before: 270 s validity + 31 s behind = 301 s ahead > 300 → `validity_too_long`, no word of the clock."""
    outcome = rig.send(signed_now(rig, -(T.LINK_CLOCK_SKEW_S + 1)))
    assert not outcome.executed and outcome.reason == Refusal.CLOCK_SKEW.value
    assert "clock" in outcome.data["detail"] and outcome.data["lock_time"] == rig.clock.now().isoformat()
    record = [e for e in rig.sink.events if e.kind is EventKind.REMOTE_COMMAND][-1]
    assert record.outcome == "refused" and record.reason == "clock_skew" and "behind" in record.data["detail"]


@pytest.mark.parametrize("offset", [-120, -(T.LINK_CLOCK_SKEW_S + 1)])
def test_a_lock_slow_beyond_the_tolerance_names_the_clock(rig: LockRig, offset: float) -> None:
    outcome = rig.send(signed_now(rig, offset, validity_s=10))  # whatever the validity
    assert outcome.reason == Refusal.CLOCK_SKEW.value and not outcome.executed


def test_a_lock_fast_beyond_validity_and_tolerance_finds_it_expired_and_says_its_clock_may_be_ahead(
        rig: LockRig) -> None:
    outcome = rig.send(signed_now(rig, DEFAULT_VALIDITY + T.LINK_CLOCK_SKEW_S))
    assert outcome.reason == Refusal.EXPIRED.value and not outcome.executed
    assert "clock is ahead" in outcome.data["detail"] and "lock_time" in outcome.data


def test_a_short_command_on_a_lock_fast_within_the_tolerance_is_accepted(rig: LockRig) -> None:
    assert rig.send(signed_now(rig, T.LINK_CLOCK_SKEW_S - 1, validity_s=1)).executed


def test_validity_is_bounded_on_the_signers_clock_whatever_the_lock_reads(rig: LockRig) -> None:
    outcome = rig.send(signed_now(rig, 200, validity_s=T.LINK_COMMAND_MAX_VALIDITY_S + 1))  # lock 200 s fast
    assert outcome.reason == Refusal.TOO_LONG.value


def test_without_issued_the_expiry_may_lie_validity_plus_tolerance_ahead(rig: LockRig) -> None:
    longest = T.LINK_COMMAND_MAX_VALIDITY_S
    assert rig.send(signed_now(rig, -(T.LINK_CLOCK_SKEW_S - 1), validity_s=longest, issued=False)).executed
    outcome = rig.send(signed_now(rig, -(T.LINK_CLOCK_SKEW_S + 1), validity_s=longest, issued=False))
    assert outcome.reason == Refusal.TOO_LONG.value and "clock" in outcome.data["detail"]


def test_issued_is_signed_and_must_precede_expires(rig: LockRig) -> None:
    command = rig.command(Action.LOCK)
    forward = replace(command, issued=command.expires + timedelta(seconds=1))
    assert rig.send(sign(forward, rig.phone)).reason == Refusal.MALFORMED.value
    honest = sign(replace(command, issued=rig.clock.now()), rig.phone)
    moved = Command(command.lock, command.action, command.counter, command.expires, command.device,
                    command.args, rig.clock.now() - timedelta(seconds=1))
    assert rig.send(replace(honest, body=moved.body())).reason == Refusal.BAD_SIGNATURE.value
