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


def _code_bins() -> np.ndarray:
    bins = np.zeros((256, UNIFORM_BINS))
    bins[np.arange(256), _LUT] = 1.0
    return bins


_CODE_BINS = _code_bins()  # (256, 59): 1 where an 8-bit code falls in a uniform bin


def colour_texture(face_rgb: np.ndarray) -> np.ndarray:
    """Concatenated LBP histograms of Y, Cr, Cb, H, S, V (6 × 59 values) of a face crop.

    The six channels are coded together: each image row holds its pixels'
    six channels side by side, so a neighbour is a shift of whole pixels
    along the row, and OpenCV compares the shifted rows with the centres
    in one pass per neighbour (the same comparisons of the same uint8
    values).  Each channel's 256 codes are counted, then summed into the
    59 uniform bins (integer counts, exact in float64): the same histograms
    as `uniform_lbp_histogram` channel by channel.
    """
    side = thresholds.PAD_TEXTURE_CROP_PX
    crop = cv2.resize(face_rgb, (side, side), interpolation=cv2.INTER_AREA)
    pixels = np.concatenate([cv2.cvtColor(crop, cv2.COLOR_RGB2YCrCb), cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)], axis=2)
    channels = pixels.shape[2]
    rows = pixels.reshape(side, side * channels)
    inner = (side - 2) * channels
    centre = rows[1:-1, channels : channels + inner]
    codes = np.zeros_like(centre)
    for bit, (dy, dx) in enumerate(_OFFSETS):
        shift = channels * (1 + dx)
        codes |= np.bitwise_and(cv2.compare(rows[1 + dy : side - 1 + dy, shift : shift + inner], centre, cv2.CMP_GE),
                                1 << bit)
    per_code = np.bincount((codes.reshape(-1, channels) + np.arange(channels) * 256).ravel(), minlength=channels * 256)
    hist = per_code.reshape(channels, 256).astype(np.float64) @ _CODE_BINS
    return np.concatenate([row / max(1.0, row.sum()) for row in hist])
