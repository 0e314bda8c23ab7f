"""SIMULATED: on the simulator's prints, screens and masks the pulse cue reports no coherent pulse; on a
simulated live face it does (limen.lab.simulate: the pulse modulates live skin only, ≈ 0.3 % in green)."""

from __future__ import annotations

import pytest

from limen.lab import simulate
from limen.pad.contract import CueScore, Purpose
from limen.pad.pulse import PulseCue


def _evidence(species: simulate.Species, seconds: float, fps: float, seed: int) -> dict[str, float] | None:
    (presentation,) = simulate.population(species, 1, seed=seed)
    result = PulseCue().score(simulate.render(presentation, seconds=seconds, fps=fps).sample(), Purpose.VERIFY)
    return result.evidence if isinstance(result, CueScore) else None


@pytest.mark.parametrize("species", simulate.ATTACKS)
def test_an_attack_carries_no_coherent_pulse(species: simulate.Species) -> None:
    for seed in (11, 12):
        evidence = _evidence(species, 4.0, 10.0, seed)  # the campaign's capture: 4 s at 10 fps
        assert evidence is None or evidence["coherent"] == 0.0, (species, seed, evidence)


def test_a_live_face_carries_a_coherent_pulse_at_its_rate() -> None:
    # 12 s at 15 fps: at 4 s the simulated pulse (0.3 % in green) passes the permutation test only about
    # half the time — the test has little power on a door's capture (docs/pad-sensors.md).
    coherent = 0
    for seed in (11, 12, 13, 14):
        (presentation,) = simulate.population(simulate.Species.BONA_FIDE, 1, seed=seed)
        result = PulseCue().score(simulate.render(presentation, seconds=12.0, fps=15.0).sample(), Purpose.VERIFY)
        assert isinstance(result, CueScore)
        assert result.evidence["bpm"] == pytest.approx(presentation.person.bpm, abs=2.0)
        coherent += int(result.evidence["coherent"])
    assert coherent >= 3
