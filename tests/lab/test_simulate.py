"""The SIMULATOR's physics: what each stream shows for a live face and for each attack species."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from limen.capture import depth as sources
from limen.errors import SensorUnavailable
from limen.lab import simulate
from limen.lab.simulate import Species
from limen.pad.pulse import heart_rate, skin_means


def one(species: Species, seconds: float = 1.0, fps: float = 8.0, seed: int = 5) -> simulate.SimCapture:
    return simulate.render(simulate.population(species, 1, seed=seed)[0], seconds=seconds, fps=fps)


def face_patch(s: simulate.SimCapture, stream: str, i: int = 0) -> np.ndarray:
    f, b = s.capture.frames[i], s.boxes[i]
    img = f.depth if stream == "depth" else f.ir
    assert img is not None
    return img[b.top : b.bottom, b.left : b.right].astype(np.float32)


def test_the_same_seed_renders_the_same_frames_and_labels_them_simulated() -> None:
    a, b = one(Species.BONA_FIDE), one(Species.BONA_FIDE)
    assert np.array_equal(a.capture.frames[2].rgb, b.capture.frames[2].rgb)
    assert a.capture.meta["simulated"] == "true"
    f = a.capture.frames[0]
    assert f.depth is not None and f.ir is not None and f.geometry is not None and f.device.startswith("sim:")
    assert f.depth.shape == f.rgb.shape[:2] == f.ir.shape


def test_a_live_face_has_relief_and_a_print_is_flat() -> None:
    def off_plane(d: np.ndarray) -> float:  # RMS distance to the best plane, mm
        v, u = np.nonzero(d > 0)
        a = np.stack([np.ones(len(u)), u, v], axis=1)
        coef, *_ = np.linalg.lstsq(a, d[v, u], rcond=None)
        return float(np.sqrt(np.mean((a @ coef - d[v, u]) ** 2)))

    live, flat = face_patch(one(Species.BONA_FIDE), "depth"), face_patch(one(Species.FLAT_PRINT), "depth")
    assert off_plane(live) > 8.0 > 3.0 > off_plane(flat)


def test_screens_are_dark_in_near_infrared_and_lose_depth() -> None:
    live, screen = one(Species.BONA_FIDE), one(Species.TABLET)
    assert np.median(face_patch(screen, "ir")) < 0.3 * np.median(face_patch(live, "ir"))
    assert (face_patch(screen, "depth") == 0).mean() > 0.3 > (face_patch(live, "depth") == 0).mean()


def test_the_pulse_is_on_live_skin_only() -> None:
    live, mask = one(Species.BONA_FIDE, 8.0, 15.0), one(Species.SILICONE_MASK, 8.0, 15.0)
    for s, has_pulse in ((live, True), (mask, False)):
        views = s.sample()
        near = views.faces[0]
        means = []
        for i, f in enumerate(s.capture.frames):
            view = simulate.FaceView(i, f, s.boxes[i], s.points[i], near.crop)
            m = skin_means(view)
            assert m is not None
            means.append(m)
        est = heart_rate(np.array(means), 15.0)
        truth = s.presentation.person.bpm
        assert (abs(est.bpm - truth) < 4.0) is has_pulse, (est, truth)


def test_a_simulated_capture_plays_back_through_the_realsense_source(tmp_path: Path) -> None:
    try:
        sources.sdk("pyrealsense2", sources.REALSENSE)
    except SensorUnavailable as exc:
        pytest.skip(str(exc))
    s = one(Species.SILICONE_MASK)
    path = simulate.write_recording(s, tmp_path / "mask.db3")
    back = sources.RealSenseSource(recording=path).capture(len(s.capture.frames))
    assert len(back.frames) == len(s.capture.frames)
    for a, b in zip(s.capture.frames, back.frames, strict=True):
        assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.ir, b.ir)
        assert a.depth is not None and b.depth is not None and np.array_equal(a.depth, b.depth)
