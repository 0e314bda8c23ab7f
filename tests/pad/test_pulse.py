"""Pulse (rPPG): POS and CHROM recover a known heart rate; no pulse, too short or unstable → no pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from limen import thresholds
from limen.bio.face.detect import Box
from limen.capture import Frame
from limen.lab import pulse as lab_pulse
from limen.pad import pulse
from limen.pad.contract import CueScore, CueUnavailable, Purpose
from limen.pad.faces import FaceView, PadSample
from tests.conftest import shared

SKIN = np.array([170.0, 120.0, 95.0])
# Relative pulsatile strength per channel (green strongest; de Haan & Jeanne 2013, Table 1 order of magnitude)
PULSATILE = np.array([0.33, 0.77, 0.53])


def trace(bpm: float | None, seconds: float = 12.0, fps: float = 30.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fps)) / fps
    rgb = np.tile(SKIN, (len(t), 1)) * (1.0 + 0.002 * np.sin(2 * np.pi * 0.15 * t))[:, None]  # slow light drift
    if bpm is not None:
        rgb += np.outer(np.sin(2 * np.pi * bpm / 60.0 * t), SKIN * PULSATILE * 0.004)
    return rgb + rng.normal(0, 0.15, rgb.shape)


@pytest.mark.parametrize("method", list(pulse.Method))
@pytest.mark.parametrize("bpm", [55.0, 72.0, 110.0])
def test_a_known_heart_rate_is_recovered(method: pulse.Method, bpm: float) -> None:
    est = pulse.heart_rate(trace(bpm), 30.0, method)
    assert est.bpm == pytest.approx(bpm, abs=3.0)


@pytest.mark.parametrize("method", list(pulse.Method))
def test_no_pulse_has_a_much_weaker_peak(method: pulse.Method) -> None:
    live = pulse.heart_rate(trace(72.0), 30.0, method)
    flat = pulse.heart_rate(trace(None), 30.0, method)
    assert live.snr_db > flat.snr_db + 6.0


def test_a_trace_that_is_not_colour_is_refused() -> None:
    with pytest.raises(ValueError):
        pulse.pos(np.ones((100, 2)), 30.0)
    with pytest.raises(ValueError):
        pulse.pos(np.full((100, 3), np.nan), 30.0)


def _sample(rgb_means: np.ndarray, fps: float = 30.0) -> PadSample:
    points = np.array([[60, 80], [90, 80], [170, 80], [140, 80], [115, 140]], dtype=np.float64)
    views = []
    for i, m in enumerate(rgb_means):
        img = np.empty((240, 240, 3), np.uint8)
        img[:] = np.clip(np.round(m), 0, 255).astype(np.uint8)
        views.append(FaceView(i, Frame(rgb=img, t=i / fps), Box(20, 20, 220, 220), points, img[20:220, 20:220]))
    return PadSample(tuple(views), analysed=len(views))


def test_the_cue_needs_three_seconds() -> None:
    result = pulse.PulseCue().score(_sample(trace(72.0, seconds=2.0)), Purpose.VERIFY)
    assert isinstance(result, CueUnavailable) and "short" in result.reason


def test_the_cue_refuses_to_judge_an_unstable_capture() -> None:
    means = trace(72.0, seconds=5.0)
    means[60:] *= 0.7  # the light jumps
    result = pulse.PulseCue().score(_sample(means), Purpose.VERIFY)
    assert isinstance(result, CueUnavailable) and result.reason == "unstable_capture"


def test_the_cue_scores_a_strong_pulse_above_no_pulse() -> None:
    # Quantised to 8 bits, as a camera would: the pulse must survive it.
    big = SKIN * PULSATILE * 0.02
    t = np.arange(150) / 30.0
    live = np.tile(SKIN, (150, 1)) + np.outer(np.sin(2 * np.pi * 1.2 * t), big)
    still = np.tile(SKIN, (150, 1)) + np.random.default_rng(1).normal(0, 0.4, (150, 3))
    a = pulse.PulseCue().score(_sample(live), Purpose.VERIFY)
    b = pulse.PulseCue().score(_sample(still), Purpose.VERIFY)
    assert isinstance(a, CueScore) and isinstance(b, CueScore)
    assert a.evidence["bpm"] == pytest.approx(72.0, abs=3.0)
    assert a.score > b.score and not a.says_attack


@pytest.mark.shared
def test_real_skin_videos_are_read_whole_at_their_frame_rate(tmp_path: Path) -> None:
    # One estimate on one rppg-skin clip is not asserted: the clips carry no pulse distinguishable from their
    # own shuffled frames (docs/pad-sensors.md), so any single hit or miss is chance.
    import cv2

    video = shared("rppg-skin") / "India" / "video10_forehead.avi"
    rgb, fps = lab_pulse.skin_trace(video, tmp_path)
    cap = cv2.VideoCapture(str(video))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert fps == pytest.approx(15.0) and rgb.shape == (frames, 3) and np.isfinite(rgb).all()
    assert 0.0 < pulse.shuffled_p(rgb, fps, shuffles=4) <= 1.0


def _skin_video(path: Path, bpm: float, seconds: float = 12.0, fps: float = 15.0) -> None:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (32, 32))
    rng = np.random.default_rng(0)
    for i in range(int(seconds * fps)):
        rgb = SKIN * (1 + 0.01 * PULSATILE * np.sin(2 * np.pi * bpm / 60 * i / fps))
        frame = np.clip(rgb[None, None, ::-1] + rng.normal(0, 2, (32, 32, 3)), 0, 255).astype(np.uint8)
        writer.write(frame)
    writer.release()


def test_lab_pulse_reports_per_region_and_group(tmp_path: Path) -> None:
    sets = {"A": [("video1_forehead", 66.0), ("video2_leftcheek", 90.0)], "B": [("video1_forehead", 75.0)]}
    for group, videos in sets.items():
        (tmp_path / group).mkdir()
        for name, bpm in videos:
            _skin_video(tmp_path / group / f"{name}.avi", bpm)
        rows = "\n".join(f"{n.split('_')[0]},{b}" for n, b in videos)
        (tmp_path / f"{group}_GT.csv").write_text(f"\ufeffSubject ,Heart_Rate(BPM) \n{rows}\n", encoding="utf-8")
    results = lab_pulse.evaluate(tmp_path, tmp_path / "cache")
    assert len(results) == 3 * len(pulse.Method)
    summary = {(s.method, s.slice): s for s in lab_pulse.summarise(results)}
    assert summary[("pos", "all")].videos == 3 and summary[("pos", "all")].mae < 3.0
    assert {("pos", "region=cheek"), ("pos", "region=forehead"), ("pos", "group=A"), ("pos", "group=B")} <= set(summary)
    again = lab_pulse.evaluate(tmp_path, tmp_path / "cache")  # from the cache
    assert [r.bpm for r in again] == [r.bpm for r in results]


def _skin_set(folder: Path, sets: dict[str, list[tuple[str, float]]]) -> None:
    for group, videos in sets.items():
        (folder / group).mkdir()
        for name, bpm in videos:
            _skin_video(folder / group / f"{name}.avi", bpm)
        rows = "\n".join(f"{n.split('_')[0]},{b}" for n, b in videos)
        (folder / f"{group}_GT.csv").write_text(f"\ufeffSubject ,Heart_Rate(BPM) \n{rows}\n", encoding="utf-8")


def test_shuffled_frames_lose_the_pulse_the_videos_carry(tmp_path: Path) -> None:
    sets = {"A": [("video1_forehead", 66.0), ("video2_leftcheek", 90.0)], "B": [("video1_forehead", 75.0)]}
    _skin_set(tmp_path, sets)
    real = {(s.method, s.slice): s for s in lab_pulse.summarise(lab_pulse.evaluate(tmp_path, tmp_path / "c"))}
    shuffled_results = lab_pulse.evaluate(tmp_path, tmp_path / "c", shuffled=True)
    shuffled = {(s.method, s.slice): s for s in lab_pulse.summarise(shuffled_results)}
    for method in pulse.Method:
        assert real[(method.value, "all")].mae < 3.0
        assert shuffled[(method.value, "all")].mae > 5.0
    again = lab_pulse.evaluate(tmp_path, tmp_path / "c", shuffled=True)  # the permutation is seeded per video
    assert [r.bpm for r in again] == [r.bpm for r in shuffled_results]


def test_the_no_video_baseline_guesses_the_mean_of_the_other_videos() -> None:
    truths = {"video1": 60.0, "video2": 80.0, "video3": 100.0}
    results = [lab_pulse.PulseResult("A", v, "forehead", 30.0, t, m.value, t, 0.0)
               for v, t in truths.items() for m in pulse.Method]
    (overall,) = [s for s in lab_pulse.no_video_baseline(results) if s.slice == "all"]
    # guesses 90, 80, 70 → errors 30, 0, 30
    assert overall.videos == 3 and overall.mae == pytest.approx(20.0) and overall.within_5 == pytest.approx(1 / 3)


def test_the_summary_has_rmse_pearson_r_and_the_coherent_count() -> None:
    cases = [(60.0, 62.0, 0.05), (70.0, 66.0, 0.5), (80.0, 83.0, 0.05), (90.0, 90.0, 1.0)]  # truth, estimate, p
    rows = [lab_pulse.PulseResult("A", f"video{i}", "forehead", 30.0, t, "pos", e, 0.0, p)
            for i, (t, e, p) in enumerate(cases)]
    (overall,) = [s for s in lab_pulse.summarise(rows) if s.slice == "all"]
    errors = np.array([2.0, 4.0, 3.0, 0.0])
    assert overall.mae == pytest.approx(errors.mean())
    assert overall.rmse == pytest.approx(np.sqrt((errors**2).mean()))
    assert overall.pearson_r == pytest.approx(np.corrcoef([62, 66, 83, 90], [60, 70, 80, 90])[0, 1])
    assert overall.coherent == 2 and overall.within_5 == pytest.approx(1.0)


# ---------------------------------------------------------------- method: known pulse, noise, regions, no pulse


def noisy(bpm: float | None, seconds: float, fps: float, noise: float, seed: int, amplitude: float = 0.004,
          drift: float = 0.02) -> np.ndarray:
    """Skin colour with a pulse (relative `amplitude` in green), white sensor noise (DN) and a slow random drift."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fps)
    walk = np.cumsum(rng.normal(0, 1, n))
    walk = drift * (walk - walk.mean()) / (np.abs(walk).max() + 1e-9)  # light / posture drift, ±2 %
    rgb = np.tile(SKIN, (n, 1)) * (1.0 + walk)[:, None]
    if bpm is not None:
        phase = 2 * np.pi * np.cumsum(np.full(n, bpm / 60.0)) / fps + rng.uniform(0, 2 * np.pi)
        wave = np.sin(phase) + 0.3 * np.sin(2 * phase + 1.0)  # fundamental and a first harmonic
        rgb += np.outer(wave, SKIN * PULSATILE * amplitude)
    return rgb + rng.normal(0, noise, rgb.shape)


