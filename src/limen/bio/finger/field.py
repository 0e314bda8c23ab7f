"""Stage 9: the block field — ridge orientation, coherence and ridge frequency per block, kept in the template."""

from __future__ import annotations

import cv2
import numpy as np

from limen import thresholds
from limen.bio.finger.template import BlockField


def block_field(orientation: np.ndarray, coherence: np.ndarray, mask: np.ndarray, skel: np.ndarray) -> BlockField:
    """The field sampled at the centres of FINGER_FIELD_BLOCK px blocks: orientation and coherence of the
    smoothed structure tensor, and the local ridge frequency — skeleton pixels per foreground pixel over a
    FINGER_FIELD_FREQ_WINDOW px window (≈ 1 / ridge period).  A block is foreground when at least half of the
    block around its centre is in the mask."""
    b = thresholds.FINGER_FIELD_BLOCK
    h, w = mask.shape
    ys, xs = np.arange(b // 2, h, b), np.arange(b // 2, w, b)
    at = np.ix_(ys, xs)
    m = mask.astype(np.float32)
    window = thresholds.FINGER_FIELD_FREQ_WINDOW
    foreground = cv2.blur(m, (b, b))[at] >= 0.5
    skeleton_px = cv2.blur((skel > 0).astype(np.float32), (window, window))[at]
    density = skeleton_px / np.maximum(cv2.blur(m, (window, window))[at], 1e-3)
    theta = np.rint(orientation[at] * (256 / np.pi)).astype(np.int64) % 256
    coh = np.rint(np.clip(coherence[at], 0.0, 1.0) * 255)
    freq = np.where(foreground, np.clip(np.rint(density * 1000), 1, 255), 0)
    return BlockField(b, len(ys), len(xs), theta.astype(np.uint8).tobytes(), coh.astype(np.uint8).tobytes(),
                      freq.astype(np.uint8).tobytes())
