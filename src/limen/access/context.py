"""What every access repository works with: one connection, the audit sink, the event source, the PIN pepper."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from limen.access import pins
from limen.audit.event import AuditSink, Event, EventKind


@dataclass
class AccessContext:
    """Shared by the repositories of one `AccessStore`; the pepper can be replaced (a restored backup's)."""

    conn: sqlite3.Connection
    audit: AuditSink
    source: str
    pepper: pins.Pepper

    def emit(self, kind: EventKind, at: datetime, actor: str, subject: str | None, reason: str,
             **data: Any) -> None:
        """Append one change event naming actor, subject and what changed (never a PIN or secret)."""
        self.audit.append(Event(kind, at, actor=actor, subject=subject, reason=reason, source=self.source,
                                data=data))
