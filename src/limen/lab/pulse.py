"""Pulse (rPPG) on real skin: heart rate of each rppg-skin video against its ground truth.

Layout expected (``../shared/data/rppg-skin``): ``<group>/videoN_<region>.avi``
(each frame is a skin region only) and ``<group>_GT.csv`` (``videoN,bpm``).
The skin signal is the robust mean colour of every frame (pixels between the
`PULSE_SKIN_LUMA_PERCENTILES` of the frame's luminance, as the door's cue);
POS and CHROM estimate the heart rate over the whole video (Welch, peak refined
between bins).  Reported per method: mean absolute error and RMSE (BPM), share
within 5 BPM, Pearson r, per region (forehead / cheek) and per group, and how
many videos carry a coherent pulse at all (a permutation test against the
video's own shuffled frames, `pulse.shuffled_p`; no ground truth involved).

Two controls say whether a figure measures pulse at all:

- **shuffled frames** (`evaluate(..., shuffled=True)`): the same videos with
  their frame order permuted (seeded per video), which keeps every frame's
  colour and noise and destroys any pulse.  A method that scores as well on
  shuffled frames as on the videos is reading its own band-pass shape, not a
  heartbeat.
- **no video** (`no_video_baseline`): predict each video's heart rate as the
  mean ground truth of the *other* videos.  On a set of resting rates (rppg-skin:
  66–85 BPM) this alone is within a few BPM; an MAE target is informative only
  below it.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from limen import thresholds
from limen.errors import BadImage, BadRequest
from limen.pad import pulse


@dataclass(frozen=True)
class PulseResult:
    """One video's estimate with its ground truth."""

    group: str
    video: str
    region: str
    seconds: float
    truth_bpm: float
    method: str
    bpm: float
    snr_db: float
    p_shuffled: float = float("nan")  # permutation test against the video's own shuffled frames

    @property
    def error(self) -> float:
        return abs(self.bpm - self.truth_bpm)


@dataclass(frozen=True)
class PulseSummary:
    """MAE, RMSE, share within 5 BPM and Pearson r over one slice of the results; `coherent` videos passed
    the permutation test (a pulse distinguishable from their own shuffled frames)."""

    method: str
    slice: str
    videos: int
    mae: float
    within_5: float
    rmse: float = float("nan")
    pearson_r: float = float("nan")
    coherent: int = 0


def read_truth(folder: Path) -> dict[tuple[str, str], float]:
    """{(group, videoN): bpm} from every ``<group>_GT.csv`` in `folder`."""
    truth: dict[tuple[str, str], float] = {}
    for path in sorted(folder.glob("*_GT.csv")):
        group = path.name.removesuffix("_GT.csv")
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.reader(fh):
                if len(row) >= 2 and row[0].strip().startswith("video"):
                    truth[(group, row[0].strip())] = float(row[1])
    if not truth:
        raise BadRequest("folder", f"{folder}: no <group>_GT.csv with videoN,bpm rows")
    return truth


TRACE_VERSION = "robust-1"  # the cache key changes with the per-frame skin statistic


def skin_trace(video: Path, cache: Path | None = None) -> tuple[np.ndarray, float]:
    """(N×3 robust mean RGB per frame, fps) of a skin-region video; cached under `cache` by file identity.

    Per frame, the pixels whose luminance lies between the `PULSE_SKIN_LUMA_PERCENTILES` of that frame
    (`pulse.skin_mean`): dark hair, shadows and highlights at the crop's edges do not count.
    """
    stat = video.stat()
    key = hashlib.sha256(f"{TRACE_VERSION}:{video.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    cached = cache / f"{key[:24]}.npz" if cache else None
    if cached is not None and cached.exists():
        with np.load(cached) as z:
            return z["rgb"], float(z["fps"])
    lo, hi = thresholds.PULSE_SKIN_LUMA_PERCENTILES
    cap = cv2.VideoCapture(str(video))
    try:
        if not cap.isOpened():
            raise BadImage(video, "cannot open video")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        means = []
        while True:
            ok, bgr = cap.read()
            if not ok or bgr is None:
                break
            means.append(pulse.skin_mean(bgr.reshape(-1, 3)[:, ::-1].astype(np.float64), lo, hi))
    finally:
        cap.release()
    if len(means) < 2 or fps <= 0:
        raise BadImage(video, "video holds too few frames or no frame rate")
    rgb = np.asarray(means, dtype=np.float64)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cached, rgb=rgb, fps=fps)
    return rgb, fps


def evaluate(folder: Path, cache: Path | None = None, shuffled: bool = False,
             permutation_test: bool = False) -> list[PulseResult]:
    """Estimate every video under `folder` with POS and CHROM (its frames in a seeded random order if `shuffled`);
    with `permutation_test`, also each estimate's p against the video's own shuffled frames."""
    truth = read_truth(folder)
    results: list[PulseResult] = []
    for video in sorted(folder.glob("*/*.avi")):
        group, stem = video.parent.name, video.stem
        name, _, region = stem.partition("_")
        if (group, name) not in truth:
            continue
        rgb, fps = skin_trace(video, cache)
        if shuffled:
            rgb = rgb[_rng_for(group, stem).permutation(len(rgb))]
        for method in pulse.Method:
            est = pulse.heart_rate(rgb, fps, method)
            p = pulse.shuffled_p(rgb, fps, method, seed=_seed(group, stem)) if permutation_test else float("nan")
            results.append(PulseResult(group, name, _region(region), len(rgb) / fps, truth[(group, name)],
                                       method.value, est.bpm, est.snr_db, p))
    if not results:
        raise BadRequest("folder", f"{folder}: no <group>/videoN_<region>.avi matching the ground truth")
    return results


