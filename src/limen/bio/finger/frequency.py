"""Stage 3: the ridge period (inverse frequency) from the image spectrum."""

from __future__ import annotations

import numpy as np

from limen import thresholds


def ridge_period(norm: np.ndarray, mask: np.ndarray) -> float:
    """Dominant ridge period in px over the foreground: the peak of the radial power spectrum."""
    h, w = norm.shape
    size = 1 << int(np.ceil(np.log2(max(h, w))))
    window = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    padded = np.zeros((size, size), np.float32)
    padded[:h, :w] = norm * mask * window
    power = np.abs(np.fft.rfft2(padded)) ** 2
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    radius = np.sqrt(fx * fx + fy * fy)
    lo, hi = 1.0 / thresholds.FINGER_PERIOD_MAX, 1.0 / thresholds.FINGER_PERIOD_MIN
    bins = np.linspace(lo, hi, 41)
    idx = np.digitize(radius, bins)
    inside = (idx > 0) & (idx < len(bins))
    energy = np.bincount(idx[inside], weights=power[inside], minlength=len(bins))[1:len(bins)]
    smooth = np.convolve(energy, np.ones(3) / 3, mode="same")
    peak = int(np.argmax(smooth))
    freq = 0.5 * (bins[peak] + bins[peak + 1])
    return float(1.0 / freq)
