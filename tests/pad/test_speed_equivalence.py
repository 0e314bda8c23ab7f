"""Speed work on PAD judges exactly as before: old vs new per-frame scores on real NUAA frames.

Every optimisation of the PAD path keeps the frames judged and the cues run;
each is compared here with the code it replaced (kept verbatim in
`tests/pad/reference_pad.py`, or, for MiniFASNet, the imported graph as built)
on nuaa-dev bursts, live and print, of every subject.  Every change kept the
arithmetic, so the bound is exact equality (bit for bit: Δscore = 0, same
decisions, same evidence) — except MiniFASNet's zero-padded channels, which
change the order of float sums: its scores and the fused score within
`MINIFASNET_TOLERANCE` (per-frame evidence, rounded to 4 decimals, within one
step more), and the distortion features' chromatic and specular moments, summed over
level counts instead of pixels (within `MOMENTS_TOLERANCE`), and the spectrum
from OpenCV's DFT (within `FREQUENCY_TOLERANCE`): the texture score within
`TEXTURE_TOLERANCE`; every decision and every other field still
equal; and the face-location luma gate, from the channel means (within
`LUMA_TOLERANCE`, the same decisions).  Skips when nuaa-dev or the MiniFASNet
weights are absent.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from limen import thresholds
from limen.bio.face.detect import Box
from limen.capture import Capture
from limen.core.onnx import cpu_session
from limen.pad import assess, distortion, faces, frequency, lbp, motion, texture
from limen.pad import minifasnet as mf
from limen.pad.contract import CueScore, Purpose
from limen.pad.faces import PadSample
from limen.pad.fusion import PadVerdict
from limen.pad.minifasnet_models import load_model
from limen.pad.onnx_minifasnet import INPUT_NAME, OUTPUT_NAME, Variant, prelu_as_relus
from limen.pad.texture import FRAME_KEY
from tests.pad import reference_pad as old
from tests.pad.helpers import nuaa_burst

SUBJECTS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009")
KINDS = ("live", "print")


@pytest.fixture(scope="module")
def bursts() -> list[Capture]:
    """A 5-frame burst of each subject, live and print (45 + 45 frames), skipping when nuaa-dev is absent."""
    return [nuaa_burst(kind, subject, n=5, skip=10) for kind in KINDS for subject in SUBJECTS]


@pytest.fixture(scope="module")
def samples(bursts: list[Capture]) -> list[PadSample]:
    """What PAD's cues see of each burst (its own face detection)."""
    located = [faces.locate(capture) for capture in bursts]
    assert sum(len(s.faces) for s in located) >= 60, "too few usable NUAA faces to compare"
    return located


@pytest.fixture(scope="module")
def framed(samples: list[PadSample]) -> list[tuple[list[np.ndarray], list[Box]]]:
    """Each burst's usable frames and their face boxes."""
    return [([f.frame.rgb for f in s.faces], [f.box for f in s.faces]) for s in samples]


# ------------------------------------------------------------------ MiniFASNet: the run graph (PRelu as Relus, bit
# for bit; channels padded with zeros, equal up to float summation order: MINIFASNET_TOLERANCE)

MINIFASNET_TOLERANCE = 1e-5  # |Δ| of a MiniFASNet-derived score (log-odds), run graph vs graph as imported


def _imported_sessions(models_dir: Path) -> dict[Variant, Any]:
    return {v: cpu_session(load_model(models_dir, v)) for v in Variant}


def _old_minifasnet_scores(sessions: dict[Variant, Any], frames: list[np.ndarray], boxes: list[Box]) -> np.ndarray:
    logits = {}
    for v, session in sessions.items():
        crops = np.stack([mf.crop(rgb, box, v.spec.scale) for rgb, box in zip(frames, boxes, strict=True)])
        logits[v] = np.asarray(session.run([OUTPUT_NAME], {INPUT_NAME: crops})[0])
    return mf.live_log_odds(logits)


