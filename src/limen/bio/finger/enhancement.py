"""Stage 4: contextual Gabor enhancement tuned to the local orientation and the ridge period."""

from __future__ import annotations

import cv2
import numpy as np

from limen import thresholds


def _gabor_kernel(angle: float, period: float) -> np.ndarray:
    across = thresholds.FINGER_GABOR_SIGMA_RATIO * period
    along = thresholds.FINGER_GABOR_ALONG_RATIO * period
    half = int(np.ceil(3 * max(across, along)))
    y, x = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float32)
    # ridges run along `angle`: u across them, v along them
    u = -x * np.sin(angle) + y * np.cos(angle)
    v = x * np.cos(angle) + y * np.sin(angle)
    k = np.exp(-u * u / (2 * across * across) - v * v / (2 * along * along)) * np.cos(2 * np.pi * u / period)
    k -= k.mean()
    return (k / np.abs(k).sum()).astype(np.float32)


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
        k = _gabor_kernel(np.pi * i / n, period)
        pad = k.shape[0] // 2
        ya, yb = max(y0 - pad, 0), min(y1 + pad, norm.shape[0])
        xa, xb = max(x0 - pad, 0), min(x1 + pad, norm.shape[1])
        filtered = cv2.filter2D(norm[ya:yb, xa:xb], cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT)
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
