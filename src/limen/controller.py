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
from typing import Any

from limen.access.attempt import (
    Attempt,
    Factor,
    KeyTurn,
    PadVerdictLike,
    face_attempt,
    key_attempt,
    keypad_entry,
    remote_attempt,
)
from limen.access.store import AccessStore
from limen.audit.event import AuditSink, Event, EventKind
from limen.clock import Clock, SystemClock
from limen.decision import Decision
from limen.door.actuator import LockActuator, LockState


class AccessController:
    """Ties the access engine, the door and the audit trail.  One instance per lock; not thread-safe."""

    def __init__(self, store: AccessStore, door: LockActuator, audit: AuditSink, clock: Clock | None = None) -> None:
        self.store = store
        self.door = door
        self.audit = audit
        self.clock = clock or SystemClock()
        self._last_state: LockState | None = None

    def attempt(self, attempt: Attempt) -> Decision:
        """Decide, record, and open the door if accepted; return the Decision."""
        at = self.clock.now()
        judgement = self.store.decide(attempt, at)
        decision = judgement.decision
        self.audit.append(Event(
            EventKind.UNLOCK_ATTEMPT, at, actor=decision.user_id, subject=decision.credential_id,
            outcome=decision.outcome.value, reason=decision.reason.value, source=attempt.source.value,
            data=_event_data(decision),
        ))
        for alarm in judgement.update.alarms:
            self.audit.append(Event(EventKind.ALARM, at, actor=decision.user_id, subject="lock", reason=alarm,
                                    source=attempt.source.value, data={"silent": alarm == "duress"}))
        physical = any(isinstance(f, KeyTurn) for f in attempt.factors)
        if decision.accepted and not physical:
            self.door.unlock()
        self.tick()
        return decision

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
        """Poll the door (auto-relock, jam detection) and record state changes; call periodically."""
        state = self.door.poll()
        if state is not self._last_state:
            at = self.clock.now()
            self.audit.append(Event(EventKind.LOCK_STATE, at, actor="system", subject="lock",
                                    reason=state.value, source="door"))
            if state is LockState.JAMMED:
                self.audit.append(Event(EventKind.ALARM, at, actor="system", subject="lock", reason="jammed",
                                        source="door", data={"silent": False}))
            self._last_state = state
        return state


def _event_data(decision: Decision) -> dict[str, Any]:
    data = decision.to_dict()
    data.pop("user_name", None)
    return data