def test_prelu_as_relus_gives_the_same_scores_on_nuaa(minifasnet_models_dir: Path,
                                                      framed: list[tuple[list[np.ndarray], list[Box]]]) -> None:
    imported = _imported_sessions(minifasnet_models_dir)
    relus = {v: cpu_session(prelu_as_relus(load_model(minifasnet_models_dir, v))) for v in Variant}
    old_scores = np.concatenate([_old_minifasnet_scores(imported, f, b) for f, b in framed if f])
    new_scores = np.concatenate([_old_minifasnet_scores(relus, f, b) for f, b in framed if f])
    assert new_scores.size >= 60
    assert np.array_equal(new_scores, old_scores)  # bit for bit: Relu(y) + (−s)·Relu(−y) is PRelu's arithmetic
    assert np.ptp(old_scores) > 1.0  # the frames span live and print scores: the comparison is not of constants


def test_run_graph_gives_the_same_scores_on_nuaa_within_tolerance(minifasnet_models_dir: Path,
                                                                  framed: list[tuple[list[np.ndarray], list[Box]]]
                                                                  ) -> None:
    imported = _imported_sessions(minifasnet_models_dir)
    mf._forget_sessions()
    new_scores, old_scores = [], []
    for frames, boxes in framed:
        if frames:
            old_scores.append(_old_minifasnet_scores(imported, frames, boxes))
            new_scores.append(mf.minifasnet_scores(frames, boxes, minifasnet_models_dir))
    new, old_all = np.concatenate(new_scores), np.concatenate(old_scores)
    assert new.shape == old_all.shape and new.size >= 60
    assert np.abs(new - old_all).max() <= MINIFASNET_TOLERANCE
    for t in (thresholds.PAD_MINIFASNET_VERIFY, thresholds.PAD_MINIFASNET_ENROL):  # the same decision per frame
        assert np.array_equal(new >= t, old_all >= t)
    assert np.ptp(new) > 1.0


def test_prelu_as_relus_rewrites_every_prelu(minifasnet_models_dir: Path) -> None:
    import onnx

    for v in Variant:
        data = load_model(minifasnet_models_dir, v)
        before = onnx.load_from_string(data)
        after = onnx.load_from_string(prelu_as_relus(data))
        prelus = sum(n.op_type == "PRelu" for n in before.graph.node)
        assert prelus > 0
        assert sum(n.op_type == "PRelu" for n in after.graph.node) == 0
        relus_before = sum(n.op_type == "Relu" for n in before.graph.node)  # V1SE's excitations
        assert sum(n.op_type == "Relu" for n in after.graph.node) == relus_before + 2 * prelus
        assert after.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "n"
        onnx.checker.check_model(after, full_check=True)


def _per_crop_scores(frames: list[np.ndarray], boxes: list[Box], models_dir: Path) -> np.ndarray:
    """MiniFASNet's scores as computed before the shared patch: each model's own crop of each frame, one run each."""
    sessions = mf._sessions(models_dir).by_variant
    return mf.live_log_odds({v: np.concatenate([
        sessions[v].run([OUTPUT_NAME], {INPUT_NAME: mf.crop(rgb, box, v.spec.scale)[None]})[0]
        for rgb, box in zip(frames, boxes, strict=True)]) for v in Variant})


def test_shared_minifasnet_patch_gives_the_same_scores(minifasnet_models_dir: Path,
                                                        framed: list[tuple[list[np.ndarray], list[Box]]]) -> None:
    """Both models' patch resized once where their corners agree: bit for bit each model's own crop and run.

    The nuaa-dev faces are large (the scale capped by the frame: one patch for both); the same frames with the
    face box shrunk to 90 px put the two models' corners apart (a patch each), and both give the same bits.
    """
    shared = apart = 0
    for frames, boxes in framed:
        small = [Box(b.left, b.top, b.left + 90, b.top + 90) for b in boxes]
        for bx in (boxes, small):
            if not frames:
                continue
            assert np.array_equal(mf.minifasnet_scores(frames, bx, minifasnet_models_dir),
                                  _per_crop_scores(frames, bx, minifasnet_models_dir))
            for rgb, box in zip(frames, bx, strict=True):
                corners = {mf.crop_box(rgb.shape[1], rgb.shape[0], box, v.spec.scale) for v in Variant}
                shared += len(corners) == 1
                apart += len(corners) == 2
    assert shared >= 30 and apart >= 30  # both paths are exercised


