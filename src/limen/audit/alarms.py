"""Alarms: findings recorded in the chain, grouped, rate-limited and queued for delivery.

`Monitor` is attached to the `AuditLog` by `open_audit`: it feeds every
appended event to the `AnomalyDetector`, and for each finding appends an ALARM
record and — in the same transaction — one outbox row per channel that routes
it.  Repeats of one alarm (same rule and subject) inside
`AUDIT_ALARM_GROUP_WINDOW_S` (critical: `…_CRITICAL_S`) are still recorded but
not notified again; the next notification says how many were grouped.

Other packages raise alarms directly with

    raise_alarm(log, rule, severity, reason, subject=None, events=(), at=None) -> int

(the ALARM record's index), or simply append the event (TAMPER, DOOR_STATE …)
and let the rules fire.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from limen import thresholds
from limen.audit import outbox
from limen.audit.anomaly import AnomalyConfig, AnomalyDetector, Finding, Rule, Severity
from limen.audit.channels import Channel
from limen.audit.event import Event, EventKind
from limen.audit.log import AuditLog
from limen.clock import Clock, SystemClock
from limen.errors import AuditError

log = logging.getLogger(__name__)

WARM_UP_RECORDS = 20_000   # recent records replayed into the detector when the log is opened
_WATCHED = (EventKind.UNLOCK_ATTEMPT, EventKind.LOCK_STATE, EventKind.DOOR_STATE, EventKind.TAMPER)


@dataclass
class _Group:
    last_notified: datetime
    suppressed: int = 0


class AlarmGrouper:
    """Pure rate limiter: `admit(finding)` → (notify?, repeats grouped since the last notification)."""

    def __init__(self, window_s: float = thresholds.AUDIT_ALARM_GROUP_WINDOW_S,
                 critical_window_s: float = thresholds.AUDIT_ALARM_GROUP_WINDOW_CRITICAL_S) -> None:
        self.window_s, self.critical_window_s = window_s, critical_window_s
        self._groups: dict[tuple[str, str | None], _Group] = {}

    def admit(self, finding: Finding) -> tuple[bool, int]:
        key = (str(finding.rule), finding.subject)
        window = self.critical_window_s if finding.severity is Severity.CRITICAL else self.window_s
        group = self._groups.get(key)
        if group is None or (finding.at - group.last_notified).total_seconds() >= window:
            repeats = group.suppressed if group else 0
            self._groups[key] = _Group(finding.at)
            return True, repeats
        group.suppressed += 1
        return False, group.suppressed


class Monitor:
    """Anomaly detection + alarm recording for one `AuditLog` (thread-safe through the log's lock)."""

    def __init__(self, audit: AuditLog, channels: dict[str, Channel], clock: Clock | None = None,
                 config: AnomalyConfig | None = None) -> None:
        self.audit, self.channels = audit, channels
        self.detector = AnomalyDetector(config)
        self.grouper = AlarmGrouper()
        self._clock = clock or SystemClock()
        self._listeners: list[Callable[[], None]] = []
        self._warming = False

    def attach(self) -> Monitor:
        """Replay recent history into the detector (no alarms), then observe every append."""
        self._warming = True
        try:
            start = max(0, self.audit.count() - WARM_UP_RECORDS)
            for rec in self.audit.records(start, tuple(str(k) for k in _WATCHED)):
                event = _event_of(rec)
                if event is not None:
                    self.detector.observe(rec["index"], event)
        finally:
            self._warming = False
        self.audit.add_observer(self._observe)
        self.audit.monitor = self
        return self

    def on_enqueue(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after alarms are queued (wakes the delivery workers)."""
        self._listeners.append(listener)

    def tick(self, at: datetime | None = None) -> list[int]:
        """Run the time-based rules (door left open); return the ALARM records written."""
        with self.audit._lock:
            return self._record(self.detector.tick(at or self._clock.now()))

    def raise_alarm(self, rule: Rule | str, severity: Severity | str, reason: str, *,
                    subject: str | None = None, events: Iterable[int] = (), at: datetime | None = None,
                    data: dict[str, Any] | None = None) -> int:
        """Record an alarm now (grouping applies) and queue its delivery; return its record index."""
        finding = Finding(Rule(rule), Severity(severity), reason, at or self._clock.now(), subject,
                          tuple(events), dict(data or {}))
        with self.audit._lock:
            return self._record([finding])[0]

    # ------------------------------------------------------------------ internals
    def _observe(self, index: int, event: Event) -> None:
        if self._warming or event.kind in (EventKind.ALARM, EventKind.ALARM_DELIVERY):
            return
        self._record(self.detector.observe(index, event))

    def _record(self, findings: list[Finding]) -> list[int]:
        written = []
        for finding in findings:
            notify, repeats = self.grouper.admit(finding)
            written.append(self._append_alarm(finding, notify, repeats))
        if findings:
            for listener in list(self._listeners):
                listener()
        return written

    def _append_alarm(self, finding: Finding, notify: bool, repeats: int) -> int:
        payload_base = {
            "v": 1, "device_id": self.audit.device_id, "rule": str(finding.rule), "severity": str(finding.severity),
            "reason": finding.reason, "subject": finding.subject, "at": finding.at.isoformat(),
            "events": list(finding.events), "repeats": repeats, **finding.data,
        }
        routed = [c.id for c in self.channels.values() if c.accepts(payload_base)] if notify else []
        event = Event(EventKind.ALARM, at=finding.at, actor="system", subject=finding.subject,
                      outcome=str(finding.severity), reason=str(finding.rule), source="anomaly",
                      data={"text": finding.reason[:200], "events": list(finding.events)[-20:],
                            "notified": notify, "repeats": repeats, "channels": routed})

        def queue(conn: sqlite3.Connection, index: int) -> None:
            if routed:
                payload = {**payload_base, "alarm_id": f"{self.audit.device_id}:{index}", "alarm": index}
                outbox.enqueue(conn, index, routed, payload, self._clock.now().isoformat(),
                               self._clock.now().timestamp())

        return self.audit.append_with(event, queue)


def raise_alarm(audit: AuditLog, rule: Rule | str, severity: Severity | str, reason: str, *,
                subject: str | None = None, events: Iterable[int] = (), at: datetime | None = None,
                data: dict[str, Any] | None = None) -> int:
    """Raise an alarm on `audit` (as returned by `open_audit`); return the ALARM record's index."""
    monitor = audit.monitor
    if not isinstance(monitor, Monitor):
        raise AuditError("this audit log has no alarm monitor (open it with open_audit)")
    return monitor.raise_alarm(rule, severity, reason, subject=subject, events=events, at=at, data=data)


def _event_of(rec: dict[str, Any]) -> Event | None:
    """The event of a stored record; None for one this version cannot read (skipped, never fatal)."""
    try:
        return Event(EventKind(rec["kind"]), datetime.fromisoformat(rec["at"]), rec["actor"], rec["subject"],
                     rec["outcome"], rec["reason"], rec["source"], dict(rec["data"] or {}))
    except (ValueError, TypeError, KeyError):
        return None
