"""Colour-texture features: uniform LBP(8,1) histograms per channel of YCbCr and HSV.

After Boulkenafet, Komulainen and Hadid, "Face anti-spoofing based on color
texture analysis" (ICIP 2015): recapture (print, screen) changes the chroma
texture of a face more than its luma, so histograms are taken on the three
YCbCr and the three HSV channels of the face crop and concatenated.
"""

from __future__ import annotations

import cv2
import numpy as np

from limen import thresholds

UNIFORM_BINS = 59  # 58 uniform 8-bit patterns + one bin for all the others

# Neighbours of LBP(8,1) as (dy, dx), in circular order.
_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))


def _uniform_lut() -> np.ndarray:
    lut = np.full(256, UNIFORM_BINS - 1, dtype=np.intp)
    label = 0
    for code in range(256):
        bits = [(code >> i) & 1 for i in range(8)]
        transitions = sum(bits[i] != bits[(i + 1) % 8] for i in range(8))
        if transitions <= 2:
            lut[code] = label
            label += 1
    return lut


_LUT = _uniform_lut()


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
    """Concatenated LBP histograms of Y, Cr, Cb, H, S, V (6 × 59 values) of a face crop.

    The six channels are coded together (one pass of eight comparisons over a
    (h, w, 6) array, one bincount with each channel's bins offset): the same
    integer counts, so the same histograms, as `uniform_lbp_histogram` channel
    by channel, in a third of the time.
    """
    side = thresholds.PAD_TEXTURE_CROP_PX
    crop = cv2.resize(face_rgb, (side, side), interpolation=cv2.INTER_AREA)
    ycrcb = cv2.cvtColor(crop, cv2.COLOR_RGB2YCrCb)
    hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)
    c = np.concatenate([ycrcb, hsv], axis=2).astype(np.int16)
    centre = c[1:-1, 1:-1]
    h, w, channels = centre.shape
    codes = np.zeros((h, w, channels), dtype=np.uint8)
    for bit, (dy, dx) in enumerate(_OFFSETS):
        neighbour = c[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        codes |= (neighbour >= centre).astype(np.uint8) << bit
    bins = _LUT[codes] + np.arange(channels) * UNIFORM_BINS
    hist = np.bincount(bins.ravel(), minlength=channels * UNIFORM_BINS).astype(np.float64).reshape(channels, -1)
    return np.concatenate([row / max(1.0, row.sum()) for row in hist])
