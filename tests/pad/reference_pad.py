"""The PAD code that speed work replaced, verbatim, to compare old and new scores (test_speed_equivalence).

Each function is the implementation as it was before the change named beside
it; nothing here runs outside the tests.
"""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np

from limen import thresholds
from limen.pad.faces import FaceView
from limen.pad.lbp import _LUT, _OFFSETS, UNIFORM_BINS
from limen.pad.motion import _landmark_guess

# ------------------------------------------------------------------ motion.pair_motion (before: both frames
# converted to grey for every pair)


def pair_motion(a: FaceView, b: FaceView) -> tuple[float, float, int] | None:
    """(motion, parallax residual, tracked points) between two views, in eye distances; None if untrackable."""
    if a.frame.rgb.shape != b.frame.rgb.shape:
        return None
    g0 = cv2.cvtColor(a.frame.rgb, cv2.COLOR_RGB2GRAY)
    g1 = cv2.cvtColor(b.frame.rgb, cv2.COLOR_RGB2GRAY)
    mask = np.zeros_like(g0)
    mask[a.box.top : a.box.bottom, a.box.left : a.box.right] = 255
    corners = cv2.goodFeaturesToTrack(g0, maxCorners=thresholds.PAD_MOTION_MAX_POINTS, qualityLevel=0.01,
                                      minDistance=max(3, a.box.width // 25), mask=mask)
    if corners is None:
        return None
    p0 = np.concatenate([corners.reshape(-1, 2), a.points]).astype(np.float32)
    start = p0.reshape(-1, 1, 2)
    guess = _landmark_guess(a, b, p0).reshape(-1, 1, 2)
    flags = cv2.OPTFLOW_USE_INITIAL_FLOW
    p1, ok1, _ = cv2.calcOpticalFlowPyrLK(g0, g1, start, guess, winSize=(21, 21), maxLevel=3, flags=flags)
    back, ok2, _ = cv2.calcOpticalFlowPyrLK(g1, g0, p1, start.copy(), winSize=(21, 21), maxLevel=3, flags=flags)
    p1, back = np.asarray(p1).reshape(-1, 2), np.asarray(back).reshape(-1, 2)
    tracked = (np.asarray(ok1).ravel() == 1) & (np.asarray(ok2).ravel() == 1)
    good = tracked & (np.linalg.norm(back - p0, axis=1) < thresholds.PAD_MOTION_FB_PX)
    if good.sum() < thresholds.PAD_MOTION_MIN_POINTS:
        return None
    src, dst = p0[good].astype(np.float64), p1[good].astype(np.float64)
    h, _ = cv2.findHomography(src, dst, 0)
    if h is None or not np.all(np.isfinite(h)):
        return None
    projected = cv2.perspectiveTransform(src.reshape(-1, 1, 2), h).reshape(-1, 2)
    eye = max(a.eye_distance, 1.0)
    residual = float(np.sqrt(np.mean(np.sum((projected - dst) ** 2, axis=1)))) / eye
    flow = dst - src
    motion = float(np.sqrt(np.mean(np.sum((flow - flow.mean(axis=0)) ** 2, axis=1)))) / eye
    return motion, residual, int(good.sum())


# ------------------------------------------------------------------ lbp (before: one channel at a time)


def uniform_lbp_histogram(channel: np.ndarray) -> np.ndarray:
    """Normalised 59-bin histogram of uniform LBP(8,1) codes of one 2-D uint8 channel."""
    c = channel.astype(np.int16)
    centre = c[1:-1, 1:-1]
    h, w = centre.shape
    codes = np.zeros((h, w), dtype=np.uint8)
    for bit, (dy, dx) in enumerate(_OFFSETS):
        neighbour = c[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        codes |= (neighbour >= centre).astype(np.uint8) << bit
    hist = np.bincount(_LUT[codes].ravel(), minlength=UNIFORM_BINS).astype(np.float64)
    return hist / max(1.0, hist.sum())


def colour_texture(face_rgb: np.ndarray) -> np.ndarray:
    """Concatenated LBP histograms of Y, Cr, Cb, H, S, V (6 × 59 values) of a face crop."""
    side = thresholds.PAD_TEXTURE_CROP_PX
    crop = cv2.resize(face_rgb, (side, side), interpolation=cv2.INTER_AREA)
    ycrcb = cv2.cvtColor(crop, cv2.COLOR_RGB2YCrCb)
    hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)
    channels = [ycrcb[:, :, i] for i in range(3)] + [hsv[:, :, i] for i in range(3)]
    return np.concatenate([uniform_lbp_histogram(ch) for ch in channels])


# ------------------------------------------------------------------ frequency (before: masks and fftshift per call)


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


# ------------------------------------------------------------------ distortion (before: NumPy's std and a second
# pass for the skewness, a float histogram per channel, a sort of 32,768 colour counts, per-pixel moments and
# specular floats)


def distortion_features(face_rgb: np.ndarray) -> np.ndarray:
    """22 values describing how distorted a face crop looks."""
    from limen.pad.distortion import _blur

    side = thresholds.PAD_DISTORTION_CROP_PX
    crop = cv2.resize(face_rgb, (side, side), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    return np.concatenate([specular(hsv), _blur(gray), chromatic_moments(hsv), colour_diversity(crop)])


def specular(hsv: np.ndarray) -> np.ndarray:  # before: per-pixel floats (now level ranges and counts)
    s = hsv[:, :, 1].astype(np.float64) / 255.0
    v = hsv[:, :, 2].astype(np.float64) / 255.0
    mask = (v >= thresholds.PAD_SPECULAR_MIN_VALUE) & (s <= thresholds.PAD_SPECULAR_MAX_SATURATION)
    share = float(mask.mean())
    if not mask.any():
        return np.array([0.0, 0.0, 0.0])
    spec = v[mask]
    return np.array([share, float(spec.mean()), float(spec.var())])



def chromatic_moments(hsv: np.ndarray) -> np.ndarray:
    out: list[float] = []
    for i, top in enumerate((180, 256, 256)):
        ch = hsv[:, :, i].astype(np.float64).ravel() / top
        mean, std = float(ch.mean()), float(ch.std())
        z = (ch - mean) / std if std > 1e-9 else np.zeros_like(ch)
        skew = float(np.mean(z * z * z))
        hist = np.bincount((ch * 32).astype(np.intp).clip(0, 31), minlength=32) / ch.size
        out += [mean, std, skew, float(hist.min()), float(hist.max())]
    return np.array(out)


def colour_diversity(rgb: np.ndarray) -> np.ndarray:
    q = (rgb >> 3).astype(np.int32)  # 32 levels per channel
    keys = (q[:, :, 0] << 10) | (q[:, :, 1] << 5) | q[:, :, 2]
    counts = np.bincount(keys.ravel(), minlength=1 << 15)
    distinct = float(np.count_nonzero(counts)) / keys.size
    top = np.sort(counts)[::-1][:100].sum() / keys.size
    return np.array([distinct, float(top)])


# ------------------------------------------------------------------ faces.face_view's luma (before: the mean of
# the per-pixel float32 lumas; now `faces.mean_luma`, the weighted channel means)


def mean_luma(crop: np.ndarray) -> float:
    return float((crop.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).mean())
