"""The activity feed and the pushed alarm in words a guest and an owner recognise (issue 18)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from limen.audit.anomaly import AnomalyDetector, Rule
from limen.service import feed
from limen.thresholds import AUDIT_FAILS_PER_METHOD
from tests.audit.conftest import T0, attempt, minutes

T = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)
NAMES = {"u-plumber": "Plumber", "u-anna": "Anna"}


def _rec(i: int, outcome: str, reason: str, actor: str | None = None, method: str = "pin") -> dict[str, Any]:
    return {"kind": "unlock_attempt", "index": i, "at": (T + timedelta(seconds=10 * i)).isoformat(),
            "outcome": outcome, "reason": reason, "actor": actor, "source": "kiosk", "data": {"method": method}}


def test_a_guest_opens_with_their_code_a_member_with_their_pin() -> None:
    records = [_rec(0, "accept", "granted", "u-plumber"), _rec(1, "accept", "granted", "u-anna")]
    texts = [a.text for a in feed.activity(records, NAMES, ZoneInfo("UTC"), guests=frozenset({"u-plumber"}))]
    assert texts == ["Anna opened with their PIN", "Plumber opened with their guest code"]


def test_wrong_codes_before_a_lockout_are_counted_apart_from_those_during_it() -> None:
    records = [_rec(i, "reject", "no_match") for i in range(5)] + [_rec(5 + i, "reject", "locked_out")
                                                                    for i in range(2)]
    texts = [a.text for a in feed.activity(records, NAMES, ZoneInfo("UTC"))]
    assert texts == ["2 codes typed while the keypad was locked out", "5 wrong codes at the door"]


def test_the_pushed_alarm_says_wrong_codes_not_pin_failures() -> None:
    det = AnomalyDetector()
    limit = AUDIT_FAILS_PER_METHOD["pin"]
    findings = [f for i in range(limit) for f in det.observe(i, attempt(method="pin", at=T0 + minutes(i)))]
    fired = [f for f in findings if f.rule is Rule.FAILURES_METHOD]
    assert fired and fired[-1].reason == f"{limit} wrong codes in a row", fired[-1].reason


def test_a_refusal_in_a_lockdown_is_worded_by_its_cause() -> None:
    owner = _rec(0, "reject", "lockdown", "u-anna")
    owner["data"]["detail"] = "owner lockdown (an owner's or the app's command): an owner lifts it"
    tamper = _rec(100, "reject", "lockdown", "u-anna")
    tamper["data"]["detail"] = "tamper lockdown: faces and fingerprints were erased"
    texts = [a.text for a in feed.activity([owner, tamper], NAMES, ZoneInfo("UTC"))]
    assert texts == ["Anna was refused (during the tamper lockdown)", "Anna was refused (during the owner's lockdown)"]


def test_a_disabled_person_s_refusal_is_worded_not_shown_raw() -> None:
    texts = [a.text for a in feed.activity([_rec(0, "reject", "disabled_user", "u-anna")], NAMES, ZoneInfo("UTC"))]
    assert texts == ["Anna was refused (the person is disabled)"]
