"""Every `AuditSink` implementation runs the contract suite."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from limen.audit import AuditLog, open_audit
from limen.audit.event import MemoryAuditSink
from limen.config import Settings

from .sink_contract import AuditSinkContract

Row = tuple[str, str | None, str | None, str | None, dict[str, Any]]


class MemoryRig:
    def __init__(self) -> None:
        self.sink = MemoryAuditSink()

    def read(self) -> list[Row]:
        return [(e.kind.value, e.outcome, e.reason, e.subject, dict(e.data)) for e in self.sink.events]


class LogRig:
    def __init__(self, log: AuditLog) -> None:
        self.sink = log

    def read(self) -> list[Row]:
        return [(r["kind"], r["outcome"], r["reason"], r["subject"], dict(r["data"] or {}))
                for r in self.sink.records(0)]


class TestMemoryAuditSink(AuditSinkContract):
    @pytest.fixture
    def rig(self) -> MemoryRig:  # type: ignore[override]
        return MemoryRig()


class TestAuditLogWithMonitor(AuditSinkContract):
    @pytest.fixture
    def rig(self, settings: Settings) -> Iterator[LogRig]:  # type: ignore[override]
        log = open_audit(settings)
        assert log.monitor is not None
        yield LogRig(log)
        log.close()


class TestAuditLogWithoutMonitor(AuditSinkContract):
    @pytest.fixture
    def rig(self, settings: Settings) -> Iterator[LogRig]:  # type: ignore[override]
        log = open_audit(settings)
        log.monitor = None  # a bare chain: alarms are still recorded, as plain ALARM records
        yield LogRig(log)
        log.close()
