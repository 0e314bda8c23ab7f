"""Audit events and the sink protocol every package writes them through.

An `Event` holds ids, scores and reasons only: never images, embeddings, PINs,
codes or keys.  `AuditSink.append` returns once the event is durable.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
    REMOTE_COMMAND = "remote_command"      # an owner-signed command from the link: executed or refused (why)


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


@dataclass(frozen=True)
class Recorded:
    """An event as a sink holds it: its index in the chain, its kind and its data."""

    index: int
    kind: EventKind
    data: Mapping[str, Any]


class AuditSink(Protocol):
    """Where every package writes its events (the device's `AuditLog`; `MemoryAuditSink` in tests).

    Besides writing, a sink answers the two questions a crash-recovery path asks
    of it: "was this already recorded?" (`find`) and "make what is recorded
    evidence now" (`checkpoint`).  Implementations are thread-safe.
    """

    def append(self, event: Event) -> int:
        """Append durably; return the record's index in the chain."""
        ...

    def raise_alarm(self, rule: str, severity: str, reason: str, *, subject: str | None = None,
                    at: datetime | None = None, events: tuple[int, ...] = ()) -> int:
        """Record an ALARM (anomaly rule name, severity, text for people) and queue its delivery; return its index.

        Alarms the audit package derives from events itself (duress, presentation
        attack, jammed lock…) need no call: this is for what only the caller knows.
        `events` are the indices of the records it is about.
        """
        ...

    def checkpoint(self) -> int | None:
        """Sign the head now (a sink without signatures only reports it); its index, None while empty."""
        ...

    def find(self, kind: EventKind, start: int = 0) -> Iterator[Recorded]:
        """The records of `kind` from index `start` on, oldest first."""
        ...


class MemoryAuditSink:
    """Keeps events in a list; for tests of packages that emit events."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def append(self, event: Event) -> int:
        self.events.append(event)
        return len(self.events) - 1

    def raise_alarm(self, rule: str, severity: str, reason: str, *, subject: str | None = None,
                    at: datetime | None = None, events: tuple[int, ...] = ()) -> int:
        return self.append(Event(EventKind.ALARM, at or datetime.now(UTC), actor="system", subject=subject,
                                 outcome=severity, reason=rule, source="alarm",
                                 data={"text": reason, "events": list(events)}))

    def checkpoint(self) -> int | None:
        return len(self.events) - 1 if self.events else None

    def find(self, kind: EventKind, start: int = 0) -> Iterator[Recorded]:
        for index, event in enumerate(self.events[max(0, start):], start=max(0, start)):
            if event.kind is kind:
                yield Recorded(index, event.kind, event.data)


# ------------------------------------------------------------------ conventions
# What the anomaly rules read (see docs/audit.md).  Producers should build
# attempts with `attempt_event` so that every package writes the same fields.
#   UNLOCK_ATTEMPT  actor=user id or None, subject=credential id, outcome/reason from the
#                   Decision, data["method"] in METHODS, data["pad"] = "attack" | "bona_fide" | …,
#                   data["duress"] = True for a duress credential, remote commands carry
#                   data["device"], data["address"], data["device_known"] (bool)
#   LOCK_STATE      data["state"] = "locked" | "unlocked" | "jammed"; reason "mechanical_key" for a key turn
#   DOOR_STATE      data["state"] = "open" | "closed"; reason "forced" when the sensor says so
#   TAMPER          reason = what tripped, source = "tamper:<source>"
METHODS = ("face", "fingerprint", "pin", "code", "remote", "nfc", "key")

# Keys that would mean secret or biometric data reached the trail.
FORBIDDEN_DATA_KEYS = frozenset({
    "image", "images", "frame", "frames", "rgb", "depth", "ir", "embedding", "embeddings",
    "template", "templates", "descriptor", "features", "minutiae", "pin", "code", "passcode",
    "password", "secret", "key", "private_key", "token", "otp", "seed",
})


def attempt_event(
    decision: Any,
    at: datetime,
    method: str,
    source: str,
    *,
    pad: str | None = None,
    **data: Any,
) -> Event:
    """Build the UNLOCK_ATTEMPT event for a `Decision`: ids, scores and reasons only."""
    d = decision.to_dict()
    body: dict[str, Any] = {"method": method}
    for name in ("score", "threshold", "quality_gate", "assurance"):
        if d.get(name) is not None:
            body[name] = d[name]
    if d.get("scores"):
        body["scores"] = d["scores"]
    if pad is not None:
        body["pad"] = pad
    body.update(data)
    return Event(
        kind=EventKind.UNLOCK_ATTEMPT,
        at=at,
        actor=d.get("user_id"),
        subject=d.get("credential_id"),
        outcome=d["outcome"],
        reason=d["reason"],
        source=source,
        data=body,
    )
