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
from collections.abc import Sequence
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
    """POS pulse trace from N×3 mean skin colour (Wang et al. 2017), band-passed to the skin band.

    Every window of `PULSE_WINDOW_SECONDS` (one per frame) is temporally normalised, projected on the
    plane orthogonal to skin tone, tuned (α = σ₁/σ₂) and overlap-added; vectorised over the windows.
    """
    x = _checked(rgb)
    n, w = len(x), _window(fps)
    h = np.zeros(n)
    if n >= w:
        c = np.lib.stride_tricks.sliding_window_view(x, w, axis=0)  # (n-w+1, 3, w)
        cn = c / c.mean(axis=2, keepdims=True)
        s0 = cn[:, 1] - cn[:, 2]
        s1 = -2.0 * cn[:, 0] + cn[:, 1] + cn[:, 2]
        p = s0 + (s0.std(axis=1) / (s1.std(axis=1) + 1e-12))[:, None] * s1
        p -= p.mean(axis=1, keepdims=True)
        for k in range(w):  # overlap-add: window `start` adds its k-th sample to h[start + k]
            h[k : k + len(p)] += p[:, k]
    return _bandpass(h, fps)


def chrom(rgb: np.ndarray, fps: float) -> np.ndarray:
    """CHROM pulse trace from N×3 mean skin colour (de Haan & Jeanne 2013), overlap-added with a Hann window.

    Windows of `PULSE_WINDOW_SECONDS` at half-window steps, vectorised over the windows."""
    x = _checked(rgb)
    n, w = len(x), _window(fps)
    h = np.zeros(n)
    step = max(1, w // 2)
    if n >= w:
        c = np.lib.stride_tricks.sliding_window_view(x, w, axis=0)[::step]  # (m, 3, w)
        cn = c / c.mean(axis=2, keepdims=True)
        xf = _bandpass(3.0 * cn[:, 0] - 2.0 * cn[:, 1], fps)
        yf = _bandpass(1.5 * cn[:, 0] + cn[:, 1] - 1.5 * cn[:, 2], fps)
        sig = xf - (xf.std(axis=1) / (yf.std(axis=1) + 1e-12))[:, None] * yf
        sig = np.hanning(w) * (sig - sig.mean(axis=1, keepdims=True))
        for k, start in enumerate(range(0, n - w + 1, step)):
            h[start : start + w] += sig[k]
    return _bandpass(h, fps)


def spectrum(trace: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectrum of a pulse trace (`PULSE_WELCH_SECONDS` segments, half overlap, zero-padded)."""
    n = len(trace)
    seg = min(n, int(round(thresholds.PULSE_WELCH_SECONDS * fps)))
    f, p = sps.welch(trace, fs=fps, nperseg=seg, noverlap=seg // 2, nfft=max(4096, seg), detrend="constant")
    return np.asarray(f, dtype=np.float64), np.asarray(p, dtype=np.float64)


def estimate(trace: np.ndarray, fps: float) -> PulseEstimate:
    """Heart rate at the spectral peak in the skin band and the SNR of that peak (dB)."""
    f, p = spectrum(trace, fps)
    return _peak(f, p, len(trace) / fps)


def _peak(f: np.ndarray, p: np.ndarray, seconds: float) -> PulseEstimate:
    """The band's spectral peak, refined between bins (parabola through the log power of the peak and its two
    neighbours), and its SNR: power within ±`PULSE_PEAK_HALF_WIDTH_HZ` of the peak and its first harmonic
    against the rest of the band, in dB (de Haan & Jeanne 2013)."""
    lo, hi = thresholds.PULSE_BAND_HZ
    band = (f >= lo) & (f <= hi)
    if not band.any() or not np.isfinite(p[band]).all() or p[band].sum() <= 0:
        return PulseEstimate(float("nan"), float("-inf"), seconds)
    idx = np.flatnonzero(band)
    i = int(idx[np.argmax(p[band])])
    peak = float(f[i])
    if idx[0] < i < idx[-1] and min(p[i - 1], p[i], p[i + 1]) > 0:
        a, b, c = np.log(p[i - 1 : i + 2])
        denom = a - 2.0 * b + c
        if denom < 0:  # a true maximum: the vertex lies within half a bin
            peak += float(np.clip(0.5 * (a - c) / denom, -0.5, 0.5)) * float(f[1] - f[0])
    signal, noise = _powers(f, p, peak)
    snr = 10.0 * math.log10(max(signal, 1e-30) / max(noise, 1e-30))
    return PulseEstimate(60.0 * peak, snr, seconds)


def _powers(f: np.ndarray, p: np.ndarray, peak_hz: float) -> tuple[float, float]:
    """(signal, noise) power in the skin band: within ±`PULSE_PEAK_HALF_WIDTH_HZ` of the peak and its first
    harmonic, and the rest of the band."""
    lo, hi = thresholds.PULSE_BAND_HZ
    band = (f >= lo) & (f <= hi)
    if not math.isfinite(peak_hz):
        return float("nan"), float("nan")
    half = thresholds.PULSE_PEAK_HALF_WIDTH_HZ
    signal_bins = band & ((np.abs(f - peak_hz) <= half) | (np.abs(f - 2 * peak_hz) <= 2 * half))
    return float(p[signal_bins].sum()), float(p[band & ~signal_bins].sum())


def heart_rate(rgb: np.ndarray, fps: float, method: Method = Method.POS) -> PulseEstimate:
    """Heart rate of an N×3 skin-colour trace (at least `PULSE_MIN_SECONDS`)."""
    return estimate(_trace(rgb, fps, method), fps)


def heart_rate_regions(regions: Sequence[np.ndarray], fps: float, method: Method = Method.POS) -> PulseEstimate:
    """Heart rate of several skin regions of one face (each N×3), their pulse traces combined by SNR.

    One face has one heart rate.  First the rate every region agrees on: the peak of the regions' spectra,
    each scaled to unit power in the skin band and weighted by its own SNR.  Then maximum-ratio combining
    of the traces: each weighted by its pulse amplitude at that rate over its noise power (√signal / noise,
    from its own spectrum, as in `estimate`).  Regions that carry the same pulse with independent noise add
    up like a plain average; a region under a shadow, hair or a highlight, whose power at the common rate is
    only noise, counts little (SNR-weighted ROI combination: Kumar et al., "DistancePPG", 2015).  One region
    is the single-trace estimate.
    """
    if len(regions) == 0:
        raise ValueError("a pulse needs at least one skin region")
    traces = [_trace(r, fps, method) for r in regions]
    if len(traces) == 1:
        return estimate(traces[0], fps)
    spectra = [spectrum(t, fps) for t in traces]
    f = spectra[0][0]
    lo, hi = thresholds.PULSE_BAND_HZ
    band = (f >= lo) & (f <= hi)
    agreed = np.zeros_like(f)
    for _, p in spectra:
        power = float(p[band].sum())
        if np.isfinite(power) and power > 0:
            agreed += (10.0 ** (_peak(f, p, 0.0).snr_db / 10.0)) * p / power
    rate_hz = _peak(f, agreed, 0.0).bpm / 60.0
    combined = np.zeros_like(traces[0])
    for t, (_, p) in zip(traces, spectra, strict=True):
        signal, noise = _powers(f, p, rate_hz)
        if noise > 0 and np.isfinite(signal) and np.isfinite(noise):
            combined += (math.sqrt(signal) / noise) * t
    return estimate(combined, fps)


def shuffled_p(regions: np.ndarray | Sequence[np.ndarray], fps: float, method: Method = Method.POS,
               shuffles: int | None = None, seed: int = 0) -> float:
    """Permutation test of "this capture carries a coherent pulse": the share of `shuffles` random orders of
    the same frames whose peak SNR is at least the capture's own, counting the capture itself ((1 + k)/(1 + n)).

    `regions`: one N×3 trace, or several (one per skin region, combined as `heart_rate_regions`); a shuffle
    permutes the frames of every region alike.  Shuffling keeps every frame's colour and noise and destroys
    any rhythm, so the shuffles are the capture's own no-pulse reference whatever its noise level: a value
    ≤ `PULSE_COHERENT_P` says the rhythm is real (at that false-alarm rate), a larger one that the peak is
    what noise alone would give.
    """
    n = thresholds.PULSE_SHUFFLES if shuffles is None else shuffles
    if n < 1:
        raise ValueError("a permutation test needs at least one shuffle")
    traces = [np.asarray(regions, dtype=np.float64)] if isinstance(regions, np.ndarray) and regions.ndim == 2 \
        else [np.asarray(r, dtype=np.float64) for r in regions]
    own = heart_rate_regions(traces, fps, method).snr_db
    rng = np.random.default_rng(seed)
    beaten = 0
    for _ in range(n):
        order = rng.permutation(len(traces[0]))
        beaten += heart_rate_regions([t[order] for t in traces], fps, method).snr_db >= own
    return (1 + beaten) / (1 + n)


def heart_rate_trace(rgb: np.ndarray, fps: float, method: Method = Method.POS) -> np.ndarray:
    """The pulse trace (POS or CHROM, band-passed) of an N×3 skin-colour trace."""
    return pos(rgb, fps) if method is Method.POS else chrom(rgb, fps)


_trace = heart_rate_trace


def skin_regions(view: FaceView) -> np.ndarray | None:
    """Robust mean RGB of the forehead and both cheeks of one face (3×3, from its 5 landmarks); None if one
    falls outside the image.

    Within each square patch only the pixels whose luminance lies between the
    `PULSE_SKIN_LUMA_PERCENTILES` of the patch count: eyebrows, hair, nostrils and shadows below, specular
    highlights and clipped pixels above — the parts of a patch that carry no pulse and change most as the
    face moves.
    """
    rgb = view.frame.rgb
    eyes = view.points[:4].mean(axis=0)
    nose = view.points[4]
    d = max(view.eye_distance, 1.0)
    down = nose - eyes
    centres = [eyes - 0.6 * down, nose + np.array([0.55 * d, -0.1 * d]), nose + np.array([-0.55 * d, -0.1 * d])]
    half = int(max(2, 0.18 * d))
    h, w = rgb.shape[:2]
    out = np.empty((len(centres), 3))
    lo_pct, hi_pct = thresholds.PULSE_SKIN_LUMA_PERCENTILES
    for k, (cx, cy) in enumerate(centres):
        x0, y0 = int(cx) - half, int(cy) - half
        if x0 < 0 or y0 < 0 or x0 + 2 * half > w or y0 + 2 * half > h:
            return None
        px = rgb[y0 : y0 + 2 * half, x0 : x0 + 2 * half].reshape(-1, 3).astype(np.float64)
        out[k] = skin_mean(px, lo_pct, hi_pct)
    return out


def skin_mean(pixels: np.ndarray, lo_pct: float, hi_pct: float) -> np.ndarray:
    """Mean RGB of the pixels (M×3) whose luminance (R+G+B) lies between two of its percentiles."""
    lum = pixels.sum(axis=1)
    lo, hi = np.percentile(lum, [lo_pct, hi_pct])
    keep = (lum >= lo) & (lum <= hi)
    return np.asarray(pixels[keep].mean(axis=0) if keep.any() else pixels.mean(axis=0), dtype=np.float64)


def skin_means(view: FaceView) -> np.ndarray | None:
    """Mean of `skin_regions` (one RGB per frame), None if a region falls outside the image."""
    regions = skin_regions(view)
    return None if regions is None else np.asarray(regions.mean(axis=0), dtype=np.float64)


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
        regions = [skin_regions(v) for v in views]
        if any(r is None for r in regions):
            return CueUnavailable(self.name, "skin_region_outside_image")
        per_frame = np.stack([r for r in regions if r is not None])  # frames × regions × RGB
        rgb = per_frame.mean(axis=1)
        if np.any(rgb.min(axis=0) < 1.0):
            return CueUnavailable(self.name, "skin_region_too_dark")
        drift = float(np.abs(np.diff(rgb, axis=0)).max() / rgb.mean())
        if drift > thresholds.PULSE_MAX_STEP:
            return CueUnavailable(self.name, "unstable_capture")
        traces = [per_frame[:, k] for k in range(per_frame.shape[1])]
        est = heart_rate_regions(traces, fps)
        cut = thresholds.PULSE_SNR_ENROL if purpose is Purpose.ENROL else thresholds.PULSE_SNR_VERIFY
        p = shuffled_p(traces, fps)
        coherent = p <= thresholds.PULSE_COHERENT_P
        evidence = {"bpm": round(est.bpm, 1), "snr_db": round(est.snr_db, 2), "seconds": round(seconds, 2),
                    "fps": round(fps, 2), "p_shuffled": round(p, 3), "coherent": float(coherent)}
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
    """Zero-phase band-pass to the skin band along the last axis (mean removal alone if too short to filter)."""
    lo, hi = thresholds.PULSE_BAND_HZ
    hi = min(hi, 0.45 * fps)
    b, a = sps.butter(3, [lo / (fps / 2), hi / (fps / 2)], btype="band")
    if x.shape[-1] <= 3 * max(len(a), len(b)):
        return np.asarray(x - x.mean(axis=-1, keepdims=True), dtype=np.float64)
    return np.asarray(sps.filtfilt(b, a, x, axis=-1), dtype=np.float64)
