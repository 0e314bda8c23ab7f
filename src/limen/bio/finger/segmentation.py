"""Stage 1: the foreground (fingerprint area) mask from block contrast."""

from __future__ import annotations

import cv2
import numpy as np

from limen import thresholds


def normalized(image: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-variance float32 image."""
    f = image.astype(np.float32)
    return (f - f.mean()) / max(float(f.std()), 1e-6)


def segmentation_mask(norm: np.ndarray) -> np.ndarray:
    """Boolean mask of blocks with ridge contrast, smoothed and filled, at pixel resolution."""
    b = thresholds.FINGER_BLOCK
    mean = cv2.blur(norm, (b, b))
    sq = cv2.blur(norm * norm, (b, b))
    std = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    level = thresholds.FINGER_SEG_STD_FRACTION * float(np.percentile(std, 95))
    mask = (std >= level).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (b + 1, b + 1))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    if count > 1:
        biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        mask = (labels == biggest).astype(np.uint8)
    flood = mask.copy()
    cv2.floodFill(flood, np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), np.uint8), (0, 0), 1)
    holes = flood == 0
    return (mask > 0) | holes
