"""`AccessController`: credential input → policy → actuator → audit, and nothing else.

Every way in (keypad PIN or offline code, face + PAD, remote command,
mechanical key) becomes an `Attempt` and takes the same path:

    judge (pure, in one DB transaction with the counters it changes)
      → audit event (UNLOCK_ATTEMPT, then ALARM for duress / key limit)
      → door.unlock() only if accepted and the event is durable

If the audit sink fails the door stays shut (fail closed); the counters are
already saved, so a failing sink never resets a lockout.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from limen.access.attempt import (
    Attempt,
    CodeEntry,
    FaceEvidence,
    Factor,
    FingerprintEvidence,
    KeyTurn,
    PadVerdictLike,
    PinEntry,
    RemoteCommand,
    RfidEntry,
    face_attempt,
    key_attempt,
    keypad_entry,
    remote_attempt,
)
from limen.access.store import AccessStore
from limen.audit.event import AuditSink, Event, EventKind, attempt_event
from limen.clock import Clock, SystemClock
from limen.decision import Decision, Reason
from limen.door.actuator import LockActuator, LockState


class AccessController:
    """Ties the access engine, the door and the audit trail.  One instance per lock; not thread-safe."""

    def __init__(self, store: AccessStore, door: LockActuator, audit: AuditSink, clock: Clock | None = None) -> None:
        self.store = store
        self.door = door
        self.audit = audit
        self.clock = clock or SystemClock()
        self._last_bolt: str | None = None
        self._last_door: str | None = None

    def attempt(self, attempt: Attempt) -> Decision:
        """Decide, record, and open the door if accepted; return the Decision."""
        at = self.clock.now()
        judgement = self.store.decide(attempt, at)
        decision = judgement.decision
        self.audit.append(_attempt_event(attempt, decision, at))
        for alarm in judgement.update.alarms:
            self._alarm(alarm, at, decision.user_id)
        physical = any(isinstance(f, KeyTurn) for f in attempt.factors)
        if decision.accepted and not physical:
            self.door.unlock()
        self.tick()
        return decision

    def _alarm(self, name: str, at: datetime, subject: str | None) -> None:
        """Raise through the audit log's alarm monitor when there is one, else record an ALARM event."""
        monitor = getattr(self.audit, "monitor", None)
        if monitor is not None and hasattr(monitor, "raise_alarm"):
            if name == "duress":
                return  # the audit anomaly rules raise it (silently) from the attempt event
            if name in _ALARM_RULES:
                monitor.raise_alarm(_ALARM_RULES[name], "critical", _ALARM_TEXT[name], subject=subject, at=at)
                return
        self.audit.append(Event(EventKind.ALARM, at, actor="system", subject=subject or "lock", reason=name,
                                source="access", data={"silent": name == "duress", "text": _ALARM_TEXT[name]}))

    def keypad(self, typed: str) -> Decision:
        """A raw keypad entry: digits for a PIN (decoys allowed), `*` + digits for an offline code."""
        return self.attempt(keypad_entry(typed))

    def face(self, decision: Decision, pad: PadVerdictLike | None = None, *extra: Factor) -> Decision:
        """The face pipeline's decision (+ PAD verdict, + e.g. a PinEntry for dual rules)."""
        return self.attempt(face_attempt(decision, pad, *extra))

    def remote(self, user_id: str, authorised: bool, pin: str | None = None, device: str = "remote") -> Decision:
        """A remote unlock whose owner signature the link layer checked (`authorised`)."""
        return self.attempt(remote_attempt(user_id, authorised, pin, device))

    def key_turned(self) -> Decision:
        """The key-inserted sensor fired: record the mechanical key (the door is not driven)."""
        return self.attempt(key_attempt())

    def lock(self) -> LockState:
        self.door.lock()
        return self.tick()

    def secure(self) -> LockState:
        """Drive to locked at once (tamper response); never raises."""
        state = self.door.secure()
        with contextlib.suppress(Exception):  # securing must not fail because the audit sink did
            self.tick()
        return state

    def tick(self) -> LockState:
        """Poll the door (auto-relock, jam detection) and record bolt and door changes; call periodically."""
        state = self.door.poll()
        bolt = "jammed" if self.door.is_jammed else ("locked" if self.door.is_locked else "unlocked")
        moving = self.door.is_locking or self.door.is_unlocking
        door = "open" if self.door.is_open else "closed"
        at = self.clock.now()
        if bolt != self._last_bolt and (not moving or bolt == "jammed"):
            self.audit.append(Event(EventKind.LOCK_STATE, at, actor="system", subject="lock", reason=bolt,
                                    source="door", data={"state": bolt}))
            if bolt == "jammed":
                self._alarm("jammed", at, "lock")
            self._last_bolt = bolt
        if door != self._last_door:
            if self._last_door is not None or door == "open":
                self.audit.append(Event(EventKind.DOOR_STATE, at, actor="system", subject="door", reason=door,
                                        source="door", data={"state": door}))
            self._last_door = door
        return state


_ALARM_RULES = {"mechanical_key_offline_limit": "mechanical_key"}
_ALARM_TEXT = {
    "duress": "duress credential used",
    "mechanical_key_offline_limit": "mechanical key used repeatedly while offline: owner must re-authorise",
    "jammed": "lock jammed",
}
_METHOD = {
    FaceEvidence: "face", FingerprintEvidence: "fingerprint", PinEntry: "pin", CodeEntry: "code",
    RfidEntry: "nfc", RemoteCommand: "remote", KeyTurn: "key",
}


def _attempt_event(attempt: Attempt, decision: Decision, at: datetime) -> Event:
    """The UNLOCK_ATTEMPT event in the audit package's conventions (method, pad, duress, device)."""
    methods = [_METHOD[type(f)] for f in attempt.factors]
    extra: dict[str, Any] = {"factors": methods, "detail": decision.detail}
    if decision.reason is Reason.DURESS:
        extra["duress"] = True
    remote = [f for f in attempt.factors if isinstance(f, RemoteCommand)]
    if remote:
        extra["device"] = remote[0].device
    faces = [f for f in attempt.factors if isinstance(f, FaceEvidence | FingerprintEvidence)]
    pad = None if not faces else ("bona_fide" if all(f.pad_passed for f in faces) else "attack")
    return attempt_event(decision, at, methods[0] if methods else "unknown", attempt.source.value, pad=pad,
                         **extra)
