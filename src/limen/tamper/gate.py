"""`TamperGate` and `GuardedLock`: no unlock reaches the motor while a tamper response runs.

An unlock decided a moment *before* a tamper (face matched, then the case is
opened) must not open the door *after* it.  The responder trips the gate
before anything else; `GuardedLock` wraps the real actuator and turns every
`unlock()` into `secure()` while a response runs and for
`TAMPER_UNLOCK_HOLDOFF_S` after the last signal.  Later decisions are refused
by the access policy itself (lockdown), except the owner-authorised recovery,
which works again once the hold-off has passed.

Across processes: a response killed half-way leaves its intent in the
journal (`tamper.journal`).  `IntentCheck` reads it (≈ 0.1 ms); the
`AccessController` checks it before judging any attempt and `GuardedLock`
before driving any unlock: a pending intent is finished (the recover path)
and the door stays shut, never opened.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from limen import thresholds as T
from limen.door.actuator import LockActuator, LockState
from limen.tamper.journal import read_pending

log = logging.getLogger(__name__)


class IntentCheck:
    """Is a tamper response pending in the journal (another process may have died in it)?  Thread-safe."""

    def __init__(self, journal_dir: Path, finish: Callable[[], object] | None = None) -> None:
        self.journal_dir, self._finish = journal_dir, finish

    def pending(self) -> bool:
        try:
            return read_pending(self.journal_dir) is not None
        except Exception:  # noqa: BLE001 - an unreadable journal is treated as pending (fail closed)
            return True

    def finish(self) -> None:
        """Complete the pending response (erase, secure, audit, lockdown); never raises."""
        if self._finish is None:
            return
        try:
            self._finish()
        except Exception:  # noqa: BLE001 - the door stays shut whatever happens here
            log.exception("finishing a pending tamper response failed; the door stays shut")


class TamperGate:
    """In-process flag shared by the responder and the door guard; thread-safe."""

    def __init__(self, holdoff_s: float = T.TAMPER_UNLOCK_HOLDOFF_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.holdoff_s, self._monotonic = holdoff_s, monotonic
        self._lock = threading.Lock()
        self._running = 0
        self._last: float | None = None

    def trip(self) -> None:
        with self._lock:
            self._running += 1
            self._last = self._monotonic()

    def done(self) -> None:
        with self._lock:
            self._running = max(0, self._running - 1)

    @property
    def running(self) -> bool:
        return self._running > 0

    def blocks_unlock(self) -> bool:
        with self._lock:
            recent = self._last is not None and self._monotonic() - self._last < self.holdoff_s
            return self._running > 0 or recent


class GuardedLock(LockActuator):
    """A `LockActuator` over another one's hardware that refuses to unlock while the gate blocks."""

    def __init__(self, inner: LockActuator, gate: TamperGate, intent: IntentCheck | None = None) -> None:
        self.inner, self.gate, self.intent = inner, gate, intent
        super().__init__(inner.clock, inner.jam_timeout_s, inner.auto_relock_s)
        self.refused = 0

    def unlock(self) -> LockState:
        if self.gate.blocks_unlock() or (self.intent is not None and self.intent.pending()):
            self.refused += 1
            return self.secure()
        return super().unlock()

    def _drive(self, unlocked: bool) -> None:
        self.inner._drive(unlocked and not self.gate.blocks_unlock())

    def _bolt_retracted(self) -> bool | None:
        return self.inner._bolt_retracted()

    def _door_open(self) -> bool:
        return self.inner._door_open()

    def _key_inserted(self) -> bool:
        return self.inner._key_inserted()

    def close(self) -> None:
        self.inner.close()
