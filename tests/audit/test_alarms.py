"""Alarms: recorded in the chain, grouped, rate-limited, queued per channel in the same transaction."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from limen.audit import AuditLog, Event, EventKind, Rule, Severity, open_audit, raise_alarm
from limen.audit.alarms import AlarmGrouper
from limen.audit.anomaly import Finding
from limen.config import Settings, load_settings
from limen.errors import AuditError
from limen.thresholds import AUDIT_ALARM_GROUP_WINDOW_S, AUDIT_FAILS_PER_METHOD

from .conftest import T0, attempt, minutes


@pytest.fixture
def routed(data_dir: Path) -> Settings:
    return load_settings(data_dir, alert_urls=["json://127.0.0.1:9/", "signed+http://127.0.0.1:9/hook",
                                               "gpio://17"])


def _outbox(settings: Settings) -> list[tuple]:
    conn = sqlite3.connect(settings.data_dir / "audit.db")
    try:
        return conn.execute("SELECT alarm_index, channel, status FROM outbox ORDER BY id").fetchall()
    finally:
        conn.close()


def _alarms(log: AuditLog) -> list[dict]:
    return [r for r in log.records() if r["kind"] == "alarm"]


def test_grouper_notifies_first_then_groups_then_notifies_with_count() -> None:
    g = AlarmGrouper()
    f = Finding(Rule.FAILURES_METHOD, Severity.WARNING, "x", T0, "pin")
    assert g.admit(f) == (True, 0)
    assert g.admit(Finding(Rule.FAILURES_METHOD, Severity.WARNING, "x", T0 + minutes(1), "pin")) == (False, 1)
    assert g.admit(Finding(Rule.FAILURES_METHOD, Severity.WARNING, "x", T0 + minutes(2), "pin")) == (False, 2)
    other = Finding(Rule.FAILURES_METHOD, Severity.WARNING, "x", T0 + minutes(2), "face")
    assert g.admit(other) == (True, 0)
    later = T0 + minutes(2) + minutes(AUDIT_ALARM_GROUP_WINDOW_S / 60)
    assert g.admit(Finding(Rule.FAILURES_METHOD, Severity.WARNING, "x", later, "pin")) == (True, 2)


def test_tamper_event_raises_critical_alarm_routed_to_every_channel(routed: Settings) -> None:
    log = open_audit(routed)
    index = log.append(Event(EventKind.TAMPER, T0, source="tamper:case", reason="case_opened"))
    alarms = _alarms(log)
    assert len(alarms) == 1
    alarm = alarms[0]
    assert alarm["reason"] == "tamper" and alarm["outcome"] == "critical" and alarm["data"]["events"] == [index]
    channels = sorted(c for _, c, _ in _outbox(routed))
    assert [c.split(":")[0] for c in channels] == ["apprise", "siren", "webhook"]
    assert all(a == alarm["index"] for a, _, _ in _outbox(routed))
    assert log.verify().records == 2
    log.close()


def test_duress_is_silent_and_goes_to_community_security_only(routed: Settings) -> None:
    log = open_audit(routed)
    log.append(attempt("accept", method="pin", reason="duress", duress=True))
    channels = [c for _, c, _ in _outbox(routed)]
    assert len(channels) == 1 and channels[0].startswith("webhook:")
    log.close()


def test_warning_goes_to_the_owner_only(routed: Settings) -> None:
    log = open_audit(routed)
    for i in range(AUDIT_FAILS_PER_METHOD["pin"]):
        log.append(attempt(method="pin", at=T0 + minutes(i)))
    rows = _outbox(routed)
    assert rows and all(c.startswith("apprise:") for _, c, _ in rows)
    log.close()


def test_repeated_alarms_are_recorded_but_notified_once_per_window(routed: Settings) -> None:
    log = open_audit(routed)
    limit = AUDIT_FAILS_PER_METHOD["pin"]
    for i in range(limit + 4):
        log.append(attempt(method="pin", at=T0 + minutes(i / 10)))
    method_alarms = [a for a in _alarms(log) if a["reason"] == "consecutive_failures_method"]
    assert len(method_alarms) == 5
    assert [a["data"]["notified"] for a in method_alarms] == [True, False, False, False, False]
    queued = {a for a, _, _ in _outbox(routed)}
    assert method_alarms[0]["index"] in queued and method_alarms[1]["index"] not in queued
    log.close()


def test_raise_alarm_directly(routed: Settings) -> None:
    log = open_audit(routed)
    index = raise_alarm(log, "door_forced", "critical", "reed switch open while bolt thrown", subject="door")
    record = log.tail(1)[0]
    assert record["index"] == index and record["reason"] == "door_forced"
    assert any(c.startswith("siren:") for _, c, _ in _outbox(routed))
    with pytest.raises(ValueError):
        raise_alarm(log, "no-such-rule", "critical", "x")
    log.close()


def test_raise_alarm_needs_a_monitored_log(settings: Settings) -> None:
    plain = AuditLog(settings.data_dir / "audit.db", open_audit(settings).key, settings.keys_dir, "lock")
    with pytest.raises(AuditError):
        raise_alarm(plain, "tamper", "critical", "x")
    plain.close()


def test_detector_state_is_rebuilt_from_history_on_reopen(routed: Settings) -> None:
    log = open_audit(routed)
    limit = AUDIT_FAILS_PER_METHOD["pin"]
    for i in range(limit - 1):
        log.append(attempt(method="pin", at=T0 + minutes(i)))
    log.close()
    reopened = open_audit(routed)
    assert _alarms(reopened) == []
    reopened.append(attempt(method="pin", at=T0 + minutes(10)))
    assert [a["reason"] for a in _alarms(reopened)] == ["consecutive_failures_method"]
    reopened.close()


def test_door_left_open_via_monitor_tick(routed: Settings) -> None:
    log = open_audit(routed)
    log.append(Event(EventKind.DOOR_STATE, T0, data={"state": "open"}))
    assert log.monitor.tick(T0 + minutes(1)) == []
    written = log.monitor.tick(T0 + minutes(10))
    assert len(written) == 1 and log.tail(1)[0]["reason"] == "door_left_open"
    log.close()


def test_no_channels_configured_still_records_alarm(settings: Settings) -> None:
    log = open_audit(settings)
    log.append(Event(EventKind.TAMPER, T0, reason="case_opened"))
    alarm = _alarms(log)[0]
    assert alarm["data"]["channels"] == [] and _outbox(settings) == []
    log.close()
