"""The contract every `AuditSink` passes: the real `AuditLog` (with and without its alarm monitor) and test doubles.

A rig gives the sink and `read()`: the appended records back, oldest first, as
(kind, outcome, reason, subject, data) tuples.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

import pytest

from limen.audit.event import AuditSink, Event, EventKind

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


class SinkRig(Protocol):
    sink: AuditSink

    def read(self) -> list[tuple[str, str | None, str | None, str | None, dict[str, Any]]]: ...


class AuditSinkContract:
    @pytest.fixture
    def rig(self) -> SinkRig:
        raise NotImplementedError

    def test_append_returns_increasing_indices(self, rig: SinkRig) -> None:
        first = rig.sink.append(Event(EventKind.SYSTEM, AT, actor="system", reason="start"))
        second = rig.sink.append(Event(EventKind.LOCK_STATE, AT, actor="system", reason="locked",
                                       data={"state": "locked"}))
        assert second == first + 1

    def test_appended_events_read_back_in_order(self, rig: SinkRig) -> None:
        rig.sink.append(Event(EventKind.UNLOCK_ATTEMPT, AT, actor="u1", subject="pin:1", outcome="accept",
                              reason="granted", source="keypad", data={"method": "pin"}))
        rig.sink.append(Event(EventKind.CONFIG_CHANGE, AT, actor="settings", subject="lock", reason="x"))
        got = rig.read()[-2:]
        assert [g[0] for g in got] == ["unlock_attempt", "config_change"]
        assert got[0][1:4] == ("accept", "granted", "pin:1") and got[0][4]["method"] == "pin"

    def test_raise_alarm_records_one_alarm_with_rule_severity_subject(self, rig: SinkRig) -> None:
        before = len([r for r in rig.read() if r[0] == "alarm"])
        about = rig.sink.append(Event(EventKind.UNLOCK_ATTEMPT, AT, outcome="accept", reason="granted"))
        index = rig.sink.raise_alarm("mechanical_key", "critical", "key used while offline", subject="door", at=AT,
                                     events=(about,))
        alarms = [r for r in rig.read() if r[0] == "alarm"]
        assert len(alarms) == before + 1 and isinstance(index, int)
        kind, severity, rule, subject, data = alarms[-1]
        assert (severity, rule, subject) == ("critical", "mechanical_key", "door")
        assert data["text"] == "key used while offline" and about in data["events"]

    def test_find_yields_one_kind_from_start_with_index_and_data(self, rig: SinkRig) -> None:
        first = rig.sink.append(Event(EventKind.TAMPER, AT, actor="system", reason="case", data={"incident": "a"}))
        rig.sink.append(Event(EventKind.SYSTEM, AT, actor="system", reason="between"))
        second = rig.sink.append(Event(EventKind.TAMPER, AT, actor="system", reason="case", data={"incident": "b"}))
        found = list(rig.sink.find(EventKind.TAMPER))
        assert [(r.index, r.kind, r.data["incident"]) for r in found[-2:]] == [
            (first, EventKind.TAMPER, "a"), (second, EventKind.TAMPER, "b")]
        assert [r.index for r in rig.sink.find(EventKind.TAMPER, first + 1)] == [second]
        assert list(rig.sink.find(EventKind.TAMPER, second + 1)) == []

    def test_find_sees_alarms_with_the_events_they_are_about(self, rig: SinkRig) -> None:
        about = rig.sink.append(Event(EventKind.SYSTEM, AT, actor="system", reason="sensor bound"))
        alarm = rig.sink.raise_alarm("tamper", "critical", "camera replaced", subject="camera",
                                     events=(about,))
        found = [r for r in rig.sink.find(EventKind.ALARM, about + 1) if about in (r.data.get("events") or [])]
        assert [r.index for r in found] == [alarm] and found[0].kind is EventKind.ALARM
        assert list(rig.sink.find(EventKind.ALARM, alarm + 1)) == []

    def test_checkpoint_reports_the_head(self, rig: SinkRig) -> None:
        last = rig.sink.append(Event(EventKind.SYSTEM, AT, actor="system", reason="before checkpoint"))
        assert rig.sink.checkpoint() == last
        assert rig.sink.checkpoint() == last  # idempotent
        assert rig.sink.append(Event(EventKind.SYSTEM, AT, actor="system", reason="after")) == last + 1
