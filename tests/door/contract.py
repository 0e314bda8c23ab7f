"""The contract every `LockActuator` passes (simulated and GPIO subclass it).

A rig gives the actuator, a FixedClock, and hooks to move the physical world:
`settle()` lets the bolt follow the relay, `set_door`, `set_key`, `jam`.
A suite for a lock without the optional bolt switch sets `bolt_sensor = False`: such a lock reports the
commanded position at once (no UNLOCKING/LOCKING travel) and cannot see a jam.
"""

from __future__ import annotations

from typing import Protocol

import pytest

from limen.clock import FixedClock
from limen.door.actuator import LockActuator, LockState


class Rig(Protocol):
    actuator: LockActuator
    clock: FixedClock

    def settle(self) -> None: ...

    def set_door(self, open_: bool) -> None: ...

    def set_key(self, inserted: bool) -> None: ...

    def jam(self) -> None: ...


class LockActuatorContract:
    bolt_sensor = True

    def travel(self, moving: LockState, reached: LockState) -> LockState:
        """The state right after a command: moving with a bolt switch; without one, the commanded position."""
        return moving if self.bolt_sensor else reached

    @pytest.fixture
    def rig(self) -> Rig:
        raise NotImplementedError

    def test_starts_locked(self, rig: Rig) -> None:
        assert rig.actuator.state is LockState.LOCKED

    def test_unlock_passes_through_unlocking(self, rig: Rig) -> None:
        assert rig.actuator.unlock() is self.travel(LockState.UNLOCKING, LockState.UNLOCKED)
        rig.settle()
        assert rig.actuator.poll() is LockState.UNLOCKED

    def test_lock_passes_through_locking(self, rig: Rig) -> None:
        rig.actuator.unlock()
        rig.settle()
        assert rig.actuator.lock() is self.travel(LockState.LOCKING, LockState.LOCKED)
        rig.settle()
        assert rig.actuator.poll() is LockState.LOCKED

    def test_open_door_outranks_unlocked(self, rig: Rig) -> None:
        rig.actuator.unlock()
        rig.settle()
        rig.set_door(True)
        assert rig.actuator.poll() is LockState.OPEN

    def test_jam_is_detected_and_outranks_open(self, rig: Rig) -> None:
        rig.jam()
        rig.actuator.unlock()
        rig.clock.advance(rig.actuator.jam_timeout_s + 0.1)
        if not self.bolt_sensor:  # nothing reports where the bolt is: no jam can be claimed
            assert rig.actuator.poll() is LockState.UNLOCKED and not rig.actuator.is_jammed
            return
        assert rig.actuator.poll() is LockState.JAMMED
        rig.set_door(True)
        assert rig.actuator.state is LockState.JAMMED

    def test_secure_from_any_state(self, rig: Rig) -> None:
        rig.actuator.unlock()
        rig.settle()
        rig.actuator.secure()
        rig.settle()
        assert rig.actuator.poll() is LockState.LOCKED
        assert rig.actuator.secure() is LockState.LOCKED  # idempotent

    def test_auto_relock_after_time_only_when_door_closed(self, rig: Rig) -> None:
        relock = rig.actuator.auto_relock_s
        assert relock is not None
        rig.actuator.unlock()
        rig.settle()
        rig.actuator.poll()
        rig.set_door(True)
        rig.clock.advance(relock + 1)
        assert rig.actuator.poll() is LockState.OPEN
        rig.set_door(False)
        assert rig.actuator.poll() is self.travel(LockState.LOCKING, LockState.LOCKED)
        rig.settle()
        assert rig.actuator.poll() is LockState.LOCKED

    def test_no_relock_before_time(self, rig: Rig) -> None:
        relock = rig.actuator.auto_relock_s
        assert relock is not None
        rig.actuator.unlock()
        rig.settle()
        rig.actuator.poll()
        rig.clock.advance(relock - 1)
        assert rig.actuator.poll() is LockState.UNLOCKED

    def test_key_sensor(self, rig: Rig) -> None:
        assert not rig.actuator.key_inserted
        rig.set_key(True)
        assert rig.actuator.key_inserted