@pytest.mark.parametrize("method", list(pulse.Method))
@pytest.mark.parametrize(("bpm", "fps"), [(52.3, 15.0), (71.3, 30.0), (88.8, 15.0), (126.4, 30.0)])
def test_a_known_rate_in_noise_is_recovered_within_2_bpm(method: pulse.Method, bpm: float, fps: float) -> None:
    for seed in range(3):
        est = pulse.heart_rate(noisy(bpm, 20.0, fps, noise=0.2, seed=seed), fps, method)
        assert est.bpm == pytest.approx(bpm, abs=2.0), (seed, est)


def test_the_peak_is_refined_between_spectral_bins() -> None:
    # 40 s at 30 fps: Welch bins of 30/4096 Hz (0.44 BPM); the refined peak is much closer than half a bin.
    errors = [abs(pulse.heart_rate(noisy(bpm, 40.0, 30.0, noise=0.0, seed=1, drift=0.0), 30.0).bpm - bpm)
              for bpm in (60.1, 67.3, 75.55, 83.9)]
    assert max(errors) < 0.1, errors


@pytest.mark.parametrize("method", list(pulse.Method))
def test_no_pulse_is_reported_as_no_coherent_pulse(method: pulse.Method) -> None:
    for seed in range(4):
        flat = noisy(None, 12.0, 15.0, noise=0.3, seed=seed)
        assert pulse.shuffled_p(flat, 15.0, method, seed=seed) > thresholds.PULSE_COHERENT_P
        live = noisy(72.0, 12.0, 15.0, noise=0.1, seed=seed)
        assert pulse.shuffled_p(live, 15.0, method, seed=seed) <= thresholds.PULSE_COHERENT_P