# ------------------------------------------------------------------ motion: grey once per frame


def test_motion_pairs_are_the_same_on_nuaa(samples: list[PadSample]) -> None:
    compared = measured = 0
    for sample in samples:
        greys = [motion.grey(f) for f in sample.faces]
        for i, (a, b) in enumerate(zip(sample.faces[:-1], sample.faces[1:], strict=True)):
            before = old.pair_motion(a, b)
            assert motion.pair_motion(a, b, (greys[i], greys[i + 1])) == before
            assert motion.pair_motion(a, b) == before
            compared += 1
            measured += before is not None
    assert compared >= 50 and measured >= 40


def test_motion_cue_scores_are_the_same_on_nuaa(samples: list[PadSample], monkeypatch: pytest.MonkeyPatch) -> None:
    new = [motion.MotionCue().score(s, Purpose.VERIFY) for s in samples]
    monkeypatch.setattr(motion, "pair_motion", lambda a, b, greys=None: old.pair_motion(a, b))
    before = [motion.MotionCue().score(s, Purpose.VERIFY) for s in samples]
    assert new == before
    assert sum(isinstance(r, CueScore) for r in new) >= 5


# ------------------------------------------------------------------ texture: LBP of six channels at once, spectrum
# regions indexed once, distortion's moments in one pass, its histograms counted by OpenCV, its top colours
# partitioned


# The chromatic moments and the specular pixels' mean and variance are sums over 256 level counts instead of over
# the pixels: the same values up to float summation order (texture log-odds within 4e-15 on 1,746 nuaa-dev faces,
# the same decisions); the 32-bin histograms and the specular share stay exact.
EVIDENCE_STEP = 1e-4  # per-frame evidence is rounded to 4 decimals (texture.per_frame_evidence)
MOMENTS_TOLERANCE = 1e-12  # |Δ| of a moment (values of order 1)
TEXTURE_TOLERANCE = 1e-9  # |Δ| of the texture model's log-odds (standardised features: Δ scaled by coef / scale)
_MOMENTS = slice(5, 20)  # the moments' columns in `distortion_features` (3 specular, 2 blur, 15, 2 colour)
_HIST_COLUMNS = [c for c in range(15) if c % 5 in (3, 4)]  # each channel's emptiest and fullest bin
_SPECULAR_MOMENTS = [1, 2]  # the specular pixels' mean and variance, from level counts (their share: exact)


def _assert_moments_equal(new: np.ndarray, before: np.ndarray) -> None:
    assert new.shape == before.shape == (15,)
    assert np.array_equal(new[_HIST_COLUMNS], before[_HIST_COLUMNS])  # bins: exact counts
    assert np.allclose(new, before, rtol=0, atol=MOMENTS_TOLERANCE)


def _assert_distortion_equal(new: np.ndarray, before: np.ndarray) -> None:
    rest = np.setdiff1d(np.r_[0:_MOMENTS.start, _MOMENTS.stop:before.size], _SPECULAR_MOMENTS)
    assert np.array_equal(new[rest], before[rest], equal_nan=True)  # every other feature bit for bit
    assert np.allclose(new[_SPECULAR_MOMENTS], before[_SPECULAR_MOMENTS], rtol=0, atol=MOMENTS_TOLERANCE)
    _assert_moments_equal(new[_MOMENTS], before[_MOMENTS])


