"""Debouncing: turn a raw level (sampled on every edge and every poll) into at most one trip.

`Debouncer.update(active, t)` is pure bookkeeping over monotonic time `t`:

* **held** – the level stayed active for `hold_s` (switch bounce is shorter);
* **pulses** – `pulses` rising edges inside `pulse_window_s` (shock sensors);
* **flapping** – `flap_edges` level changes inside `flap_window_s`: a line that
  is probed, shorted or failing flaps, and a flapping tamper line is a tamper.

After a trip the debouncer is latched (no second trip) until the level has
been inactive for `flap_window_s`: one event per tamper, not one per bounce.
`rearm()` ends the latch at once (the monitor calls it when a tamper lockdown
is lifted): a level still active then trips again at the next update.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from limen import thresholds as T
from limen.tamper.signals import Sensitivity

HELD, PULSES, FLAPPING = "held", "pulses", "flapping"
_EPS = 1e-9  # float slack on time differences


@dataclass(frozen=True)
class DebounceProfile:
    hold_s: float                           # math.inf: the level alone never trips
    pulses: int = 0                         # 0: pulse counting off
    pulse_window_s: float = 0.0
    flap_edges: int = T.TAMPER_FLAP_EDGES
    flap_window_s: float = T.TAMPER_FLAP_WINDOW_S


_SWITCH_HOLD = {Sensitivity.HIGH: T.TAMPER_SWITCH_HOLD_S_HIGH, Sensitivity.NORMAL: T.TAMPER_SWITCH_HOLD_S_NORMAL,
                Sensitivity.LOW: T.TAMPER_SWITCH_HOLD_S_LOW}
_SHOCK_PULSES = {Sensitivity.HIGH: T.TAMPER_SHOCK_PULSES_HIGH, Sensitivity.NORMAL: T.TAMPER_SHOCK_PULSES_NORMAL,
                 Sensitivity.LOW: T.TAMPER_SHOCK_PULSES_LOW}


def switch_profile(sensitivity: Sensitivity = Sensitivity.NORMAL) -> DebounceProfile:
    """Case, escutcheon and power-fail switches: a held level trips."""
    return DebounceProfile(hold_s=_SWITCH_HOLD[Sensitivity(sensitivity)])


def shock_profile(sensitivity: Sensitivity = Sensitivity.NORMAL) -> DebounceProfile:
    """Shock / vibration sensors: bursts of pulses trip; a line stuck active for a second trips too."""
    return DebounceProfile(hold_s=T.TAMPER_FLAP_WINDOW_S, pulses=_SHOCK_PULSES[Sensitivity(sensitivity)],
                           pulse_window_s=T.TAMPER_SHOCK_WINDOW_S, flap_edges=10**9)


def supply_profile() -> DebounceProfile:
    """Supply voltage out of range for `TAMPER_SUPPLY_HOLD_S` (motor inrush is shorter)."""
    return DebounceProfile(hold_s=T.TAMPER_SUPPLY_HOLD_S)


class Debouncer:
    """See the module docstring.  Not thread-safe: the owning source serialises calls."""

    def __init__(self, profile: DebounceProfile) -> None:
        self.profile = profile
        self._active: bool | None = None
        self._since = 0.0
        self._edges: deque[float] = deque()
        self._rises: deque[float] = deque()
        self.latched = False

    @property
    def held(self) -> bool:
        """Latched by a trip and the level still active (the tamper condition has not gone)."""
        return self.latched and bool(self._active)

    def rearm(self) -> None:
        """End the latch now: a level still active trips again at the next `update`."""
        self.latched = False

    def update(self, active: bool, t: float) -> str | None:
        """Feed the current level at monotonic time `t`; return the trip reason once, else None."""
        p = self.profile
        if active != self._active:
            if self._active is not None or active:
                self._edges.append(t)
                if active:
                    self._rises.append(t)
            self._active, self._since = active, t
        _drop_before(self._edges, t - p.flap_window_s)
        _drop_before(self._rises, t - p.pulse_window_s)
        if self.latched:
            if not active and t - self._since >= p.flap_window_s - _EPS:
                self.latched = False
                self._edges.clear()
                self._rises.clear()
            return None
        reason = None
        if active and not math.isinf(p.hold_s) and t - self._since >= p.hold_s - _EPS:
            reason = HELD
        elif p.pulses and len(self._rises) >= p.pulses:
            reason = PULSES
        elif len(self._edges) >= p.flap_edges:
            reason = FLAPPING
        self.latched = reason is not None
        return reason


def _drop_before(times: deque[float], limit: float) -> None:
    while times and times[0] < limit:
        times.popleft()
