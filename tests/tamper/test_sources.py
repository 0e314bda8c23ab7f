from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from limen import thresholds as T
from limen.tamper import GpioShockSource, GpioSwitchSource, SimulatedSource, SourceKind, SupplyMonitor
from limen.tamper.debounce import FLAPPING, HELD, PULSES
from limen.tamper.sources import PushSource


class Mono:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    old = Device.pin_factory
    f = MockFactory()
    Device.pin_factory = f
    yield f
    f.reset()
    Device.pin_factory = old


def test_gpio_case_switch_bounce_then_open(factory: MockFactory) -> None:
    mono = Mono()
    pin = factory.pin(17)
    pin.drive_low()  # closed loop to ground: case shut
    src = GpioSwitchSource("case", SourceKind.CASE, 17, monotonic=mono)
    assert src.poll(mono.t) is None
    for _ in range(3):  # contact bounce: edges fed through gpiozero's callbacks
        mono.t += 0.001
        pin.drive_high()
        mono.t += 0.001
        pin.drive_low()
    mono.t += 0.5
    assert src.poll(mono.t) is None
    pin.drive_high()  # opened (or the wire cut)
    assert src.poll(mono.t) is None
    mono.t += T.TAMPER_SWITCH_HOLD_S_NORMAL
    assert src.poll(mono.t) == HELD
    mono.t += 1
    assert src.poll(mono.t) is None  # latched: one trip
    src.close()


def test_gpio_flapping_switch_trips(factory: MockFactory) -> None:
    mono = Mono()
    pin = factory.pin(27)
    pin.drive_low()
    src = GpioSwitchSource("escutcheon", SourceKind.ESCUTCHEON, 27, monotonic=mono)
    for _ in range(T.TAMPER_FLAP_EDGES):
        mono.t += 0.002
        pin.drive_high()
        mono.t += 0.002
        pin.drive_low()
    assert src.poll(mono.t) == FLAPPING
    src.close()


def test_gpio_shock_burst(factory: MockFactory) -> None:
    mono = Mono()
    pin = factory.pin(22)
    pin.drive_high()  # pull-up, sensor idle (open)
    src = GpioShockSource(22, monotonic=mono)
    for _ in range(T.TAMPER_SHOCK_PULSES_NORMAL):
        mono.t += 0.03
        pin.drive_low()   # pulse: active
        mono.t += 0.001
        pin.drive_high()
    assert src.poll(mono.t) == PULSES
    src.close()


def test_simulated_source_uses_the_same_debouncing() -> None:
    mono = Mono()
    src = SimulatedSource("case", SourceKind.CASE, monotonic=mono)
    src.pulse(0.0)
    assert src.poll(0.5) is None
    src.set(True, 1.0)
    assert src.poll(1.0 + T.TAMPER_SWITCH_HOLD_S_NORMAL) == HELD


@pytest.mark.parametrize("volts", [9.0, 16.0, math.nan])
def test_supply_out_of_range_trips(volts: float) -> None:
    src = SupplyMonitor(lambda: volts)
    assert src.poll(0.0) is None
    assert src.poll(T.TAMPER_SUPPLY_HOLD_S) == HELD


def test_supply_in_range_and_unreadable() -> None:
    assert SupplyMonitor(lambda: 12.0).poll(0.0) is None
    ok = SupplyMonitor(lambda: 12.0)
    assert ok.poll(0.0) is None and ok.poll(10.0) is None

    def broken() -> float:
        raise OSError("adc gone")

    src = SupplyMonitor(broken)
    src.poll(0.0)
    assert src.poll(T.TAMPER_SUPPLY_HOLD_S) == HELD  # unreadable monitor fails closed


def test_push_source_reports_once() -> None:
    src = PushSource("camera", SourceKind.SENSOR)
    src.trip("swapped")
    src.trip("absent")
    assert src.poll(0.0) == "swapped"
    assert src.poll(0.0) is None