# The spectrum is OpenCV's DFT of the real image, its power re² + im², instead of NumPy's |fft2|²: the same up to
# float rounding (features within 4e-14 on nuaa-dev crops).
FREQUENCY_TOLERANCE = 1e-10  # |Δ| of a frequency feature (log band shares and log peak ratios, values ≲ 30)


def _assert_frequency_equal(new: np.ndarray, before: np.ndarray) -> None:
    assert new.shape == before.shape
    assert np.array_equal(np.isnan(new), np.isnan(before))
    assert np.allclose(new, before, rtol=0, atol=FREQUENCY_TOLERANCE, equal_nan=True)


def test_power_spectrum_is_numpys_within_rounding() -> None:
    rng = np.random.default_rng(17)
    for g in (rng.standard_normal((128, 128)), np.zeros((128, 128)), rng.integers(0, 256, (128, 128)) * 1.0):
        before = (np.abs(np.fft.fft2(g)) ** 2).ravel()
        new = frequency._power(g)
        assert np.allclose(new, before, rtol=1e-12, atol=1e-9)
    assert not np.array_equal(frequency._power(g), (np.abs(np.fft.fft2(g)) ** 2).ravel())  # not the same bits


def test_specular_is_the_same_at_the_thresholds() -> None:
    """Value and saturation levels on both sides of both thresholds, no and only specular pixels."""
    levels = np.arange(256, dtype=np.uint8)
    grid = np.stack([np.zeros((256, 256), np.uint8), *np.meshgrid(levels, levels)], axis=2)  # every (S, V) pair
    rng = np.random.default_rng(13)
    white = np.zeros((9, 9, 3), np.uint8)
    white[:, :, 2] = 255  # HSV: no saturation, full value
    images = [grid, np.zeros((20, 20, 3), np.uint8), white, rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)]
    for image in images:
        new, before = distortion._specular(image), old.specular(image)
        assert new[0] == before[0]  # the same pixels counted
        assert np.allclose(new, before, rtol=0, atol=MOMENTS_TOLERANCE)
    assert old.specular(images[1])[0] == 0.0 and old.specular(images[2])[0] == 1.0 and 0 < old.specular(grid)[0] < 1


def _assert_evidence_close(new: dict[str, float], before: dict[str, float], tolerance: float) -> None:
    assert new.keys() == before.keys()
    for key, value in new.items():
        rounding = EVIDENCE_STEP if key.startswith(FRAME_KEY) else 0.0  # a Δ of 1e-12 can cross a rounding step
        assert abs(value - before[key]) <= tolerance + rounding, key


def test_texture_features_are_the_same_on_nuaa(samples: list[PadSample]) -> None:
    crops = [f.crop for s in samples for f in s.faces]
    assert len(crops) >= 60
    for crop in crops:
        assert np.array_equal(lbp.colour_texture(crop), old.colour_texture(crop))
        _assert_frequency_equal(frequency.frequency_features(crop), old.frequency_features(crop))
        _assert_distortion_equal(distortion.distortion_features(crop), old.distortion_features(crop))


def test_texture_features_are_the_same_on_odd_crops() -> None:
    """Flat, tiny, saturated and noisy crops (empty LBP bins, a spectrum of zeros)."""
    rng = np.random.default_rng(7)
    crops = [np.zeros((40, 40, 3), np.uint8), np.full((3, 3, 3), 255, np.uint8),
             rng.integers(0, 256, (31, 77, 3), dtype=np.uint8), rng.integers(250, 256, (200, 150, 3), dtype=np.uint8)]
    for crop in crops:
        assert np.array_equal(lbp.colour_texture(crop), old.colour_texture(crop))
        _assert_frequency_equal(frequency.frequency_features(crop), old.frequency_features(crop))
        _assert_distortion_equal(distortion.distortion_features(crop), old.distortion_features(crop))


