"""A lock that is not opening for anyone (privacy or vacation mode, lockdown) refuses every entry before it is
checked, with one message whatever was typed, and such refusals are not "wrong codes in a row" (newcomer walk:
a right PIN in privacy mode read "not allowed at this time" and "9 wrong codes in a row").

The keypad lockout is unchanged: mode and lockdown refusals never reach it (nothing is checked, so nothing is
learnt), and a right PIN refused for its hours still spends a try there (tests/access/test_keypad_oracle.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import time
from typing import Any

import pytest

from limen.access.attempt import pin_attempt
from limen.access.model import Day, OperatingMode, UserType, WeekDaySchedule
from limen.access.policy import judge
from limen.audit.anomaly import AnomalyDetector, Rule
from limen.decision import Reason
from limen.service import feed, i18n
from limen.service.messages import NOT_NOW, SHUT_NOW, UNAVAILABLE, WRONG_CODE, keypad_message
from tests.audit.conftest import T0, attempt, minutes

from .builders import at, household, user, with_user

RIGHT, WRONG = "135792", "999111"


@pytest.mark.parametrize("mode", [OperatingMode.PRIVACY, OperatingMode.VACATION])
def test_a_shut_mode_answers_a_right_and_a_wrong_pin_alike_and_counts_neither(mode: OperatingMode) -> None:
    s = replace(household(), mode=mode)
    right, wrong = judge(pin_attempt(RIGHT), s, at(0)), judge(pin_attempt(WRONG), s, at(0))
    assert right.decision.reason is wrong.decision.reason is Reason.MODE_FORBIDS
    assert keypad_message(right.decision) == keypad_message(wrong.decision) == SHUT_NOW  # no oracle, no mode named
    assert right.decision.user_id is None and right.update.lockout is None and wrong.update.lockout is None


def test_a_lockdown_answers_a_right_and_a_wrong_pin_alike_and_counts_neither() -> None:
    s = replace(household(), lockdown=True)
    right, wrong = judge(pin_attempt(RIGHT), s, at(0)), judge(pin_attempt(WRONG), s, at(0))
    assert keypad_message(right.decision) == keypad_message(wrong.decision) == UNAVAILABLE
    assert right.update.lockout is None and wrong.update.lockout is None


def test_the_schedule_message_is_about_hours_and_the_try_is_still_spent() -> None:
    s = with_user(household(), user("max", 2, user_type=UserType.WEEK_DAY_SCHEDULE))
    s = replace(s, week_days=(WeekDaySchedule("max", 1, Day.MONDAY, time(6), time(7)),))
    j = judge(pin_attempt(RIGHT), s, at(0))
    assert keypad_message(j.decision) == NOT_NOW != SHUT_NOW
    assert j.update.lockout is not None and j.update.lockout.wrong_code_count == 1  # the lockout is not weakened


def test_the_shut_message_reads_in_chinese() -> None:
    assert i18n.translations("zh_CN").gettext(SHUT_NOW) != SHUT_NOW


@pytest.mark.parametrize("reason", ["mode_forbids", "lockdown", "locked_out", "outside_schedule"])
def test_refusals_of_an_unchecked_or_right_entry_are_not_wrong_codes_in_a_row(reason: str) -> None:
    det = AnomalyDetector()
    fired: list[Rule] = []
    for i in range(10):
        fired += [f.rule for f in det.observe(i, attempt(method="pin", actor=None, reason=reason,
                                                         at=T0 + minutes(i)))]
    assert fired == []
    # nor do they end a run: two wrong codes before and one after still make three in a row
    det.observe(20, attempt(method="pin", actor=None, reason="unknown_credential", at=T0 + minutes(20)))
    det.observe(21, attempt(method="pin", actor=None, reason="unknown_credential", at=T0 + minutes(21)))
    det.observe(22, attempt(method="pin", actor=None, reason=reason, at=T0 + minutes(22)))
    third = det.observe(23, attempt(method="pin", actor=None, reason="unknown_credential", at=T0 + minutes(23)))
    runs = [f for f in third if f.rule is Rule.FAILURES_METHOD]
    assert runs and runs[0].reason == "3 wrong codes in a row" and runs[0].events == (20, 21, 23)


def _rec(i: int, reason: str) -> dict[str, Any]:
    return {"kind": "unlock_attempt", "index": i, "at": (T0 + minutes(i)).isoformat(), "outcome": "reject",
            "reason": reason, "actor": None, "source": "kiosk", "data": {"method": "pin"}}


def test_the_activity_feed_says_the_door_was_shut_not_wrong_codes() -> None:
    from zoneinfo import ZoneInfo

    records = ([_rec(i, "unknown_credential") for i in range(2)] + [_rec(2 + i, "mode_forbids") for i in range(3)]
               + [_rec(5 + i, "lockdown") for i in range(2)])
    texts = [a.text for a in feed.activity(records, {}, ZoneInfo("UTC"))]
    assert texts == ["2 attempts during the lockdown", "3 attempts while the lock's mode kept the door shut",
                     "2 wrong codes at the door"]


# ------------------------------------------------------------------ review of 6c32421
# Only the door's refusals before the check are not guesses: a remote unlock refused in a lockdown or a no-remote
# mode (a stolen token hammering while the owner locked down for it) still makes "3 refused remote unlocks".

@pytest.mark.parametrize("reason", ["lockdown", "mode_forbids"])
def test_remote_unlocks_refused_in_a_lockdown_or_a_no_remote_mode_still_alarm(reason: str) -> None:
    det = AnomalyDetector()
    fired: list[Any] = []
    for i in range(3):
        fired += det.observe(i, attempt(method="remote", actor="olga", reason=reason, at=T0 + minutes(i)))
    runs = [f for f in fired if f.rule is Rule.FAILURES_METHOD]
    assert runs and runs[0].reason == "3 refused remote unlocks in a row" and runs[0].events == (0, 1, 2)


# A remote-only user's right PIN at the keypad is refused after it was checked: not the mode's refusal (the lock
# is in normal mode).  The door answers it as a wrong code (no oracle), it spends a try, counts in the audit's
# runs, and the feed says why.

def test_a_remote_only_users_right_pin_reads_as_a_wrong_code_and_spends_a_try() -> None:
    s = with_user(household(), user("max", 2, user_type=UserType.REMOTE_ONLY))
    right, wrong = judge(pin_attempt(RIGHT), s, at(0)), judge(pin_attempt(WRONG), s, at(0))
    assert right.decision.reason is Reason.REMOTE_ONLY_USER and right.decision.user_id == "max"
    assert keypad_message(right.decision) == keypad_message(wrong.decision) == WRONG_CODE
    assert right.update.lockout is not None and right.update.lockout.wrong_code_count == 1


def test_a_remote_only_users_pin_at_the_keypad_counts_in_a_run() -> None:
    det = AnomalyDetector()
    det.observe(0, attempt(method="pin", actor=None, reason="unknown_credential", at=T0))
    det.observe(1, attempt(method="pin", actor="max", reason="remote_only_user", at=T0 + minutes(1)))
    third = det.observe(2, attempt(method="pin", actor=None, reason="unknown_credential", at=T0 + minutes(2)))
    runs = [f for f in third if f.rule is Rule.FAILURES_METHOD]
    assert runs and runs[0].reason == "3 wrong codes in a row" and runs[0].events == (0, 1, 2)


@pytest.mark.parametrize(("reason", "detail"), [("remote_only_user", "remote-only user"),
                                                ("mode_forbids", "remote-only user")])  # recorded before the fix
def test_the_feed_says_a_remote_only_user_was_refused_not_the_mode(reason: str, detail: str) -> None:
    from zoneinfo import ZoneInfo

    rec = {**_rec(0, reason), "actor": "max", "data": {"method": "pin", "detail": detail}}
    texts = [a.text for a in feed.activity([rec], {"max": "Max"}, ZoneInfo("UTC"))]
    assert texts == ["Max was refused (they may only open remotely)"]
    if reason == "remote_only_user":  # a person no longer named: a wrong code, not the mode
        unnamed = feed.activity([rec], {}, ZoneInfo("UTC"))
        assert [a.text for a in unnamed] == ["wrong code at the door"]
