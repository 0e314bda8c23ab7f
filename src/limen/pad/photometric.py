"""The flicker cue: a screen's light changes from frame to frame in bands; a lit face does not.

A display's backlight is pulse-width modulated (200–2000 Hz) and the camera's
rolling shutter reads rows at different times, so a replayed face carries
horizontal bands whose phase drifts from frame to frame.  A real face under
room light changes only slowly (exposure, a turn of the head).

For each pair of consecutive usable frames, the log-luminance of each row of
the face region (face box ± half a side, so the medium around the face counts
too) is compared; the difference is detrended (a moving average over a third
of the face removes shading and motion) and what remains is measured: its RMS
and the share of its spectrum in the strongest frequency (a band pattern
concentrates there, noise does not).  Score (log-odds of bona fide, higher =
steadier light): `-log(banding / PAD_FLICKER_BANDING)`, median over pairs.
Fewer than two usable frames, or frames of different sizes, → unavailable.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from limen import thresholds
from limen.pad.contract import CueResult, CueScore, CueUnavailable, Purpose
from limen.pad.faces import FaceView, PadSample


def _rows(view: FaceView, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    grey = cv2.cvtColor(np.ascontiguousarray(view.frame.rgb[top:bottom, left:right]), cv2.COLOR_RGB2GRAY)
    return np.asarray(np.log(grey.astype(np.float64).mean(axis=1) + 1.0))


def pair_banding(a: FaceView, b: FaceView) -> float | None:
    """Periodic row-wise change of light between two frames (RMS × peak share of its spectrum); None if unusable."""
    if a.frame.rgb.shape != b.frame.rgb.shape:
        return None
    h, w = a.frame.rgb.shape[:2]
    side = max(a.box.width, a.box.height)
    top, bottom = max(0, a.box.top - side // 2), min(h, a.box.bottom + side // 2)
    left, right = max(0, a.box.left - side // 2), min(w, a.box.right + side // 2)
    if bottom - top < 32 or right - left < 16:
        return None
    diff = _rows(b, top, bottom, left, right) - _rows(a, top, bottom, left, right)
    window = max(3, side // 3) | 1
    trend = np.convolve(np.pad(diff, window // 2, mode="edge"), np.ones(window) / window, mode="valid")
    rest = diff - trend
    spectrum = np.abs(np.fft.rfft(rest * np.hanning(rest.size))) ** 2
    band = spectrum[2:]  # no DC, no one-cycle ramps
    if band.size < 4 or band.sum() <= 0:
        return None
    peak_share = float(band.max() / band.sum())
    return float(np.sqrt(np.mean(rest**2))) * peak_share


class FlickerCue:
    """Frame-to-frame photometric consistency (screen banding / flicker) over consecutive usable frames."""

    name = "flicker"

    def score(self, sample: PadSample, purpose: Purpose) -> CueResult:
        if len(sample.faces) < 2:
            return CueUnavailable(self.name, "single_frame")
        pairs = [pair_banding(a, b) for a, b in zip(sample.faces[:-1], sample.faces[1:], strict=True)]
        measured = [p for p in pairs if p is not None]
        if not measured:
            return CueUnavailable(self.name, "unmeasurable")
        banding = float(np.median(measured))
        score = -math.log(max(banding, 1e-9) / thresholds.PAD_FLICKER_BANDING)
        return CueScore(self.name, score, 0.0, {"pairs": float(len(measured)), "banding": round(banding, 6)})
