"""Frequency features of a face crop: the radial power spectrum and its high-frequency peaks.

Recapture leaves its mark in the spectrum: a print loses high frequencies
(printer dots, defocus), a screen adds moiré — sharp, isolated peaks where the
pixel grid of the display beats with the camera's.  The features are the
share of spectral energy in each radial band and the peak-to-median ratio of
the upper bands.
"""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np

from limen import thresholds


@cache
def _geometry(side: int) -> tuple[np.ndarray, np.ndarray]:
    window = np.outer(np.hanning(side), np.hanning(side))
    y, x = np.indices((side, side)) - side // 2
    radius = np.sqrt(x * x + y * y) / (side / 2)
    return window, radius


def frequency_features(face_rgb: np.ndarray) -> np.ndarray:
    """Band energies (log shares) and high-band peak ratios of the grey face crop."""
    side = thresholds.PAD_FREQUENCY_CROP_PX
    bands = thresholds.PAD_FREQUENCY_BANDS
    gray = cv2.cvtColor(cv2.resize(face_rgb, (side, side), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    window, radius = _geometry(side)
    g = gray.astype(np.float64)
    g = (g - g.mean()) * window
    power = np.abs(np.fft.fftshift(np.fft.fft2(g))) ** 2
    total = power[radius <= 1.0].sum() + 1e-12
    edges = np.linspace(0.0, 1.0, bands + 1)
    shares = [power[(radius > lo) & (radius <= hi)].sum() / total for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    log_power = np.log1p(power)
    peaks = []
    for lo, hi in ((0.25, 0.5), (0.5, 0.75), (0.75, 1.0)):
        ring = log_power[(radius > lo) & (radius <= hi)]
        peaks.append(float(ring.max() - np.median(ring)))
    return np.concatenate([np.log(np.asarray(shares) + 1e-12), np.asarray(peaks)])
