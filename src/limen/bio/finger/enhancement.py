"""Stage 4: contextual Gabor enhancement tuned to the local orientation and the ridge period."""

from __future__ import annotations

import cv2
import numpy as np

from limen import thresholds


def _half_width(period: float) -> int:
    """Half the side of the Gabor kernel at `period`: 3 σ of its wider axis."""
    return int(np.ceil(3 * max(thresholds.FINGER_GABOR_SIGMA_RATIO, thresholds.FINGER_GABOR_ALONG_RATIO) * period))


def _gabor_kernel(angle: float, period: float) -> np.ndarray:
    across = thresholds.FINGER_GABOR_SIGMA_RATIO * period
    along = thresholds.FINGER_GABOR_ALONG_RATIO * period
    half = _half_width(period)
    y, x = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float32)
    # ridges run along `angle`: u across them, v along them
    u = -x * np.sin(angle) + y * np.cos(angle)
    v = x * np.cos(angle) + y * np.sin(angle)
    k = np.exp(-u * u / (2 * across * across) - v * v / (2 * along * along)) * np.cos(2 * np.pi * u / period)
    k -= k.mean()
    return (k / np.abs(k).sum()).astype(np.float32)


def _gabor_filtered(image: np.ndarray, angle: float, period: float) -> np.ndarray:
    """`image` filtered by `_gabor_kernel(angle, period)` (border reflected), in separable parts: with equal σ
    across and along the ridges the envelope is isotropic, so the carrier cos(kx·x + ky·y) splits into
    products of 1-D filters, and the kernel's mean is a box filter: the same response (to float rounding)
    for ≈ 40 % less extraction CPU than the 2-D kernel."""
    if thresholds.FINGER_GABOR_SIGMA_RATIO != thresholds.FINGER_GABOR_ALONG_RATIO:   # anisotropic: 2-D kernel
        k = _gabor_kernel(angle, period)
        return cv2.filter2D(image, cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT)
    sigma = thresholds.FINGER_GABOR_SIGMA_RATIO * period
    half = _half_width(period)
    t = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-t * t / (2 * sigma * sigma))
    # u = −x·sin(angle) + y·cos(angle), as in _gabor_kernel
    kx, ky = -2 * np.pi * np.sin(angle) / period, 2 * np.pi * np.cos(angle) / period
    cx, sx, cy, sy = g * np.cos(kx * t), g * np.sin(kx * t), g * np.cos(ky * t), g * np.sin(ky * t)
    full = np.outer(cy, cx) - np.outer(sy, sx)          # the kernel before centring: rows y, columns x
    mean = float(full.mean())
    scale = 1.0 / float(np.abs(full - mean).sum())
    border = cv2.BORDER_REFLECT
    even = cv2.sepFilter2D(image, cv2.CV_32F, (cx * scale).astype(np.float32), cy.astype(np.float32),
                           borderType=border)
    odd = cv2.sepFilter2D(image, cv2.CV_32F, (sx * scale).astype(np.float32), sy.astype(np.float32),
                          borderType=border)
    box = cv2.boxFilter(image, cv2.CV_32F, (2 * half + 1, 2 * half + 1), normalize=False, borderType=border)
    return np.asarray(even - odd - np.float32(mean * scale) * box, np.float32)


def _oriented(norm: np.ndarray, index: np.ndarray, period: float) -> np.ndarray:
    """Each pixel filtered by the bank member (at `period`) nearest its ridge orientation."""
    n = thresholds.FINGER_GABOR_ANGLES
    out = np.zeros_like(norm)
    for i in range(n):
        sel = index == i
        if not sel.any():
            continue
        ys, xs = np.nonzero(sel)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        pad = _half_width(period)
        ya, yb = max(y0 - pad, 0), min(y1 + pad, norm.shape[0])
        xa, xb = max(x0 - pad, 0), min(x1 + pad, norm.shape[1])
        filtered = _gabor_filtered(norm[ya:yb, xa:xb], np.pi * i / n, period)
        part = filtered[y0 - ya:y1 - ya, x0 - xa:x1 - xa]
        s = sel[y0:y1, x0:x1]
        out[y0:y1, x0:x1][s] = part[s]
    return out


def enhanced_image(norm: np.ndarray, orientation: np.ndarray, period: float) -> np.ndarray:
    """Contextual Gabor enhancement (float32, 0 = ridge edge).  With several FINGER_GABOR_PERIOD_SCALES
    each pixel keeps the period whose response carries the most local energy (ridges widen and narrow)."""
    n = thresholds.FINGER_GABOR_ANGLES
    index = np.rint(orientation / np.pi * n).astype(np.int32) % n
    responses = [_oriented(norm, index, period * scale) for scale in thresholds.FINGER_GABOR_PERIOD_SCALES]
    if len(responses) == 1:
        return responses[0]
    b = thresholds.FINGER_BLOCK
    energy = np.stack([cv2.blur(r * r, (b, b)) for r in responses])
    choice = np.argmax(energy, axis=0)
    return np.take_along_axis(np.stack(responses), choice[None], axis=0)[0]
