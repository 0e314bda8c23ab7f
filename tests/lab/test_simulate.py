"""The SIMULATOR's physics: what each stream shows for a live face and for each attack species."""

from __future__ import annotations

from dataclasses import replace
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


def test_the_dot_pattern_survives_by_the_materials_scattering() -> None:
    f = np.array([0.0, 0.05, 0.1, 0.2])
    skin = simulate.modulation_transfer(f, 1.2, 0.55, simulate.DERMIS_MUA)
    silicone = simulate.modulation_transfer(f, 4.0, simulate.SILICONE_NIR)
    paper = simulate.modulation_transfer(f, simulate.OTHER_MUS["paper"], simulate.PAPER_NIR)
    assert skin[0] == pytest.approx(1.0) and silicone[0] == pytest.approx(1.0)
    assert np.all(np.diff(skin) < 0) and np.all(np.diff(silicone) < 0)  # finer patterns blur more
    assert np.all(skin[1:] < silicone[1:]) and np.all(silicone[1:] < paper[1:])
    # the surface reflection is never blurred: darker skin (less diffuse light) keeps a sharper share
    assert simulate.modulation_transfer(f, 1.2, 0.45, simulate.DERMIS_MUA)[-1] > skin[-1]


def test_absorption_for_inverts_the_diffuse_reflectance() -> None:
    for mus, r in ((1.2, 0.5), (4.0, 0.58), (20.0, 0.8)):
        mua = simulate.absorption_for(r, mus)
        assert float(simulate.diffuse_reflectance(0.0, mus, mua)) == pytest.approx(r, abs=1e-4)


def test_people_and_masks_vary_in_scattering_from_their_own_seed() -> None:
    people = simulate.population(Species.SILICONE_MASK, 40, seed=3)
    skin = np.array([p.person.skin_mus for p in people])
    masks = np.array([p.silicone_mus for p in people])
    lo, hi = simulate.SKIN_MUS_RANGE
    assert lo <= skin.min() < 1.0 < 1.4 < skin.max() <= hi  # a spread, not one value
    assert simulate.SILICONE_MUS_RANGE[0] <= masks.min() and masks.max() <= simulate.SILICONE_MUS_RANGE[1]
    assert people[0].person.skin_mus == simulate.population(Species.SILICONE_MASK, 1, seed=3)[0].person.skin_mus
    assert replace(people[0], mask_mus=1.1).silicone_mus == 1.1


def test_the_same_face_returns_sharper_dots_from_silicone_than_from_skin() -> None:
    from limen.pad.infrared import dot_contrast

    live = simulate.population(Species.BONA_FIDE, 1, seed=4)[0]
    mask = replace(simulate.population(Species.SILICONE_MASK, 1, seed=4)[0], distance_mm=live.distance_mm)

    def contrast(p: simulate.Presentation) -> float:
        views = simulate.render(p, seconds=0.5, fps=8.0).sample().faces
        return float(np.median([dot_contrast(v)[0] for v in views]))

    assert contrast(mask) > 1.3 * contrast(live)
    assert contrast(replace(mask, mask_mus=mask.person.skin_mus)) < contrast(mask)  # skin-like silicone: blurrier
