from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from limen import thresholds as T
from limen.errors import ConfigError
from limen.tamper import GpioShockSource, GpioSwitchSource, SimulatedSource, SourceKind, SupplyMonitor
from limen.tamper.debounce import FLAPPING, HELD, PULSES
from limen.tamper.sources import open_supply


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


def test_file_supply_reads_scaled_volts_and_trips_when_it_sags(tmp_path: Path) -> None:
    adc = tmp_path / "in_voltage0_raw"
    adc.write_text("2400\n")  # 2.4 V at the pin behind a 1:5 divider
    mono = Mono()
    src = open_supply(f"file:{adc}", 0.005, monotonic=mono)
    assert src.kind is SourceKind.SUPPLY and src.poll(0.0) is None and src.last_volts == pytest.approx(12.0)
    adc.write_text("1900")  # 9.5 V: a brown-out
    assert src.poll(1.0) is None
    assert src.poll(1.0 + T.TAMPER_SUPPLY_HOLD_S) == HELD
    adc.write_text("2400")
    again = open_supply(f"file:{adc}", 0.005, monotonic=mono)
    adc.unlink()  # the ADC channel disappears: unreadable counts as tampered
    assert again.poll(0.0) is None
    assert again.poll(T.TAMPER_SUPPLY_HOLD_S) == HELD


def test_a_supply_unreadable_or_out_of_range_at_start_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        open_supply(f"file:{tmp_path / 'missing'}", 0.005)
    adc = tmp_path / "in_voltage0_raw"
    adc.write_text("2400")
    with pytest.raises(ConfigError, match="tamper_supply_scale"):
        open_supply(f"file:{adc}", 0.001)  # a wrong scale reads 2.4 V: refused, not a tamper
    with pytest.raises(ConfigError):
        open_supply("adc:0", 1.0)


def test_mcp3008_supply_scales_the_full_scale_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    import gpiozero

    class FakeMcp3008:
        closed = False

        def __init__(self, channel: int, pin_factory: object = None) -> None:
            self.channel, self.value = channel, 0.8

        def close(self) -> None:
            FakeMcp3008.closed = True

    monkeypatch.setattr(gpiozero, "MCP3008", FakeMcp3008)
    src = open_supply("mcp3008:3", 15.0)  # 0.8 of full scale × 15 V = 12 V
    assert src.poll(0.0) is None and src.last_volts == pytest.approx(12.0)
    src.close()
    assert FakeMcp3008.closed
