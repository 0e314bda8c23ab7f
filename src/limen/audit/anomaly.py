"""Anomaly rules over audit events: pure, time taken from the events (or passed to `tick`).

`AnomalyDetector.observe(index, event)` returns the `Finding`s that event
triggers; `tick(at)` returns those that fire because time passed (a door left
open).  Nothing here does I/O: the monitor in `limen.audit.alarms` records the
findings as alarms and queues their delivery.  Every number comes from the
"audit" section of `limen.thresholds` through `AnomalyConfig`.

A wall clock that jumps backwards never makes a window negative: windows run
on the latest time seen so far.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from limen import thresholds
from limen.audit.event import Event, EventKind


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return ("info", "warning", "critical").index(self.value)


class Rule(StrEnum):
    FAILURES_METHOD = "consecutive_failures_method"
    FAILURES_TOTAL = "consecutive_failures_total"
    MULTIMODAL_FAILURES = "multimodal_failures"
    PRESENTATION_ATTACK = "presentation_attack"
    UNUSUAL_HOUR = "unusual_hour"
    REMOTE_UNKNOWN = "remote_unknown_source"
    MECHANICAL_KEY = "mechanical_key"
    DURESS = "duress"
    TAMPER = "tamper"
    DOOR_FORCED = "door_forced"
    DOOR_LEFT_OPEN = "door_left_open"
    LOCK_JAMMED = "lock_jammed"
    AUDIT_TRUNCATED = "audit_truncated"  # the log is shorter than its witness (found at start)
    AUDIT_WITNESS_MISSING = "audit_witness_missing"  # the witness file is gone while the log has records
    TEST = "test"


@dataclass(frozen=True)
class Finding:
    """An anomaly: which rule, how severe, why, about what, and the records behind it."""

    rule: Rule
    severity: Severity
    reason: str
    at: datetime
    subject: str | None = None
    events: tuple[int, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AnomalyConfig:
    """The rules' thresholds (defaults from `limen.thresholds`, section "audit")."""

    fails_per_method: dict[str, int] = field(default_factory=lambda: dict(thresholds.AUDIT_FAILS_PER_METHOD))
    fails_per_method_default: int = thresholds.AUDIT_FAILS_PER_METHOD_DEFAULT
    fails_total: int = thresholds.AUDIT_FAILS_TOTAL
    multimodal_window_s: float = thresholds.AUDIT_MULTIMODAL_WINDOW_S
    multimodal_min_methods: int = thresholds.AUDIT_MULTIMODAL_MIN_METHODS
    multimodal_min_fails: int = thresholds.AUDIT_MULTIMODAL_MIN_FAILS
    unusual_min_history: int = thresholds.AUDIT_UNUSUAL_HOUR_MIN_HISTORY
    unusual_kappa: float = thresholds.AUDIT_UNUSUAL_HOUR_KAPPA
    unusual_ratio: float = thresholds.AUDIT_UNUSUAL_HOUR_RATIO
    unusual_history_max: int = thresholds.AUDIT_UNUSUAL_HOUR_HISTORY_MAX
    door_left_open_s: float = thresholds.AUDIT_DOOR_LEFT_OPEN_S
    key_door_window_s: float = thresholds.AUDIT_KEY_DOOR_WINDOW_S

    def fails_for(self, method: str) -> int:
        return self.fails_per_method.get(method, self.fails_per_method_default)


# Rejections that say nothing about an intruder (nobody in front of the camera, a blurred frame).
# Refusals that are not failed attempts: no face / a covered camera / too little evidence of liveness (nothing
# judged an attack), and a face recognised as a first factor that waits for its PIN (access.policy).
BENIGN_REJECTIONS = frozenset({"no_face", "low_quality", "insufficient_evidence", "second_factor_missing"})
# Refusals that are not wrong credentials either: the lock was not opening for anyone (lockdown, a mode that
# keeps the door shut, the keypad locked out: the entry is refused before it is checked) or it was a right one
# refused for the hour.  They are not failures of a run (a privacy-mode evening read "9 wrong codes in a row"),
# nor do they end one.  The keypad lockout is not this count: an out-of-hours right PIN typed alone still spends
# a try there (access.policy), so a guesser learns no more than before.  Only at the door: a remote unlock
# refused in a lockdown or a no-remote mode still counts ("3 refused remote unlocks in a row" is the stolen
# token the owner locked down for).  A remote-only user's right PIN at the keypad (remote_only_user) counts too.
NOT_GUESSES = frozenset({"lockdown", "mode_forbids", "locked_out", "outside_schedule"})
_DOOR_METHODS = frozenset({"pin", "code", "nfc", "face", "fingerprint"})
# What a run of failures of one method is called in the alarm ("5 wrong codes in a row"): a PIN and a code are
# both typed codes to the person reading it.
_FAILED = {"pin": "wrong codes", "code": "wrong codes", "face": "faces not recognised",
           "fingerprint": "fingers not recognised", "nfc": "unknown tags", "remote": "refused remote unlocks"}


