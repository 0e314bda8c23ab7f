"""Keypad lockout with Matter semantics, escalated, and the biometric failure count.

After `wrong_code_entry_limit` wrong keypad entries (PIN, offline code, RFID)
the keypad refuses even a valid credential for
`user_code_temporary_disable_time_s`; each consecutive lockout lasts
`lockout_escalation_factor` times longer, capped at `lockout_max_disable_s`.
A successful keypad credential resets both counts.  Wrong entries are also
counted per `KEYPAD_WRONG_WINDOW_S` window, which no success resets: at
`KEYPAD_WRONG_WINDOW_ENTRIES` in one window the keypad locks until the window
ends (else a holder of any valid credential — a guest's code, a
cleaner's PIN — typing it after every few wrong guesses is never locked out).
Biometric failures are counted apart: after `bio_failure_limit` of them,
biometrics need the PIN.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from limen import thresholds as T
from limen.access.model import LockConfig, LockoutState


def is_locked_out(state: LockoutState, at: datetime) -> bool:
    return state.locked_until is not None and at < state.locked_until


def remaining_s(state: LockoutState, at: datetime) -> float:
    if not is_locked_out(state, at):
        return 0.0
    assert state.locked_until is not None
    return (state.locked_until - at).total_seconds()


def disable_time_s(config: LockConfig, lockouts_before: int) -> int:
    """Length of the next lockout, given how many consecutive lockouts came before it."""
    base = config.user_code_temporary_disable_time_s
    factor = max(1, config.lockout_escalation_factor)
    return int(min(config.lockout_max_disable_s, base * factor ** min(lockouts_before, 64)))


def after_wrong_code(state: LockoutState, config: LockConfig, at: datetime) -> LockoutState:
    window = timedelta(seconds=T.KEYPAD_WRONG_WINDOW_S)
    start = state.window_start if state.window_start is not None and at < state.window_start + window else at
    in_window = (state.window_count if start == state.window_start else 0) + 1
    count = state.wrong_code_count + 1
    window_full = in_window >= T.KEYPAD_WRONG_WINDOW_ENTRIES
    if count < config.wrong_code_entry_limit and not window_full:
        return replace(state, wrong_code_count=count, window_count=in_window, window_start=start)
    until = at + timedelta(seconds=disable_time_s(config, state.lockouts))
    if window_full:
        until = max(until, start + window)
    return replace(state, wrong_code_count=0, lockouts=state.lockouts + 1, locked_until=until,
                   window_count=in_window, window_start=start)


def after_keypad_success(state: LockoutState) -> LockoutState:
    return replace(state, wrong_code_count=0, lockouts=0, locked_until=None, bio_fail_count=0)


def after_bio_failure(state: LockoutState) -> LockoutState:
    return replace(state, bio_fail_count=state.bio_fail_count + 1)


def after_bio_success(state: LockoutState) -> LockoutState:
    return replace(state, bio_fail_count=0)


def pin_required_by_failures(state: LockoutState, config: LockConfig) -> bool:
    return state.bio_fail_count >= config.bio_failure_limit
