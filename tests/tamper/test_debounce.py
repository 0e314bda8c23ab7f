from __future__ import annotations

import math

from limen import thresholds as T
from limen.tamper.debounce import (
    FLAPPING,
    HELD,
    PULSES,
    DebounceProfile,
    Debouncer,
    shock_profile,
    supply_profile,
    switch_profile,
)
from limen.tamper.signals import Sensitivity


def test_switch_bounce_shorter_than_hold_does_not_trip() -> None:
    d = Debouncer(switch_profile())
    t = 0.0
    for _ in range(3):  # a 3 ms bounce burst, then settled closed (inactive)
        assert d.update(True, t) is None
        assert d.update(False, t + 0.001) is None
        t += 0.002
    assert d.update(False, t + 1.0) is None
    assert not d.latched


def test_level_held_trips_once_then_latches() -> None:
    d = Debouncer(switch_profile())
    assert d.update(True, 0.0) is None
    assert d.update(True, T.TAMPER_SWITCH_HOLD_S_NORMAL / 2) is None
    assert d.update(True, T.TAMPER_SWITCH_HOLD_S_NORMAL) == HELD
    assert d.update(True, 5.0) is None          # one event per tamper
    assert d.update(False, 5.1) is None
    assert d.update(False, 5.1 + T.TAMPER_FLAP_WINDOW_S) is None  # re-armed after a quiet window
    assert not d.latched
    assert d.update(True, 7.0) is None
    assert d.update(True, 7.0 + T.TAMPER_SWITCH_HOLD_S_NORMAL) == HELD


def test_flapping_line_trips_even_if_never_held() -> None:
    d = Debouncer(switch_profile(Sensitivity.LOW))
    reasons = []
    for i in range(T.TAMPER_FLAP_EDGES + 1):
        reasons.append(d.update(i % 2 == 0, i * 0.01))
    assert FLAPPING in reasons
    assert HELD not in reasons


def test_slow_toggles_are_not_flapping() -> None:
    d = Debouncer(DebounceProfile(hold_s=math.inf))
    for i in range(40):
        assert d.update(i % 2 == 0, i * T.TAMPER_FLAP_WINDOW_S / 2) is None


def test_sensitivity_orders_hold_times() -> None:
    assert switch_profile(Sensitivity.HIGH).hold_s < switch_profile().hold_s < switch_profile(Sensitivity.LOW).hold_s


def test_shock_pulses_within_window_trip() -> None:
    d = Debouncer(shock_profile(Sensitivity.NORMAL))
    reasons = []
    for i in range(T.TAMPER_SHOCK_PULSES_NORMAL):
        reasons.append(d.update(True, i * 0.05))
        reasons.append(d.update(False, i * 0.05 + 0.002))
    assert reasons.count(PULSES) == 1


def test_isolated_shock_pulses_do_not_trip() -> None:
    d = Debouncer(shock_profile(Sensitivity.LOW))
    for i in range(20):
        assert d.update(True, i * 2.0) is None
        assert d.update(False, i * 2.0 + 0.002) is None


def test_supply_dip_shorter_than_hold_is_ignored() -> None:
    d = Debouncer(supply_profile())
    assert d.update(True, 0.0) is None
    assert d.update(False, T.TAMPER_SUPPLY_HOLD_S / 2) is None
    assert d.update(True, 1.0) is None
    assert d.update(True, 1.0 + T.TAMPER_SUPPLY_HOLD_S) == HELD


def test_line_active_at_start_up_trips() -> None:
    d = Debouncer(switch_profile())
    assert d.update(True, 100.0) is None
    assert d.update(True, 100.0 + T.TAMPER_SWITCH_HOLD_S_NORMAL) == HELD


def test_rearm_trips_a_level_still_active_at_the_next_update() -> None:
    d = Debouncer(switch_profile())
    d.update(True, 0.0)
    assert d.update(True, 0.05) == HELD
    assert d.update(True, 5.0) is None and d.held   # latched while the level lasts
    d.rearm()
    assert d.update(True, 5.005) == HELD             # still active: trips again at once
    d.update(False, 6.0)
    assert not d.held
