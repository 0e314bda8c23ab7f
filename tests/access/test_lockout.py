from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from limen import thresholds as T
from limen.access import lockout
from limen.access.model import LockConfig, LockoutState

from .builders import at


@given(limit=st.integers(1, 10), wrong=st.integers(0, 30))
def test_locks_after_limit_and_restarts_count(limit: int, wrong: int) -> None:
    config = LockConfig(wrong_code_entry_limit=limit, user_code_temporary_disable_time_s=10)
    wrong = min(wrong, T.KEYPAD_WRONG_WINDOW_ENTRIES - 1)  # within one window (a full one: below)
    s = LockoutState()
    for _ in range(wrong):
        s = lockout.after_wrong_code(s, config, at())
    assert s.lockouts == wrong // limit
    assert s.wrong_code_count == wrong % limit
    assert lockout.is_locked_out(s, at()) is (wrong >= limit)


@given(limit=st.integers(2, 10))
def test_a_success_does_not_reset_the_window(limit: int) -> None:
    """Wrong entries between successes add up in the window; at its limit it locks to the window's end."""
    config = LockConfig(wrong_code_entry_limit=limit, user_code_temporary_disable_time_s=10)
    s, t = LockoutState(), at()
    while not lockout.is_locked_out(s, t):
        for _ in range(limit - 1):
            s = lockout.after_wrong_code(s, config, t)
            t += timedelta(seconds=1)
            if lockout.is_locked_out(s, t):
                break
        else:
            s = lockout.after_keypad_success(s)
    assert s.window_count == T.KEYPAD_WRONG_WINDOW_ENTRIES
    assert s.locked_until == at() + timedelta(seconds=T.KEYPAD_WRONG_WINDOW_S)


def test_escalation_doubles_and_caps() -> None:
    config = LockConfig(user_code_temporary_disable_time_s=60, lockout_escalation_factor=2,
                        lockout_max_disable_s=3600)
    assert [lockout.disable_time_s(config, k) for k in range(8)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert lockout.disable_time_s(config, 10_000) == 3600


def test_lockout_expires_and_success_resets() -> None:
    config = LockConfig(wrong_code_entry_limit=1, user_code_temporary_disable_time_s=30)
    s = lockout.after_wrong_code(LockoutState(), config, at())
    assert lockout.is_locked_out(s, at() + timedelta(seconds=29))
    assert not lockout.is_locked_out(s, at() + timedelta(seconds=30))
    assert lockout.after_keypad_success(s) == LockoutState(window_count=1, window_start=at())


def test_biometric_failures_are_separate() -> None:
    config = LockConfig(bio_failure_limit=2)
    s = lockout.after_bio_failure(lockout.after_bio_failure(LockoutState()))
    assert s.wrong_code_count == 0 and lockout.pin_required_by_failures(s, config)
