"""Audit events and the sink protocol every package writes them through.

An `Event` holds ids, scores and reasons only: never images, embeddings, PINs,
codes or keys.  `AuditSink.append` returns once the event is durable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class EventKind(StrEnum):
    UNLOCK_ATTEMPT = "unlock_attempt"      # any credential: face, fingerprint, pin, code, remote, key
    ENROLMENT = "enrolment"
    USER_CHANGE = "user_change"
    CREDENTIAL_CHANGE = "credential_change"
    SCHEDULE_CHANGE = "schedule_change"
    CODE_CHANGE = "code_change"
    LOCK_STATE = "lock_state"
    DOOR_STATE = "door_state"
    TAMPER = "tamper"
    ALARM = "alarm"
    ALARM_DELIVERY = "alarm_delivery"
    CONFIG_CHANGE = "config_change"
    VAULT = "vault"                        # zeroize, rotate, provision
    PRIVACY = "privacy"                    # consent, erasure, export
    SYSTEM = "system"                      # start, stop, recovery


@dataclass(frozen=True)
class Event:
    """One audit record before it is chained.  `data` must be JSON-serialisable and non-secret."""

    kind: EventKind
    at: datetime
    actor: str | None = None        # who did it (user id, "owner:<id>", "system", "remote:<device>")
    subject: str | None = None      # what it concerns (user id, credential id, lock)
    outcome: str | None = None      # Decision outcome for attempts
    reason: str | None = None       # Decision reason / change description
    source: str | None = None       # "keypad", "camera", "cli", "api", "remote", "tamper:<source>"
    data: dict[str, Any] = field(default_factory=dict)


class AuditSink(Protocol):
    def append(self, event: Event) -> int:
        """Append durably; return the record's index in the chain."""
        ...


class MemoryAuditSink:
    """Keeps events in a list; for tests of packages that emit events."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def append(self, event: Event) -> int:
        self.events.append(event)
        return len(self.events) - 1
