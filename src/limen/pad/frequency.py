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

_PEAK_RINGS = ((0.25, 0.5), (0.5, 0.75), (0.75, 1.0))


@cache
def _geometry(side: int) -> tuple[np.ndarray, np.ndarray]:
    window = np.outer(np.hanning(side), np.hanning(side))
    y, x = np.indices((side, side)) - side // 2
    radius = np.sqrt(x * x + y * y) / (side / 2)
    return window, radius


@cache
def _regions(side: int, bands: int) -> tuple[np.ndarray, tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Flat indices into the *unshifted* spectrum of the disc, each band and each peak ring.

    Each index array lists its pixels in the row-major order of the centred
    (fftshift-ed) spectrum, so gathering them gives the very arrays the boolean
    masks gave over `fftshift(power)`: the same sums, maxima and medians,
    without shifting the spectrum or comparing radii on every call.
    """
    _, radius = _geometry(side)
    shifted_to_flat = np.fft.fftshift(np.arange(side * side).reshape(side, side))  # centred pixel → unshifted index

    def where(mask: np.ndarray) -> np.ndarray:
        return np.asarray(shifted_to_flat[mask])

    edges = np.linspace(0.0, 1.0, bands + 1)
    band_idx = tuple(where((radius > lo) & (radius <= hi)) for lo, hi in zip(edges[:-1], edges[1:], strict=True))
    ring_idx = tuple(where((radius > lo) & (radius <= hi)) for lo, hi in _PEAK_RINGS)
    return where(radius <= 1.0), band_idx, ring_idx


def frequency_features(face_rgb: np.ndarray) -> np.ndarray:
    """Band energies (log shares) and high-band peak ratios of the grey face crop."""
    side = thresholds.PAD_FREQUENCY_CROP_PX
    bands = thresholds.PAD_FREQUENCY_BANDS
    gray = cv2.cvtColor(cv2.resize(face_rgb, (side, side), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    window, _ = _geometry(side)
    disc, band_idx, ring_idx = _regions(side, bands)
    g = gray.astype(np.float64)
    g = (g - g.mean()) * window
    power = _power(g)  # unshifted: the index arrays do the shift
    total = power[disc].sum() + 1e-12
    shares = [power[idx].sum() / total for idx in band_idx]
    peaks = []
    for idx in ring_idx:
        ring = np.log1p(power[idx])
        peaks.append(float(ring.max() - _median(ring)))
    return np.concatenate([np.log(np.asarray(shares) + 1e-12), np.asarray(peaks)])


def _power(g: np.ndarray) -> np.ndarray:
    """The power spectrum of the real image `g`, flattened, unshifted: re² + im² of OpenCV's DFT.

    NumPy's `abs(fft2(g)) ** 2` up to float rounding (relative 1e-15; the features within
    tests/pad/test_speed_equivalence.py's tolerance), in two thirds of the time: OpenCV transforms a real image
    as real rows.
    """
    spectrum = cv2.dft(g, flags=cv2.DFT_COMPLEX_OUTPUT)
    re, im = spectrum[:, :, 0], spectrum[:, :, 1]
    return np.asarray(re * re + im * im).ravel()


def _median(values: np.ndarray) -> float:
    """`np.median` of a 1-D array, as NumPy computes it: the middle value, or the two middle ones' sum halved.

    Without NumPy's wrappers and NaN check: a NaN in the ring makes its maximum, so its peak, NaN anyway.  Of an
    even count, the lower middle value is the largest of the k smallest that one selection puts first (the
    same value a second selection finds, in a quarter of the time).
    """
    k = values.size // 2
    middle = np.partition(values, k)
    if values.size % 2:
        return float(middle[k])
    return float((middle[:k].max() + middle[k]) / 2)
