"""The lock on GPIO pins through gpiozero: a relay output and door, key and bolt inputs.

Wiring (BCM numbers are settings, not constants): the relay drives a
fail-secure strike or motor (energised = unlocked).  The inputs are switches
to ground with internal pull-ups: the door contact is closed while the door
is shut (a cut wire reads as open), the key switch closes while a key is in,
the optional bolt switch closes while the bolt is retracted (a cut wire reads
as thrown, so an unlock is reported jammed).  Tests use gpiozero's MockFactory.
"""

from __future__ import annotations

from typing import Any

from limen.clock import Clock
from limen.door.actuator import LockActuator


class GpioLock(LockActuator):
    def __init__(
        self,
        relay_pin: int | str,
        door_pin: int | str,
        key_pin: int | str,
        bolt_pin: int | str | None = None,
        clock: Clock | None = None,
        pin_factory: Any = None,
        **kwargs: float | None,
    ) -> None:
        from gpiozero import DigitalInputDevice, OutputDevice

        self._relay = OutputDevice(relay_pin, active_high=True, initial_value=False, pin_factory=pin_factory)
        self._door = DigitalInputDevice(door_pin, pull_up=True, pin_factory=pin_factory)
        self._key = DigitalInputDevice(key_pin, pull_up=True, pin_factory=pin_factory)
        self._bolt = (DigitalInputDevice(bolt_pin, pull_up=True, pin_factory=pin_factory)
                      if bolt_pin is not None else None)
        super().__init__(clock, **kwargs)  # type: ignore[arg-type]

    def _drive(self, unlocked: bool) -> None:
        if unlocked:
            self._relay.on()
        else:
            self._relay.off()

    def _bolt_retracted(self) -> bool | None:
        return bool(self._bolt.is_active) if self._bolt is not None else None

    def _door_open(self) -> bool:
        return not self._door.is_active

    def _key_inserted(self) -> bool:
        return bool(self._key.is_active)

    def close(self) -> None:
        self._relay.off()
        for device in (self._relay, self._door, self._key, self._bolt):
            if device is not None:
                device.close()
