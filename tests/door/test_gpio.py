from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

pytest.importorskip("gpiozero")

from gpiozero.pins.mock import MockFactory  # noqa: E402

from limen.clock import FixedClock  # noqa: E402
from limen.door.gpio import GpioLock  # noqa: E402

from .contract import LockActuatorContract  # noqa: E402

RELAY, DOOR, KEY, BOLT = 17, 27, 22, 23


class GpioRig:
    """Drives MockFactory pins like the wiring would: switches to ground, pull-ups."""

    def __init__(self) -> None:
        self.factory = MockFactory()
        self.clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
        self.actuator = GpioLock(RELAY, DOOR, KEY, BOLT, clock=self.clock, pin_factory=self.factory,
                                 auto_relock_s=30)
        self.jammed = False
        self.set_door(False)
        self.set_key(False)
        self._bolt(False)

    def _pin(self, n: int):  # type: ignore[no-untyped-def]
        return self.factory.pin(n)

    def _bolt(self, retracted: bool) -> None:
        self._pin(BOLT).drive_low() if retracted else self._pin(BOLT).drive_high()

    def settle(self) -> None:
        if not self.jammed:
            self._bolt(bool(self._pin(RELAY).state))
        self.clock.advance(0.5)

    def set_door(self, open_: bool) -> None:
        self._pin(DOOR).drive_high() if open_ else self._pin(DOOR).drive_low()

    def set_key(self, inserted: bool) -> None:
        self._pin(KEY).drive_low() if inserted else self._pin(KEY).drive_high()

    def jam(self) -> None:
        self.jammed = True


class TestGpioLock(LockActuatorContract):
    @pytest.fixture
    def rig(self) -> Iterator[GpioRig]:  # type: ignore[override]
        rig = GpioRig()
        yield rig
        rig.actuator.close()


def test_relay_is_de_energised_when_locked_and_on_close() -> None:
    rig = GpioRig()
    assert not rig.factory.pin(RELAY).state
    rig.actuator.unlock()
    assert rig.factory.pin(RELAY).state
    rig.actuator.close()
    assert not rig.factory.pin(RELAY).state


def test_cut_door_wire_reads_open() -> None:
    rig = GpioRig()
    rig.factory.pin(DOOR).drive_high()  # pull-up with nothing closing the contact
    assert rig.actuator.is_open
    rig.actuator.close()
