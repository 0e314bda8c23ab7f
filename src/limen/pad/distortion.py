"""Image-distortion features of a recaptured face: specular reflection, blur, chroma, colour diversity.

After Wen, Han and Jain, "Face spoof detection with image distortion analysis"
(IEEE TIFS 2015).  A print or a screen reflects light differently from skin,
is usually recaptured slightly out of focus, has a compressed colour gamut and
fewer distinct colours.  The specular component is approximated by bright,
unsaturated pixels (the paper separates it with Tan's method, too slow here).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from limen import thresholds

FEATURES = 22  # 3 specular + 2 blur + 15 chromatic moments + 2 colour diversity


def distortion_features(face_rgb: np.ndarray) -> np.ndarray:
    """22 values describing how distorted a face crop looks (see module docstring)."""
    side = thresholds.PAD_DISTORTION_CROP_PX
    crop = cv2.resize(face_rgb, (side, side), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    return np.concatenate([_specular(hsv), _blur(gray), _chromatic_moments(hsv), _colour_diversity(crop)])


# The specular pixels' value and saturation levels: `level / 255` compared with the thresholds, level by level (the
# comparisons the per-pixel floats made), as the inclusive HSV ranges `cv2.inRange` takes.
_UNIT_LEVELS = np.arange(256, dtype=np.float64) / 255.0
_SPECULAR_LOW = np.array([0, 0, np.flatnonzero(_UNIT_LEVELS >= thresholds.PAD_SPECULAR_MIN_VALUE)[0]], np.uint8)
_SPECULAR_HIGH = np.array([255, np.flatnonzero(_UNIT_LEVELS <= thresholds.PAD_SPECULAR_MAX_SATURATION)[-1], 255],
                          np.uint8)


def _specular(hsv: np.ndarray) -> np.ndarray:
    """Share of bright unsaturated pixels, and the mean and variance of their value (0–1).

    The pixels are the same (the thresholds as level ranges); the share is their exact count over the pixels,
    the mean and variance sums over their values' 256 level counts: the per-pixel ones up to float summation
    order (tests/pad/test_speed_equivalence.py).
    """
    mask = cv2.inRange(hsv, _SPECULAR_LOW, _SPECULAR_HIGH)
    counts = cv2.calcHist([hsv], [2], mask, [256], [0, 256]).ravel().astype(np.float64)
    found = float(counts.sum())
    if found == 0:
        return np.array([0.0, 0.0, 0.0])
    mean = float(counts @ _UNIT_LEVELS) / found
    deviation = _UNIT_LEVELS - mean
    return np.array([found / (hsv.shape[0] * hsv.shape[1]), mean, float(counts @ (deviation * deviation)) / found])


def _blur(gray: np.ndarray) -> np.ndarray:
    """Crete et al.'s no-reference blur metric, and the log variance of the Laplacian."""
    g = gray.astype(np.float64)
    crete = []
    for axis, kernel in ((1, (9, 1)), (0, (1, 9))):
        blurred = cv2.blur(g, kernel)
        d_orig = np.abs(np.diff(g, axis=axis))
        d_blur = np.abs(np.diff(blurred, axis=axis))
        variation = np.maximum(0.0, d_orig - d_blur)
        total = d_orig.sum()
        crete.append(1.0 if total <= 0 else float((total - variation.sum()) / total))
    laplacian = float(np.log1p(cv2.Laplacian(g, cv2.CV_64F).var()))
    return np.array([max(crete), laplacian])


# The hue, saturation and value ranges of OpenCV's 8-bit HSV, and the first level of each of the 32 histogram
# bins `int(level / top * 32)` (clipped to 31) puts each level in: the bins rise with the level, so each is a run.
_HSV_TOPS = (180, 256, 256)
_BIN_STARTS = tuple(
    np.searchsorted((np.arange(256, dtype=np.float64) / top * 32).astype(np.intp).clip(0, 31), np.arange(32))
    for top in _HSV_TOPS
)


# Each channel's 256 levels as fractions of its range (`level / top`, the values the moments are taken of).
_LEVELS = tuple(np.arange(256, dtype=np.float64) / top for top in _HSV_TOPS)


def _chromatic_moments(hsv: np.ndarray) -> np.ndarray:
    """Mean, deviation, skewness and the emptiest and fullest of 32 bins of each HSV channel (levels / range).

    All from OpenCV's count of each channel's 256 levels (exact integers): the moments are sums over the
    levels weighted by their counts (256 terms instead of one per pixel), the 32-bin histogram is the counts
    summed over the runs of levels each bin takes.  The bins are the same bits as a per-pixel count; the
    moments are the per-pixel ones up to float summation order (|Δ| ≤ 2e-14 on 1,746 nuaa-dev faces; the texture
    cue's decisions and scores, tests/pad/test_speed_equivalence.py).
    """
    out: list[float] = []
    n = hsv.shape[0] * hsv.shape[1]
    for i, levels in enumerate(_LEVELS):
        counts = cv2.calcHist([hsv], [i], None, [256], [0, 256]).ravel().astype(np.float64)
        mean = float(counts @ levels) / n
        deviation = levels - mean
        square = deviation * deviation
        std = math.sqrt(float(counts @ square) / n)
        skew = float(counts @ (square * deviation)) / n / std**3 if std > 1e-9 else 0.0
        hist = np.add.reduceat(counts, _BIN_STARTS[i]) / n
        out += [mean, std, skew, float(hist.min()), float(hist.max())]
    return np.array(out)


def _colour_diversity(rgb: np.ndarray) -> np.ndarray:
    """Share of distinct colours (32 levels per channel) and share of pixels in the 100 most frequent ones."""
    q = rgb >> 3  # 32 levels per channel
    keys = (q[:, :, 0].astype(np.intp) << 10) | (q[:, :, 1].astype(np.intp) << 5) | q[:, :, 2]
    counts = np.bincount(keys.ravel(), minlength=1 << 15)
    used = counts[counts > 0]
    distinct = float(used.size) / keys.size
    top = used if used.size <= 100 else np.partition(used, used.size - 100)[used.size - 100 :]
    return np.array([distinct, float(top.sum() / keys.size)])  # integer counts: the same sum in any order