def time_of_day_angle(at: datetime) -> float:
    """Time of day (UTC) as an angle in [0, 2π)."""
    seconds = at.hour * 3600 + at.minute * 60 + at.second
    return 2 * math.pi * seconds / 86400


def usual_density_ratio(angle: float, history: list[float] | deque[float], kappa: float) -> float:
    """Von Mises kernel density of `history` at `angle`, relative to a uniform day (1.0 = average)."""
    if not history:
        return 1.0
    total = sum(math.exp(kappa * (math.cos(angle - h) - 1.0)) for h in history)
    return total / len(history) / _scaled_i0(kappa)


def _scaled_i0(x: float) -> float:
    """exp(-x)·I0(x) by its power series (x is a small concentration, ≤ 50)."""
    term, total, k = 1.0, 1.0, 0
    while term > 1e-17 * total:
        k += 1
        term *= (x / 2) ** 2 / (k * k)
        total += term
    return total * math.exp(-x)


class AnomalyDetector:
    """Stateful, pure rules: feed every appended event in chain order."""

    def __init__(self, config: AnomalyConfig | None = None) -> None:
        self.config = config or AnomalyConfig()
        self._now: datetime | None = None
        self._fails_by_method: dict[str, list[int]] = {}
        self._fails_total: list[int] = []
        self._recent_fails: deque[tuple[datetime, str, int]] = deque()
        self._hours: dict[str, deque[float]] = {}
        self._lock_state: str | None = None
        self._door_open: tuple[datetime, int] | None = None
        self._door_alarmed = False
        self._key_at: datetime | None = None  # the last accepted mechanical key

    # ------------------------------------------------------------------ public
    def observe(self, index: int, event: Event) -> list[Finding]:
        """The findings `event` (record `index`) triggers, in rule order."""
        now = self._advance(event.at)
        findings: list[Finding] = []
        if event.kind is EventKind.UNLOCK_ATTEMPT:
            findings += self._attempt(index, event, now)
        elif event.kind is EventKind.LOCK_STATE:
            findings += self._lock(index, event, now)
        elif event.kind is EventKind.DOOR_STATE:
            findings += self._door(index, event, now)
        elif event.kind is EventKind.TAMPER:
            findings.append(Finding(Rule.TAMPER, Severity.CRITICAL, f"tamper: {event.reason or 'unknown'}",
                                    now, event.source or "tamper", (index,)))
        if event.data.get("duress") is True or event.reason == "duress":
            findings.append(Finding(Rule.DURESS, Severity.CRITICAL, "duress credential used", now,
                                    event.actor, (index,), {"silent": True}))
        if event.source == "remote" and _unknown_remote(event):
            findings.append(Finding(Rule.REMOTE_UNKNOWN, Severity.WARNING,
                                    "remote command from an unknown device or address", now,
                                    str(event.data.get("device") or event.data.get("address") or "remote"),
                                    (index,)))
        return findings

    def tick(self, at: datetime) -> list[Finding]:
        """Findings that fire because time passed (door left open)."""
        now = self._advance(at)
        if self._door_open is None or self._door_alarmed:
            return []
        since, index = self._door_open
        if (now - since).total_seconds() < self.config.door_left_open_s:
            return []
        self._door_alarmed = True
        minutes = (now - since).total_seconds() / 60
        return [Finding(Rule.DOOR_LEFT_OPEN, Severity.WARNING, f"door open for {minutes:.0f} min", now,
                        "door", (index,))]

    # ------------------------------------------------------------------ rules
    def _attempt(self, index: int, event: Event, now: datetime) -> list[Finding]:
        method = str(event.data.get("method") or event.source or "unknown")
        findings: list[Finding] = []
        if method == "key":
            findings.append(Finding(Rule.MECHANICAL_KEY, Severity.WARNING, "mechanical key used", now,
                                    "door", (index,)))
        if event.data.get("pad") == "attack" or event.reason == "pad_failed":
            findings.append(Finding(Rule.PRESENTATION_ATTACK, Severity.WARNING,
                                    f"presentation attack detected on {method}", now, method, (index,),
                                    _scores(event)))
        if event.outcome == "accept":
            if method == "key":
                self._key_at = now  # the bolt is retracted by hand: the recorded lock state stays "locked"
            self._fails_by_method.pop(method, None)
            self._fails_total.clear()
            findings += self._unusual_hour(index, event, now)
        elif event.outcome == "reject" and event.reason not in BENIGN_REJECTIONS \
                and not (event.reason in NOT_GUESSES and method in _DOOR_METHODS):
            findings += self._failure(index, method, now)
        return findings

    def _failure(self, index: int, method: str, now: datetime) -> list[Finding]:
        cfg, findings = self.config, []
        per = self._fails_by_method.setdefault(method, [])
        per.append(index)
        self._fails_total.append(index)
        if len(per) >= cfg.fails_for(method):
            findings.append(Finding(Rule.FAILURES_METHOD, Severity.WARNING,
                                    f"{len(per)} {_FAILED.get(method, method + ' failures')} in a row", now, method,
                                    tuple(per[-cfg.fails_for(method):])))
        if len(self._fails_total) >= cfg.fails_total:
            findings.append(Finding(Rule.FAILURES_TOTAL, Severity.WARNING,
                                    f"{len(self._fails_total)} consecutive failures", now, "all",
                                    tuple(self._fails_total[-cfg.fails_total:])))
        window = timedelta(seconds=cfg.multimodal_window_s)
        self._recent_fails.append((now, method, index))
        while self._recent_fails and now - self._recent_fails[0][0] > window:
            self._recent_fails.popleft()
        methods = {m for _, m, _ in self._recent_fails}
        if len(methods) >= cfg.multimodal_min_methods and len(self._recent_fails) >= cfg.multimodal_min_fails:
            findings.append(Finding(Rule.MULTIMODAL_FAILURES, Severity.WARNING,
                                    f"{len(self._recent_fails)} failures on {', '.join(sorted(methods))} "
                                    f"within {cfg.multimodal_window_s:.0f} s", now, "all",
                                    tuple(i for _, _, i in self._recent_fails)))
        return findings

    def _unusual_hour(self, index: int, event: Event, now: datetime) -> list[Finding]:
        if not event.actor:
            return []
        cfg = self.config
        history = self._hours.setdefault(event.actor, deque(maxlen=cfg.unusual_history_max))
        angle = time_of_day_angle(event.at)
        findings = []
        if len(history) >= cfg.unusual_min_history:
            ratio = usual_density_ratio(angle, history, cfg.unusual_kappa)
            if ratio < cfg.unusual_ratio:
                findings.append(Finding(Rule.UNUSUAL_HOUR, Severity.INFO,
                                        f"unlock at an unusual hour for this user ({event.at:%H:%M} UTC)",
                                        now, event.actor, (index,), {"density_ratio": round(ratio, 4)}))
        history.append(angle)
        return findings

    def _lock(self, index: int, event: Event, now: datetime) -> list[Finding]:
        state = event.data.get("state")
        if state:
            self._lock_state = str(state)
        if event.reason == "mechanical_key":
            return [Finding(Rule.MECHANICAL_KEY, Severity.WARNING, "mechanical key used", now, "door", (index,))]
        if state == "jammed":
            return [Finding(Rule.LOCK_JAMMED, Severity.WARNING, "lock jammed", now, "lock", (index,))]
        return []

    def _door(self, index: int, event: Event, now: datetime) -> list[Finding]:
        state = event.data.get("state")
        if state == "closed":
            self._door_open, self._door_alarmed = None, False
            return []
        if state != "open":
            return []
        if self._door_open is None:
            self._door_open, self._door_alarmed = (now, index), False
        key_opened = self._key_at is not None and (now - self._key_at).total_seconds() <= self.config.key_door_window_s
        if event.reason == "forced" or (self._lock_state == "locked" and not key_opened):
            return [Finding(Rule.DOOR_FORCED, Severity.CRITICAL, "door opened while locked (forced)", now,
                            "door", (index,))]
        return []

    def _advance(self, at: datetime) -> datetime:
        if self._now is None or at > self._now:
            self._now = at
        return self._now


def _unknown_remote(event: Event) -> bool:
    return (event.reason == "remote_not_authorised" or event.data.get("device_known") is False
            or event.data.get("address_known") is False)


def _scores(event: Event) -> dict[str, Any]:
    scores = event.data.get("scores")
    return {"scores": scores} if isinstance(scores, dict) else {}
