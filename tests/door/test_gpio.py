from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

pytest.importorskip("gpiozero")

from gpiozero.pins.mock import MockFactory  # noqa: E402

from limen.clock import FixedClock  # noqa: E402
from limen.door.actuator import LockState  # noqa: E402
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


def test_the_runtime_builds_the_gpio_door_from_settings(data_dir, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from gpiozero import Device

    from limen import thresholds
    from limen.access.model import PermissionLevel
    from limen.config import load_settings
    from limen.runtime import open_runtime
    from limen.tamper import GuardedLock

    monkeypatch.setattr(thresholds, "PIN_ARGON2_MEMORY_KIB", 64)
    monkeypatch.setattr(thresholds, "PIN_ARGON2_TIME_COST", 1)
    factory = MockFactory()
    monkeypatch.setattr(Device, "pin_factory", factory)
    settings = load_settings(data_dir, door="gpio", door_relay_pin=RELAY, door_contact_pin=DOOR, door_key_pin=KEY)
    rt = open_runtime(settings)
    try:
        rt.access().add_user("Olga", "", datetime.now(UTC), pin="482915", permission=PermissionLevel.OWNER)
        door = rt.controller.door
        assert isinstance(door, GuardedLock) and isinstance(door.inner, GpioLock)
        factory.pin(DOOR).drive_low()  # door shut
        assert not factory.pin(RELAY).state
        assert rt.controller.keypad("482915").accepted
        assert factory.pin(RELAY).state  # the relay is energised: the strike opens
    finally:
        rt.close()
    assert not factory.pin(RELAY).state  # released at shutdown


def test_gpio_door_needs_its_pins(data_dir) -> None:  # type: ignore[no-untyped-def]
    from limen.config import load_settings
    from limen.errors import ConfigError

    with pytest.raises(ConfigError, match="door_relay_pin"):
        load_settings(data_dir, door="gpio")


class NoBoltRig(GpioRig):
    """The wiring without the optional bolt switch (`door_bolt_pin` unset)."""

    def __init__(self) -> None:
        self.factory = MockFactory()
        self.clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
        self.actuator = GpioLock(RELAY, DOOR, KEY, None, clock=self.clock, pin_factory=self.factory,
                                 auto_relock_s=30)
        self.jammed = False
        self.set_door(False)
        self.set_key(False)

    def settle(self) -> None:
        self.clock.advance(0.5)


class TestGpioLockWithoutBoltSensor(LockActuatorContract):
    bolt_sensor = False

    @pytest.fixture
    def rig(self) -> Iterator[NoBoltRig]:  # type: ignore[override]
        rig = NoBoltRig()
        yield rig
        rig.actuator.close()


def test_a_bolt_turned_by_the_key_is_no_jam() -> None:
    rig = GpioRig()
    try:
        assert rig.actuator.poll() is LockState.LOCKED
        rig.clock.advance(rig.actuator.jam_timeout_s + 1)  # long after the last command
        rig.set_key(True)
        rig._bolt(True)  # the key retracts the bolt by hand; the relay stays off
        rig.clock.advance(rig.actuator.jam_timeout_s + 1)
        assert rig.actuator.poll() is not LockState.JAMMED and not rig.actuator.is_jammed
        rig._bolt(False)  # turned back
        rig.set_key(False)
        rig.clock.advance(rig.actuator.jam_timeout_s + 1)
        assert rig.actuator.poll() is LockState.LOCKED
        rig.set_key(True)
        rig._bolt(True)
        rig.actuator.poll()  # polled while the key is in (the service polls every second)
        rig.set_key(False)  # key out, bolt left retracted: after the jam timeout that is reported
        assert rig.actuator.poll() is not LockState.JAMMED
        rig.clock.advance(rig.actuator.jam_timeout_s + 0.1)
        assert rig.actuator.poll() is LockState.JAMMED
    finally:
        rig.actuator.close()