def test_a_noise_only_trace_is_rarely_called_coherent() -> None:
    # The permutation test's false-alarm rate is its p threshold (≈ 5 %), whatever the noise level.
    ps = [pulse.shuffled_p(noisy(None, 6.0, 15.0, noise=n, seed=s), 15.0, seed=s)
          for s in range(40) for n in (0.3, 3.0)]
    assert np.mean(np.array(ps) <= thresholds.PULSE_COHERENT_P) <= 0.15


def test_regions_are_combined_by_snr_a_noisy_region_does_not_drown_a_clean_one() -> None:
    clean = noisy(66.0, 8.0, 15.0, noise=0.2, seed=1)
    rng = np.random.default_rng(2)
    shadowed = [noisy(66.0, 8.0, 15.0, noise=0.2, seed=s) + rng.normal(0, 4.0, clean.shape) for s in (3, 4)]
    fused = pulse.heart_rate_regions([clean, *shadowed], 15.0)
    plain = pulse.heart_rate(np.mean([clean, *shadowed], axis=0), 15.0)
    assert fused.bpm == pytest.approx(66.0, abs=2.0)
    assert fused.snr_db > plain.snr_db + 2.5


def test_equal_regions_add_up_like_an_average() -> None:
    for trial in range(3):
        regions = [noisy(80.0, 8.0, 15.0, noise=0.3, seed=s + 10 * trial) for s in range(3)]
        fused = pulse.heart_rate_regions(regions, 15.0)
        plain = pulse.heart_rate(np.mean(regions, axis=0), 15.0)
        assert fused.snr_db >= plain.snr_db - 0.5
        assert abs(fused.bpm - 80.0) <= max(2.0, abs(plain.bpm - 80.0))


