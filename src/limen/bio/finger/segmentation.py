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
    f = thresholds.FINGER_SEG_FRAME
    # scanners leave dark lines at the image edge (FVC2002 DB1): replace the frame by its inner neighbours
    norm = cv2.copyMakeBorder(norm[f:-f, f:-f], f, f, f, f, cv2.BORDER_REPLICATE)
    mean = cv2.blur(norm, (b, b))
    sq = cv2.blur(norm * norm, (b, b))
    std = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    level = thresholds.FINGER_SEG_STD_FRACTION * float(np.percentile(std, 95))
    raw = (std >= level).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (b + 1, b + 1))
    smooth = cv2.morphologyEx(cv2.morphologyEx(raw, cv2.MORPH_OPEN, kernel), cv2.MORPH_CLOSE, kernel)
    mask = np.asarray(smooth, np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    if count > 1:
        biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        mask = (labels == biggest).astype(np.uint8)
    # holes = background not connected to the image border (a zero frame joins every border region)
    flood = np.pad(mask, 1)
    cv2.floodFill(flood, np.zeros((flood.shape[0] + 2, flood.shape[1] + 2), np.uint8), (0, 0), 1)
    holes = flood[1:-1, 1:-1] == 0
    return (mask > 0) | holes


def print_area(image: np.ndarray) -> float:
    """Share of the image with ridge contrast: grey-level std ≥ FINGER_MIN_CONTRAST over FINGER_BLOCK px,
    the image frame ignored — the area a print covers, whatever the rest of the image holds."""
    b, f = thresholds.FINGER_BLOCK, thresholds.FINGER_SEG_FRAME
    g = image.astype(np.float32)
    mean = cv2.blur(g, (b, b))
    std = np.sqrt(np.maximum(cv2.blur(g * g, (b, b)) - mean * mean, 0.0))
    return float(np.mean(std[f:-f, f:-f] >= thresholds.FINGER_MIN_CONTRAST))


def area_reason(area: float) -> str:
    """The refusal for a print covering only `area` of the image."""
    return f"too little fingerprint area ({100 * area:.0f} % of the image): place the finger flat and centred"