def test_distortion_moments_and_colours_are_the_same_on_edge_images() -> None:
    """Every HSV level, one flat level per channel, few and many distinct colours (≤ 100 and > 100 used bins)."""
    rng = np.random.default_rng(11)
    levels = np.arange(256, dtype=np.uint8)
    images = [np.stack([np.resize(levels, (96, 96))] * 3, axis=2), np.full((96, 96, 3), 7, np.uint8),
              rng.integers(0, 256, (96, 96, 3), dtype=np.uint8), rng.integers(0, 3, (96, 96, 3), dtype=np.uint8) * 80,
              rng.integers(100, 140, (33, 17, 3), dtype=np.uint8)]
    for image in images:
        _assert_moments_equal(distortion._chromatic_moments(image), old.chromatic_moments(image))
        assert np.array_equal(distortion._colour_diversity(image), old.colour_diversity(image))
    assert old.colour_diversity(images[3])[0] * 96 * 96 <= 100 < old.colour_diversity(images[2])[0] * 96 * 96


def test_texture_cue_scores_are_the_same_on_nuaa(samples: list[PadSample], monkeypatch: pytest.MonkeyPatch) -> None:
    new = [texture.TextureCue().score(s, p) for s in samples for p in Purpose]
    monkeypatch.setattr(texture, "colour_texture", old.colour_texture)
    monkeypatch.setitem(texture.FAMILIES, "frequency", old.frequency_features)
    monkeypatch.setitem(texture.FAMILIES, "distortion", old.distortion_features)
    before = [texture.TextureCue().score(s, p) for s in samples for p in Purpose]
    for n, b in zip(new, before, strict=True):  # the same outcome; scores within the moments' tolerance
        assert type(n) is type(b)
        if isinstance(n, CueScore) and isinstance(b, CueScore):
            assert n.threshold == b.threshold and (n.score >= n.threshold) == (b.score >= b.threshold)
            assert abs(n.score - b.score) <= TEXTURE_TOLERANCE
            _assert_evidence_close(n.evidence, b.evidence, TEXTURE_TOLERANCE)
        else:
            assert n == b
    scores = [r.score for r in new if isinstance(r, CueScore)]
    assert len(scores) >= 30 and np.ptp(scores) > 1.0


# ------------------------------------------------------------------ face location: the luma gate from the channel
# means (a decision: the frame too dark, too bright or usable)

LUMA_TOLERANCE = 1e-4  # |Δ| of a crop's mean luma (0–255), channel means vs per-pixel float32 lumas averaged


def _luma_images() -> list[np.ndarray]:
    """Uniform greys at and beside both thresholds, colours, noise and a tiny crop."""
    rng = np.random.default_rng(5)
    greys = [np.full((70, 70, 3), level, np.uint8) for t in (thresholds.PAD_MIN_LUMA, thresholds.PAD_MAX_LUMA)
             for level in (int(t) - 1, int(t), int(t) + 1)]
    colours = [np.full((64, 90, 3), colour, np.uint8)
               for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255), (40, 30, 38))]
    return [*greys, *colours, rng.integers(0, 256, (300, 260, 3), dtype=np.uint8), np.full((1, 1, 3), 200, np.uint8)]


def test_luma_gate_decides_the_same_on_nuaa_and_at_the_thresholds(samples: list[PadSample]) -> None:
    crops = [f.crop for s in samples for f in s.faces] + _luma_images()
    assert len(crops) >= 70
    for crop in crops:
        new, before = faces.mean_luma(crop), old.mean_luma(crop)
        assert abs(new - before) <= LUMA_TOLERANCE
        assert (new < thresholds.PAD_MIN_LUMA) == (before < thresholds.PAD_MIN_LUMA)
        assert (new > thresholds.PAD_MAX_LUMA) == (before > thresholds.PAD_MAX_LUMA)
    at_edges = [faces.mean_luma(g) for g in _luma_images()[:6]]  # both sides of both thresholds are exercised
    assert min(at_edges) < thresholds.PAD_MIN_LUMA and max(at_edges) > thresholds.PAD_MAX_LUMA