def test_the_skin_mean_ignores_dark_hair_and_highlights() -> None:
    rng = np.random.default_rng(0)
    skin = SKIN + rng.normal(0, 2.0, (400, 3))
    for share in (0.0, 0.05):
        px = skin.copy()
        k = int(share * len(px))
        px[:k] = [20.0, 15.0, 12.0]      # hair
        px[k : 2 * k] = [255.0, 255.0, 255.0]  # highlight
        lo, hi = thresholds.PULSE_SKIN_LUMA_PERCENTILES
        assert pulse.skin_mean(px, lo, hi) == pytest.approx(SKIN, abs=1.0)
    assert not np.allclose(px.mean(axis=0), SKIN, atol=1.0)  # the plain mean is pulled away


def test_the_cue_reports_whether_the_pulse_is_coherent() -> None:
    t = np.arange(150) / 30.0
    live = np.tile(SKIN, (150, 1)) + np.outer(np.sin(2 * np.pi * 1.2 * t), SKIN * PULSATILE * 0.02)
    still = np.tile(SKIN, (150, 1)) + np.random.default_rng(1).normal(0, 0.4, (150, 3))
    a = pulse.PulseCue().score(_sample(live), Purpose.VERIFY)
    b = pulse.PulseCue().score(_sample(still), Purpose.VERIFY)
    assert isinstance(a, CueScore) and isinstance(b, CueScore)
    assert a.evidence["coherent"] == 1.0 and a.evidence["p_shuffled"] <= thresholds.PULSE_COHERENT_P
    assert b.evidence["coherent"] == 0.0


def test_the_truth_contrast_sees_a_pulse_at_the_label_and_none_at_a_wrong_label(tmp_path: Path) -> None:
    _skin_set(tmp_path, {"A": [("video1_forehead", 66.0), ("video2_leftcheek", 90.0)]})
    (tmp_path / "A_GT.csv").write_text("Subject ,Heart_Rate(BPM) \nvideo1,66.0\nvideo2,140.0\n", encoding="utf-8")
    rows = {(c.video, c.method): c for c in lab_pulse.truth_contrast(tmp_path, tmp_path / "c", shuffles=3)}
    for method in pulse.Method:
        right, wrong = rows[("video1", method.value)], rows[("video2", method.value)]
        assert right.z - right.z_shuffled > 1.5
        assert wrong.z - wrong.z_shuffled < 0.5  # nothing at 140 BPM (a peak elsewhere lowers it, if anything)


def test_limen_lab_pulse_prints_rmse_r_and_coherence(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    sets = {"A": [("video1_forehead", 66.0), ("video2_leftcheek", 90.0)], "B": [("video1_forehead", 75.0)]}
    _skin_set(tmp_path, sets)
    env = {**os.environ, "LIMEN_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run([sys.executable, "-m", "limen", "--json", "lab", "pulse", str(tmp_path),
                          "--cache", str(tmp_path / "c")], capture_output=True, text=True, env=env, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    rows = {(r["input"], r["method"], r["slice"]): r for r in data["summary"]}
    pos_all = rows[("videos", "pos", "all")]
    assert pos_all["videos"] == 3 and pos_all["mae_bpm"] < 3.0 and pos_all["rmse_bpm"] >= pos_all["mae_bpm"]
    assert pos_all["pearson_r"] > 0.9 and pos_all["coherent"] == 3  # the synthetic clips carry their pulse
    assert {"p_shuffled", "snr_db", "bpm"} <= set(data["videos"][0])
