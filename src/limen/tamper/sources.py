"""Tamper sources: a level (or reading) per source, debounced into at most one trip per tamper.

Every source has a `name`, a `kind` (`SourceKind`) and `poll(t) -> reason | None`
called by `TamperMonitor` on every tick with monotonic time `t`; GPIO sources
also feed each edge from gpiozero's callback thread so that bounces and short
shock pulses between ticks are counted.  `SimulatedSource` drives the very
same debouncing, so tests and `limen tamper simulate` exercise the real path.

GPIO wiring (BCM numbers are settings): tamper switches form a normally
closed loop to ground with the internal pull-up, so a closed case reads
*active* in gpiozero terms and an opened case **or a cut wire** reads inactive
and trips (`normally_active=True`).  Tests use `gpiozero.pins.mock.MockFactory`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from limen import thresholds as T
from limen.errors import ConfigError
from limen.tamper.debounce import DebounceProfile, Debouncer, shock_profile, supply_profile, switch_profile
from limen.tamper.signals import Sensitivity, SourceKind


class TamperSource(Protocol):
    name: str
    kind: SourceKind

    def poll(self, t: float) -> str | None:
        """The trip reason if the source tripped by monotonic time `t`, else None."""
        ...

    def held(self) -> bool:
        """Whether it tripped and the tamper condition is still there (latched: no second trip)."""
        ...

    def rearm(self) -> None:
        """Trip again at the next poll if the condition is still there (a tamper lockdown was lifted)."""
        ...

    def close(self) -> None: ...


class LevelSource:
    """A debounced boolean level (True = the tamper condition); the base of the concrete sources."""

    def __init__(self, name: str, kind: SourceKind, profile: DebounceProfile,
                 read: Callable[[], bool], monotonic: Callable[[], float] = time.monotonic) -> None:
        self.name, self.kind = name, kind
        self.debouncer = Debouncer(profile)
        self._read = read
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._tripped: str | None = None

    def edge(self, t: float | None = None) -> None:
        """Record the level now (called on every edge, possibly from another thread)."""
        self._feed(self._level(), self._monotonic() if t is None else t)

    def poll(self, t: float) -> str | None:
        self._feed(self._level(), t)
        with self._lock:
            reason, self._tripped = self._tripped, None
        return reason

    def held(self) -> bool:
        with self._lock:
            return self.debouncer.held

    def rearm(self) -> None:
        with self._lock:
            self.debouncer.rearm()

    def _feed(self, level: bool, t: float) -> None:
        with self._lock:
            reason = self.debouncer.update(level, t)
            if reason is not None:
                self._tripped = reason

    def _level(self) -> bool:
        try:
            return bool(self._read())
        except Exception:  # noqa: BLE001 - an unreadable tamper input counts as tampered (fail closed)
            return True

    def close(self) -> None:
        return None


class SimulatedSource(LevelSource):
    """A level set by hand (`set(True)`, `pulse()`); the same debouncing as the hardware sources."""

    def __init__(self, name: str = "simulated", kind: SourceKind = SourceKind.SIMULATED,
                 profile: DebounceProfile | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.level = False
        super().__init__(name, kind, profile or switch_profile(), lambda: self.level, monotonic)

    def set(self, level: bool, t: float | None = None) -> None:
        self.level = level
        self.edge(t)

    def pulse(self, t: float | None = None, width_s: float = 0.001) -> None:
        start = self._monotonic() if t is None else t
        self.set(True, start)
        self.set(False, start + width_s)


class GpioSwitchSource(LevelSource):
    """A case, escutcheon or power-fail switch on a GPIO pin (see the module docstring for wiring)."""

    def __init__(self, name: str, kind: SourceKind, pin: int | str, sensitivity: Sensitivity = Sensitivity.NORMAL,
                 *, normally_active: bool = True, pull_up: bool = True, profile: DebounceProfile | None = None,
                 pin_factory: Any = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        from gpiozero import DigitalInputDevice

        self.device = DigitalInputDevice(pin, pull_up=pull_up, pin_factory=pin_factory)
        self.normally_active = normally_active
        super().__init__(name, kind, profile or switch_profile(sensitivity), self._tampered, monotonic)
        self.device.when_activated = lambda: self.edge()
        self.device.when_deactivated = lambda: self.edge()

    def _tampered(self) -> bool:
        return bool(self.device.is_active) != self.normally_active

    def close(self) -> None:
        self.device.close()


class GpioShockSource(GpioSwitchSource):
    """A shock / vibration sensor: bursts of pulses trip (`TAMPER_SHOCK_PULSES_*`); active = shaken."""

    def __init__(self, pin: int | str, sensitivity: Sensitivity = Sensitivity.NORMAL, *, name: str = "shock",
                 pull_up: bool = True, pin_factory: Any = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        super().__init__(name, SourceKind.SHOCK, pin, sensitivity, normally_active=False, pull_up=pull_up,
                         profile=shock_profile(sensitivity), pin_factory=pin_factory, monotonic=monotonic)


class SupplyMonitor(LevelSource):
    """Supply voltage from `read_volts()` (an ADC such as gpiozero's MCP3008 scaled to volts).

    Out of [`min_v`, `max_v`] for `TAMPER_SUPPLY_HOLD_S` trips; an unreadable or
    non-finite reading counts as out of range (fail closed).
    """

    def __init__(self, read_volts: Callable[[], float], *, name: str = "supply",
                 min_v: float = T.TAMPER_SUPPLY_MIN_V, max_v: float = T.TAMPER_SUPPLY_MAX_V,
                 monotonic: Callable[[], float] = time.monotonic, on_close: Callable[[], None] | None = None) -> None:
        self.min_v, self.max_v = min_v, max_v
        self._volts = read_volts
        self._on_close = on_close
        self.last_volts: float | None = None
        super().__init__(name, SourceKind.SUPPLY, supply_profile(), self._out_of_range, monotonic)

    def _out_of_range(self) -> bool:
        volts = float(self._volts())
        self.last_volts = volts
        return not (math.isfinite(volts) and self.min_v <= volts <= self.max_v)

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()


class FileVolts:
    """Supply volts from a number in a file (a Linux IIO channel such as ``in_voltage0_raw``) × `scale`."""

    def __init__(self, path: Path, scale: float) -> None:
        self.path, self.scale = path, scale

    def __call__(self) -> float:
        return float(self.path.read_text(encoding="ascii").strip()) * self.scale


def open_supply(spec: str, scale: float, *, pin_factory: Any = None,
                monotonic: Callable[[], float] = time.monotonic) -> SupplyMonitor:
    """The supply source a setting names (``mcp3008:CHANNEL`` or ``file:PATH``), read once now.

    A first reading that fails or is out of range raises `ConfigError`: a wrong
    channel, path or scale stops the start instead of erasing the vault.
    """
    kind, _, where = spec.partition(":")
    on_close: Callable[[], None] | None = None
    if kind == "mcp3008":
        from gpiozero import MCP3008

        adc = MCP3008(channel=int(where), pin_factory=pin_factory)
        read: Callable[[], float] = lambda: float(adc.value) * scale  # noqa: E731 - the ADC's full scale is 1.0
        on_close = adc.close
    elif kind == "file":
        read = FileVolts(Path(where), scale)
    else:
        raise ConfigError(f"tamper_supply {spec!r}: expected mcp3008:CHANNEL or file:PATH")
    monitor = SupplyMonitor(read, monotonic=monotonic, on_close=on_close)
    try:
        volts = read()
    except (OSError, ValueError) as exc:
        monitor.close()
        raise ConfigError(f"tamper_supply {spec!r}: cannot read the supply ({type(exc).__name__})") from exc
    if not (math.isfinite(volts) and monitor.min_v <= volts <= monitor.max_v):
        monitor.close()
        raise ConfigError(f"tamper_supply {spec!r}: reads {volts:.2f} V, outside {monitor.min_v}-{monitor.max_v} V "
                          "at start (check tamper_supply_scale)")
    return monitor
