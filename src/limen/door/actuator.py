"""`LockActuator`: one lock state derived from hardware flags in a fixed precedence.

Like Home Assistant's LockEntity, an actuator exposes flags (jammed, open,
unlocking, locking, locked) and derives a single `LockState`:

    jammed  >  open  >  unlocking / locking  >  unlocked / locked

The relay is fail-secure: de-energised means locked.  With a bolt-position
sensor, a bolt that has not reached its commanded position within
`DOOR_JAM_TIMEOUT_S` is jammed; without one, the commanded position is assumed
and jams cannot be seen.  `poll()` advances time-driven behaviour: jam
detection and auto-relock (`AUTO_RELOCK_TIME_S` after unlocking, as soon as the
door is closed).  `secure()` drives to locked, never raises, and is safe to call
at any time and from the tamper response.  Not thread-safe: one owner calls it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import StrEnum

from limen import thresholds as T
from limen.clock import Clock, SystemClock


class LockState(StrEnum):
    LOCKED = "locked"
    UNLOCKING = "unlocking"
    UNLOCKED = "unlocked"
    LOCKING = "locking"
    JAMMED = "jammed"
    OPEN = "open"


def derive_state(*, jammed: bool, open_: bool, unlocking: bool, locking: bool, locked: bool) -> LockState:
    """The single state, in the fixed precedence jammed > open > moving > at rest."""
    if jammed:
        return LockState.JAMMED
    if open_:
        return LockState.OPEN
    if unlocking:
        return LockState.UNLOCKING
    if locking:
        return LockState.LOCKING
    return LockState.LOCKED if locked else LockState.UNLOCKED


class LockActuator(ABC):
    """Common behaviour over four hardware primitives (relay, bolt, door and key sensors)."""

    def __init__(self, clock: Clock | None = None, jam_timeout_s: float = T.DOOR_JAM_TIMEOUT_S,
                 auto_relock_s: float | None = T.AUTO_RELOCK_TIME_S) -> None:
        self.clock = clock or SystemClock()
        self.jam_timeout_s = jam_timeout_s
        self.auto_relock_s = auto_relock_s
        self._target_unlocked = False
        self._commanded_at = self.clock.monotonic()
        self._unlocked_at: float | None = None
        self._jammed = False

    # -- hardware primitives ------------------------------------------------------------

    @abstractmethod
    def _drive(self, unlocked: bool) -> None:
        """Energise (unlock) or release (lock) the relay."""

    @abstractmethod
    def _bolt_retracted(self) -> bool | None:
        """Bolt position sensor: True retracted, False thrown, None when there is no sensor."""

    @abstractmethod
    def _door_open(self) -> bool: ...

    @abstractmethod
    def _key_inserted(self) -> bool: ...

    # -- flags --------------------------------------------------------------------------

    @property
    def is_jammed(self) -> bool:
        return self._jammed

    @property
    def is_open(self) -> bool:
        return self._door_open()

    @property
    def key_inserted(self) -> bool:
        return self._key_inserted()

    def _bolt_unlocked(self) -> bool:
        bolt = self._bolt_retracted()
        return self._target_unlocked if bolt is None else bolt

    @property
    def is_unlocking(self) -> bool:
        return self._target_unlocked and not self._bolt_unlocked()

    @property
    def is_locking(self) -> bool:
        return not self._target_unlocked and self._bolt_unlocked()

    @property
    def is_locked(self) -> bool:
        return not self._bolt_unlocked()

    @property
    def state(self) -> LockState:
        return derive_state(jammed=self.is_jammed, open_=self.is_open, unlocking=self.is_unlocking,
                            locking=self.is_locking, locked=self.is_locked)

    # -- commands -----------------------------------------------------------------------

    def unlock(self) -> LockState:
        """Command the bolt open (validation happened before: see `AccessController`)."""
        self._command(True)
        return self.poll()

    def lock(self) -> LockState:
        self._command(False)
        return self.poll()

    def secure(self) -> LockState:
        """Drive to locked now; never raises (tamper response)."""
        try:
            self._command(False)
            return self.poll()
        except Exception:  # noqa: BLE001 - the tamper path must not fail; the relay is fail-secure
            return LockState.JAMMED

    def _command(self, unlocked: bool) -> None:
        self._jammed = False
        self._target_unlocked = unlocked
        self._commanded_at = self.clock.monotonic()
        self._unlocked_at = None
        self._drive(unlocked)

    def poll(self) -> LockState:
        """Advance jam detection and auto-relock; return the current state.

        While the key is in, the bolt is the key's to move: no jam is claimed, and the jam timer starts
        again when the key is taken out (a bolt still not where the lock put it is then reported).
        """
        now = self.clock.monotonic()
        if self._key_inserted():
            self._commanded_at = now
        reached = self._bolt_unlocked() == self._target_unlocked
        if not reached and now - self._commanded_at >= self.jam_timeout_s:
            self._jammed = True
        if reached and self._target_unlocked and self._unlocked_at is None:
            self._unlocked_at = now
        if (self._unlocked_at is not None and self.auto_relock_s is not None and not self._jammed
                and now - self._unlocked_at >= self.auto_relock_s and not self._door_open()):
            self._command(False)
        return self.state

    def relock_in_s(self) -> int | None:
        """Seconds until the auto-relock (None when the door is not waiting to relock)."""
        if self._unlocked_at is None or self.auto_relock_s is None or self._jammed:
            return None
        return max(0, round(self.auto_relock_s - (self.clock.monotonic() - self._unlocked_at)))

    def close(self) -> None:
        """Release hardware resources (the relay is left de-energised: locked)."""
        self._drive(False)