def test_face_location_is_the_same_on_nuaa(bursts: list[Capture], monkeypatch: pytest.MonkeyPatch) -> None:
    new = [faces.locate(c) for c in bursts]
    monkeypatch.setattr(faces, "mean_luma", old.mean_luma)
    before = [faces.locate(c) for c in bursts]
    for n, b in zip(new, before, strict=True):
        assert n.analysed == b.analysed and n.unusable == b.unusable
        assert [(f.index, f.box) for f in n.faces] == [(f.index, f.box) for f in b.faces]
        assert all(np.array_equal(f.points, g.points) and np.array_equal(f.crop, g.crop)
                   for f, g in zip(n.faces, b.faces, strict=True))


# ------------------------------------------------------------------ the whole verdict


def _old_pad(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put back every replaced implementation (MiniFASNet's sessions rebuilt from the graph as imported)."""
    monkeypatch.setattr(mf, "run_graph", load_model)  # the stored run graph is not read: the imported one runs
    monkeypatch.setattr(motion, "pair_motion", lambda a, b, greys=None: old.pair_motion(a, b))
    monkeypatch.setattr(texture, "colour_texture", old.colour_texture)
    monkeypatch.setitem(texture.FAMILIES, "frequency", old.frequency_features)
    monkeypatch.setitem(texture.FAMILIES, "distortion", old.distortion_features)
    monkeypatch.setattr(faces, "mean_luma", old.mean_luma)
    mf._forget_sessions()


MINIFASNET_DERIVED = frozenset({"minifasnet", "fused"})  # the cue and the fusion of it with texture
TEXTURE_DERIVED = frozenset({"texture"})  # within TEXTURE_TOLERANCE (the chromatic moments' summation order)


def _without_floats(verdict: PadVerdict) -> PadVerdict:
    """Every field but the MiniFASNet- and texture-derived scores and evidence (decision, reason, thresholds, the
    other cues: all kept)."""
    skip = MINIFASNET_DERIVED | TEXTURE_DERIVED
    return replace(verdict, scores={k: v for k, v in verdict.scores.items() if k not in skip},
                   evidence={k: v for k, v in verdict.evidence.items() if k not in skip})


def test_verdicts_are_the_same_on_nuaa(bursts: list[Capture], minifasnet_models_dir: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """assess() of every burst, for both purposes: new and old verdicts equal field for field."""
    mf._forget_sessions()
    try:
        new = [assess(c, purpose=p, models_dir=minifasnet_models_dir) for c in bursts for p in Purpose]
        with monkeypatch.context() as m:
            _old_pad(m)
            before = [assess(c, purpose=p, models_dir=minifasnet_models_dir) for c in bursts for p in Purpose]
    finally:
        mf._forget_sessions()
    assert [_without_floats(v) for v in new] == [_without_floats(v) for v in before]  # bit for bit
    for n, b in zip(new, before, strict=True):  # MiniFASNet, texture and what is computed from them: within tolerance
        assert n.scores.keys() == b.scores.keys() and n.evidence.keys() == b.evidence.keys()
        for cues, tolerance in ((MINIFASNET_DERIVED, MINIFASNET_TOLERANCE), (TEXTURE_DERIVED, TEXTURE_TOLERANCE)):
            for cue in cues & n.scores.keys():
                assert abs(n.scores[cue] - b.scores[cue]) <= tolerance, cue
            for cue in cues & n.evidence.keys():
                _assert_evidence_close(n.evidence[cue], b.evidence[cue], tolerance)
    reasons = {v.reason for v in new}
    assert "bona_fide" in reasons and len(reasons) >= 2  # live passes, print does not: decisions are compared
    assert all({"minifasnet", "texture", "fused"} <= set(v.scores) for v in new if v.frames_usable)
