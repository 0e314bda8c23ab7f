"""Stage 2: the ridge orientation field and its coherence (structure tensor)."""

from __future__ import annotations

import cv2
import numpy as np

from limen import thresholds


def orientation_field(norm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel ridge orientation in [0, π) and coherence in [0, 1]."""
    g = cv2.GaussianBlur(norm, (0, 0), thresholds.FINGER_ORIENT_GRAD_SIGMA)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    s = thresholds.FINGER_ORIENT_SMOOTH_SIGMA
    gxx = cv2.GaussianBlur(gx * gx, (0, 0), s)
    gyy = cv2.GaussianBlur(gy * gy, (0, 0), s)
    gxy = cv2.GaussianBlur(gx * gy, (0, 0), s)
    diff = gxx - gyy
    # gradient direction is 0.5·atan2(2gxy, gxx−gyy); ridges run perpendicular to it
    theta = (0.5 * np.arctan2(2 * gxy, diff) + np.pi / 2) % np.pi
    coherence = np.sqrt(diff * diff + 4 * gxy * gxy) / np.maximum(gxx + gyy, 1e-6)
    return theta.astype(np.float32), np.clip(coherence, 0.0, 1.0).astype(np.float32)