def summarise(results: list[PulseResult]) -> list[PulseSummary]:
    """Per method: all videos, each region, each group."""
    out: list[PulseSummary] = []
    for method in sorted({r.method for r in results}):
        mine = [r for r in results if r.method == method]
        slices: list[tuple[str, list[PulseResult]]] = [("all", mine)]
        slices += [(f"region={x}", [r for r in mine if r.region == x]) for x in sorted({r.region for r in mine})]
        slices += [(f"group={x}", [r for r in mine if r.group == x]) for x in sorted({r.group for r in mine})]
        for name, rows in slices:
            out.append(_summary(method, name, rows))
    return out


def _summary(method: str, name: str, rows: list[PulseResult]) -> PulseSummary:
    errors = np.array([r.error for r in rows])
    est, truth = np.array([r.bpm for r in rows]), np.array([r.truth_bpm for r in rows])
    r = float(np.corrcoef(est, truth)[0, 1]) if len(rows) > 2 and est.std() > 0 and truth.std() > 0 else float("nan")
    coherent = sum(1 for x in rows if x.p_shuffled <= thresholds.PULSE_COHERENT_P)
    return PulseSummary(method, name, len(rows), float(errors.mean()), float((errors <= 5.0).mean()),
                        float(np.sqrt((errors**2).mean())), r, coherent)


def no_video_baseline(results: list[PulseResult]) -> list[PulseSummary]:
    """MAE of guessing each video's rate as the mean truth of the other videos (leave-one-out), per slice."""
    videos = {(r.group, r.video): r for r in results}  # one row per video, whatever the method
    if len(videos) < 2:
        raise BadRequest("results", "a leave-one-out baseline needs at least two videos")
    truths = np.array([r.truth_bpm for r in videos.values()])
    guesses = (truths.sum() - truths) / (len(truths) - 1)
    rows = [PulseResult(r.group, r.video, r.region, r.seconds, r.truth_bpm, "no-video", float(g), float("nan"))
            for r, g in zip(videos.values(), guesses, strict=True)]
    return summarise(rows)


@dataclass(frozen=True)
class TruthContrast:
    """Does a video carry power at its ground-truth rate?  `z`: the log power at the truth (±0.05 Hz), in
    standard deviations of the log power over the skin band; `z_shuffled`: the same for the video's own
    shuffled frames (mean of `shuffles`).  A pulse at the truth gives z − z_shuffled well above 0; the
    pipeline's own spectral shape cancels in the difference."""

    group: str
    video: str
    method: str
    z: float
    z_shuffled: float


def truth_contrast(folder: Path, cache: Path | None = None, shuffles: int = 5) -> list[TruthContrast]:
    """`TruthContrast` of every video under `folder` with POS and CHROM: a control of the data, not of the
    estimator (it reads the ground truth)."""
    truth = read_truth(folder)
    out: list[TruthContrast] = []
    for video in sorted(folder.glob("*/*.avi")):
        group, stem = video.parent.name, video.stem
        name = stem.partition("_")[0]
        if (group, name) not in truth:
            continue
        rgb, fps = skin_trace(video, cache)
        hz = truth[(group, name)] / 60.0
        for method in pulse.Method:
            rng = _rng_for(group, stem)
            own = _z_at(pulse.heart_rate_trace(rgb, fps, method), fps, hz)
            null = [_z_at(pulse.heart_rate_trace(rgb[rng.permutation(len(rgb))], fps, method), fps, hz)
                    for _ in range(shuffles)]
            out.append(TruthContrast(group, name, method.value, own, float(np.mean(null))))
    return out


def _z_at(trace: np.ndarray, fps: float, hz: float) -> float:
    f, p = pulse.spectrum(trace, fps)
    lo, hi = thresholds.PULSE_BAND_HZ
    band = (f >= lo) & (f <= hi)
    logp = np.log(np.maximum(p[band], 1e-300))
    width = max(1, int(round(0.1 / float(f[1] - f[0])))) | 1  # 0.1 Hz of bins, odd
    smooth = np.convolve(logp, np.ones(width) / width, mode="same")
    i = int(np.argmin(np.abs(f[band] - hz)))
    return float((smooth[i] - smooth.mean()) / (smooth.std() + 1e-12))


def _seed(group: str, stem: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{group}/{stem}".encode()).digest()[:8], "big")


def _rng_for(group: str, stem: str) -> np.random.Generator:
    return np.random.default_rng(_seed(group, stem))


def _region(raw: str) -> str:
    return "cheek" if "cheek" in raw else raw or "unknown"
