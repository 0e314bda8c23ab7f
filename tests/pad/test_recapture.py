"""The recapture simulator: deterministic, same size, and it leaves the artefacts it claims to."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from limen.lab.recapture import SPECIES, Species, build_bursts, simulate, simulate_burst, tremor


def scene(seed: int = 0) -> np.ndarray:
    """A smooth synthetic 'live' frame (no high frequencies of its own)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 220, (6, 8, 3)).astype(np.uint8)
    return cv2.resize(small, (320, 240), interpolation=cv2.INTER_CUBIC)


def high_band_energy(rgb: np.ndarray) -> float:
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(np.mean((g - cv2.GaussianBlur(g, (0, 0), 2.0)) ** 2))


@pytest.mark.parametrize("species", SPECIES)
def test_simulation_is_deterministic_and_keeps_the_size(species: Species) -> None:
    live = scene()
    a, b = simulate(live, species, seed=3), simulate(live, species, seed=3)
    assert a.shape == live.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, simulate(live, species, seed=4))


@pytest.mark.parametrize("species", SPECIES)
def test_recapture_adds_fine_structure_to_a_smooth_scene(species: Species) -> None:
    """Halftone, sub-pixel grid, noise and JPEG leave high-frequency energy a smooth scene does not have."""
    live = scene(1)
    assert high_band_energy(simulate(live, species, seed=0)) > 3 * high_band_energy(live)


def test_prints_lose_dynamic_range() -> None:
    live = np.zeros((240, 320, 3), np.uint8)
    live[:, 160:] = 255
    out = simulate(live, Species.PRINT_MATTE, seed=0).astype(float)
    centre = out[80:160, 100:220]
    black, white = centre[:, :40].mean(), centre[:, -40:].mean()
    assert black > 5  # ink black is not camera black
    assert white / black < 40  # paper density ~1.3 (≈ 20:1), far from the live scene's 255:0


def test_burst_is_a_moving_plane() -> None:
    frames = simulate_burst(scene(2), Species.SCREEN_PHONE, seed=1, frames=5)
    assert len(frames) == 5 and all(f.shape == (240, 320, 3) for f in frames)
    assert not np.array_equal(frames[0], frames[-1])
    moves = tremor(5, (240, 320), np.random.default_rng(0))
    assert all(np.all(np.isfinite(m)) for m in moves) and not np.allclose(moves[0], moves[-1])


def test_burst_set_layout(tmp_path: Path) -> None:
    """`build_bursts` writes <species>/<presentation>/<frames>: real live windows and their simulated bursts."""
    subject = tmp_path / "nuaa" / "live" / "0001"
    subject.mkdir(parents=True)
    for n in range(12):
        cv2.imwrite(str(subject / f"0001_00_00_01_{n}.jpg"), scene(n)[:, :, ::-1])
    written = build_bursts(tmp_path / "nuaa", tmp_path / "out", per_run=2, frames=5,
                           species=(Species.SCREEN_PHONE,))
    live = sorted(p.name for p in (tmp_path / "out" / "live").iterdir())
    assert written == 4 and live == ["0001_00_00_01_0", "0001_00_00_01_6"]
    for kind in ("live", "screen_phone"):
        for name in live:
            assert len(list((tmp_path / "out" / kind / name).glob("*.jpg"))) == 5
    first = sorted(subject.glob("*.jpg"), key=lambda p: int(p.stem.split("_")[4]))[6]
    assert (tmp_path / "out" / "live" / live[1] / "0.jpg").read_bytes() == first.read_bytes()
