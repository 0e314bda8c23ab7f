"""Stage 5: a binary ridge map from the enhanced image, small blobs removed."""

from __future__ import annotations

import cv2
import numpy as np

from limen import thresholds


def _drop_small(binary: np.ndarray, min_px: int) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    small = np.zeros(count, bool)
    small[1:] = stats[1:, cv2.CC_STAT_AREA] < min_px
    return binary & ~small[labels]


def binary_ridges(enhanced: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """True on ridge pixels (dark ridges give negative Gabor responses) inside the mask."""
    ridges = (enhanced < 0) & mask
    ridges = _drop_small(ridges, thresholds.FINGER_MIN_BLOB_PX)
    valleys = _drop_small(~ridges & mask, thresholds.FINGER_MIN_BLOB_PX)
    return mask & ~valleys
