from __future__ import annotations

from datetime import UTC, datetime

import pytest

from limen.clock import FixedClock
from limen.door.actuator import LockState, derive_state
from limen.door.simulated import SimulatedLock

from .contract import LockActuatorContract


class SimRig:
    def __init__(self) -> None:
        self.clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
        self.actuator = SimulatedLock(self.clock, travel_s=0.5, auto_relock_s=30)

    def settle(self) -> None:
        self.clock.advance(0.5)

    def set_door(self, open_: bool) -> None:
        self.actuator.door_open = open_

    def set_key(self, inserted: bool) -> None:
        self.actuator.key_in = inserted

    def jam(self) -> None:
        self.actuator.jam = True


class TestSimulatedLock(LockActuatorContract):
    @pytest.fixture
    def rig(self) -> SimRig:  # type: ignore[override]
        return SimRig()


class TestSimulatedLockWithoutBoltSensor(LockActuatorContract):
    bolt_sensor = False

    @pytest.fixture
    def rig(self) -> SimRig:  # type: ignore[override]
        rig = SimRig()
        rig.actuator.with_bolt_sensor = False
        return rig


def test_precedence_table() -> None:
    assert derive_state(jammed=True, open_=True, unlocking=True, locking=False, locked=False) is LockState.JAMMED
    assert derive_state(jammed=False, open_=True, unlocking=True, locking=False, locked=True) is LockState.OPEN
    assert derive_state(jammed=False, open_=False, unlocking=True, locking=False, locked=True) is LockState.UNLOCKING
    assert derive_state(jammed=False, open_=False, unlocking=False, locking=True, locked=False) is LockState.LOCKING
    assert derive_state(jammed=False, open_=False, unlocking=False, locking=False, locked=True) is LockState.LOCKED
    assert derive_state(jammed=False, open_=False, unlocking=False, locking=False, locked=False) is LockState.UNLOCKED


def test_without_bolt_sensor_state_follows_command() -> None:
    clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    lock = SimulatedLock(clock, with_bolt_sensor=False)
    lock.jam = True
    assert lock.unlock() is LockState.UNLOCKED
    clock.advance(10)
    assert lock.poll() is not LockState.JAMMED


def test_retry_after_jam_clears_it() -> None:
    rig = SimRig()
    rig.jam()
    rig.actuator.unlock()
    rig.clock.advance(5)
    assert rig.actuator.poll() is LockState.JAMMED
    rig.actuator.jam = False
    rig.actuator.secure()
    rig.settle()
    assert rig.actuator.poll() is LockState.LOCKED


def test_secure_never_raises() -> None:
    class Broken(SimulatedLock):
        def _drive(self, unlocked: bool) -> None:
            raise OSError("relay gone")

    assert Broken(FixedClock(datetime(2026, 1, 1, tzinfo=UTC))).secure() is LockState.JAMMED
