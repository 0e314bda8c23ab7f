"""Pulse (rPPG): POS and CHROM recover a known heart rate; no pulse, too short or unstable → no pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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
def test_real_skin_a_clean_recording_is_within_5_bpm(tmp_path: Path) -> None:
    folder = shared("rppg-skin")
    truth = lab_pulse.read_truth(folder)
    rgb, fps = lab_pulse.skin_trace(folder / "India" / "video10_forehead.avi", tmp_path)
    est = pulse.heart_rate(rgb, fps, pulse.Method.POS)
    assert abs(est.bpm - truth[("India", "video10")]) <= 5.0


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
