"""A simulated lock for tests and demos: a bolt that travels in `travel_s`, a door, a key."""

from __future__ import annotations

from limen.clock import Clock
from limen.door.actuator import LockActuator


class SimulatedLock(LockActuator):
    """The bolt follows the relay after `travel_s` seconds of the clock unless `jam` is set."""

    def __init__(self, clock: Clock | None = None, travel_s: float = 0.5, with_bolt_sensor: bool = True,
                 **kwargs: float | None) -> None:
        self.travel_s = travel_s
        self.with_bolt_sensor = with_bolt_sensor
        self.jam = False
        self.door_open = False
        self.key_in = False
        self.relay = False
        self._bolt = False
        self._relay_since = 0.0
        super().__init__(clock, **kwargs)  # type: ignore[arg-type]
        self._relay_since = self.clock.monotonic()

    def _drive(self, unlocked: bool) -> None:
        self._bolt_retracted()  # let the bolt finish its last travel first
        if unlocked != self.relay:
            self.relay = unlocked
            self._relay_since = self.clock.monotonic()

    def _bolt_retracted(self) -> bool | None:
        if not self.jam and self.clock.monotonic() - self._relay_since >= self.travel_s:
            self._bolt = self.relay
        return self._bolt if self.with_bolt_sensor else None

    def _door_open(self) -> bool:
        return self.door_open

    def _key_inserted(self) -> bool:
        return self.key_in
