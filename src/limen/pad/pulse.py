"""Pulse (remote photoplethysmography): live skin carries a heartbeat, a mask, a print or a screen does not.

Signal: the mean colour of a skin region per frame (N×3, RGB).  Two classic
projections turn it into a pulse trace, both in numpy:

- POS (Wang, den Brinker, Stuijk, de Haan, "Algorithmic principles of remote
  PPG", IEEE TBME 2017): per 1.6 s window, temporally normalised colour
  projected on the plane orthogonal to skin tone, overlap-added;
- CHROM (de Haan & Jeanne, "Robust pulse-rate from chrominance-based rPPG",
  IEEE TBME 2013): two chrominance signals combined with a ratio of their
  standard deviations, per window, overlap-added.

The heart rate is the peak of the trace's spectrum (Welch) in the skin band
`PULSE_BAND_HZ` (0.7–3 Hz, 42–180 BPM); its SNR is the power within
±`PULSE_PEAK_HALF_WIDTH_HZ` of the peak and its first harmonic against the rest
of the band, in dB (de Haan & Jeanne's definition).

`PulseCue` judges a capture: a coherent pulse (SNR ≥ `PULSE_SNR_VERIFY`) is
bona fide evidence; no pulse is attack evidence only when the capture is long
(≥ `PULSE_MIN_SECONDS`) and stable enough to judge; otherwise the cue is
unavailable.  Real-skin figures come from `limen lab pulse` on rppg-skin; the
non-pulse side (masks, prints, screens) exists only in the **simulated** data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from limen import thresholds
from limen.pad.contract import CueResult, CueScore, CueUnavailable, Purpose
from limen.pad.faces import FaceView, PadSample


class _SciPySignal:
    """`scipy.signal`, imported at the first pulse actually measured: SciPy adds ~78 MB to `limen serve`,
    whose 5-frame bursts are too short for a pulse (`PULSE_MIN_SECONDS`)."""

    def __getattr__(self, name: str) -> Any:
        from scipy import signal

        return getattr(signal, name)


sps = _SciPySignal()


class Method(StrEnum):
    POS = "pos"
    CHROM = "chrom"


@dataclass(frozen=True)
class PulseEstimate:
    """A heart rate (BPM) from a trace, with the SNR (dB) of its spectral peak."""

    bpm: float
    snr_db: float
    seconds: float


def pos(rgb: np.ndarray, fps: float) -> np.ndarray:
    """POS pulse trace from N×3 mean skin colour (Wang et al. 2017), band-passed to the skin band."""
    x = _checked(rgb)
    n, w = len(x), _window(fps)
    h = np.zeros(n)
    proj = np.array([[0.0, 1.0, -1.0], [-2.0, 1.0, 1.0]])
    for start in range(0, n - w + 1):
        c = x[start : start + w]
        cn = c / c.mean(axis=0)
        s = cn @ proj.T
        p = s[:, 0] + (s[:, 0].std() / (s[:, 1].std() + 1e-12)) * s[:, 1]
        h[start : start + w] += p - p.mean()
    return _bandpass(h, fps)


def chrom(rgb: np.ndarray, fps: float) -> np.ndarray:
    """CHROM pulse trace from N×3 mean skin colour (de Haan & Jeanne 2013), overlap-added with a Hann window."""
    x = _checked(rgb)
    n, w = len(x), _window(fps)
    h = np.zeros(n)
    hann = np.hanning(w)
    step = max(1, w // 2)
    for start in range(0, n - w + 1, step):
        c = x[start : start + w]
        cn = c / c.mean(axis=0)
        xs = 3.0 * cn[:, 0] - 2.0 * cn[:, 1]
        ys = 1.5 * cn[:, 0] + cn[:, 1] - 1.5 * cn[:, 2]
        xf, yf = _bandpass(xs, fps), _bandpass(ys, fps)
        s = xf - (xf.std() / (yf.std() + 1e-12)) * yf
        h[start : start + w] += hann * (s - s.mean())
    return _bandpass(h, fps)


def estimate(trace: np.ndarray, fps: float) -> PulseEstimate:
    """Heart rate at the spectral peak in the skin band and the SNR of that peak (dB)."""
    n = len(trace)
    seg = min(n, int(round(thresholds.PULSE_WELCH_SECONDS * fps)))
    f, p = sps.welch(trace, fs=fps, nperseg=seg, noverlap=seg // 2, nfft=max(4096, seg), detrend="constant")
    lo, hi = thresholds.PULSE_BAND_HZ
    band = (f >= lo) & (f <= hi)
    if not band.any() or not np.isfinite(p[band]).all() or p[band].sum() <= 0:
        return PulseEstimate(float("nan"), float("-inf"), n / fps)
    peak = float(f[band][np.argmax(p[band])])
    half = thresholds.PULSE_PEAK_HALF_WIDTH_HZ
    signal_bins = band & ((np.abs(f - peak) <= half) | (np.abs(f - 2 * peak) <= 2 * half))
    noise = float(p[band & ~signal_bins].sum())
    snr = 10.0 * math.log10(float(p[signal_bins].sum()) / max(noise, 1e-30))
    return PulseEstimate(60.0 * peak, snr, n / fps)


def heart_rate(rgb: np.ndarray, fps: float, method: Method = Method.POS) -> PulseEstimate:
    """Heart rate of an N×3 skin-colour trace (at least `PULSE_MIN_SECONDS`)."""
    trace = pos(rgb, fps) if method is Method.POS else chrom(rgb, fps)
    return estimate(trace, fps)


def skin_means(view: FaceView) -> np.ndarray | None:
    """Mean RGB of the forehead and both cheeks of one face (from its 5 landmarks); None if they fall outside."""
    rgb = view.frame.rgb
    eyes = view.points[:4].mean(axis=0)
    nose = view.points[4]
    d = max(view.eye_distance, 1.0)
    down = nose - eyes
    centres = [eyes - 0.6 * down, nose + np.array([0.55 * d, -0.1 * d]), nose + np.array([-0.55 * d, -0.1 * d])]
    half = int(max(2, 0.18 * d))
    h, w = rgb.shape[:2]
    patches = []
    for cx, cy in centres:
        x0, y0 = int(cx) - half, int(cy) - half
        if x0 < 0 or y0 < 0 or x0 + 2 * half > w or y0 + 2 * half > h:
            return None
        patches.append(rgb[y0 : y0 + 2 * half, x0 : x0 + 2 * half].reshape(-1, 3))
    return np.concatenate(patches).astype(np.float64).mean(axis=0)


class PulseCue:
    """rPPG cue over every frame of a capture (POS; needs ≥ `PULSE_MIN_SECONDS` at ≥ `PULSE_MIN_FPS`)."""

    name = "pulse"

    def score(self, sample: PadSample, purpose: Purpose) -> CueResult:
        views = _every_frame(sample)
        if len(views) < 2:
            return CueUnavailable(self.name, "single_frame")
        if len({v.frame.device for v in views}) > 1:
            return CueUnavailable(self.name, "frames_from_different_devices")
        times = np.array([v.frame.t for v in views])
        seconds = float(times[-1] - times[0])
        if seconds < thresholds.PULSE_MIN_SECONDS:
            return CueUnavailable(self.name, f"capture_too_short ({seconds:.1f} s)")
        fps = (len(views) - 1) / seconds
        if fps < thresholds.PULSE_MIN_FPS or np.any(np.diff(times) <= 0):
            return CueUnavailable(self.name, "frame_rate_too_low_or_irregular")
        means = [skin_means(v) for v in views]
        if any(m is None for m in means):
            return CueUnavailable(self.name, "skin_region_outside_image")
        rgb = np.stack([m for m in means if m is not None])
        if np.any(rgb.min(axis=0) < 1.0):
            return CueUnavailable(self.name, "skin_region_too_dark")
        drift = float(np.abs(np.diff(rgb, axis=0)).max() / rgb.mean())
        if drift > thresholds.PULSE_MAX_STEP:
            return CueUnavailable(self.name, "unstable_capture")
        est = heart_rate(rgb, fps)
        cut = thresholds.PULSE_SNR_ENROL if purpose is Purpose.ENROL else thresholds.PULSE_SNR_VERIFY
        evidence = {"bpm": round(est.bpm, 1), "snr_db": round(est.snr_db, 2), "seconds": round(seconds, 2),
                    "fps": round(fps, 2)}
        return CueScore(self.name, est.snr_db - cut, 0.0, evidence)


def _every_frame(sample: PadSample) -> list[FaceView]:
    """A view of every capture frame (landmarks from the nearest analysed frame), or the analysed ones."""
    if sample.capture is None or not sample.faces or len(sample.capture.frames) <= len(sample.faces):
        return list(sample.faces)
    index = np.array([v.index for v in sample.faces], dtype=np.float64)
    out = []
    for i, frame in enumerate(sample.capture.frames):
        k = int(np.clip(np.searchsorted(index, i), 1, max(1, len(index) - 1)))
        a, b = sample.faces[max(0, k - 1)], sample.faces[min(k, len(index) - 1)]
        if frame.rgb.shape != a.frame.rgb.shape:
            return list(sample.faces)
        w = 0.0 if b.index == a.index else float(np.clip((i - a.index) / (b.index - a.index), 0.0, 1.0))
        points = (1 - w) * a.points + w * b.points  # landmarks follow the face between analysed frames
        out.append(FaceView(i, frame, a.box, points, a.crop))
    return out


def _checked(rgb: np.ndarray) -> np.ndarray:
    x = np.asarray(rgb, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3 or len(x) < 8 or not np.isfinite(x).all() or (x < 0).any():
        raise ValueError("a pulse trace needs N×3 non-negative, finite colour means")
    return x + 1.0  # a channel at 0 (very dark skin in a dim room) must not divide by zero


def _window(fps: float) -> int:
    return max(4, int(round(thresholds.PULSE_WINDOW_SECONDS * fps)))


def _bandpass(x: np.ndarray, fps: float) -> np.ndarray:
    lo, hi = thresholds.PULSE_BAND_HZ
    hi = min(hi, 0.45 * fps)
    b, a = sps.butter(3, [lo / (fps / 2), hi / (fps / 2)], btype="band")
    if len(x) <= 3 * max(len(a), len(b)):
        return x - x.mean()
    return np.asarray(sps.filtfilt(b, a, x), dtype=np.float64)
