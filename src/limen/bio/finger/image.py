"""Stage 0: a grey-level fingerprint image, checked before any processing."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from limen import thresholds
from limen.errors import BadImage


def load_image(path: str | Path) -> np.ndarray:
    """Read an 8-bit grey image from `path`; `BadImage` when it is not a usable fingerprint."""
    p = Path(path)
    if not p.is_file():
        raise BadImage(p, "not a file")
    if p.stat().st_size > thresholds.MAX_IMAGE_BYTES:
        raise BadImage(p, "file too large")
    data = np.fromfile(str(p), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if image is None:
        raise BadImage(p, "not a decodable image")
    return checked_image(image, p)


def checked_image(image: np.ndarray, source: str | Path = "<image>") -> np.ndarray:
    """Validate an in-memory grey image (size, contrast, saturation); return it as uint8."""
    if image.ndim != 2:
        raise BadImage(source, "a fingerprint image must be single-channel grey")
    h, w = image.shape
    if min(h, w) < thresholds.FINGER_MIN_SIDE:
        raise BadImage(source, f"too small ({w}×{h}); a 500 dpi print needs ≥ {thresholds.FINGER_MIN_SIDE} px")
    if max(h, w) > thresholds.FINGER_MAX_SIDE or h * w > thresholds.MAX_IMAGE_PIXELS:
        raise BadImage(source, f"too large ({w}×{h}) for a 500 dpi fingerprint")
    img = image.astype(np.uint8)
    if float(img.std()) < thresholds.FINGER_MIN_CONTRAST:
        raise BadImage(source, "blank image (no contrast)")
    saturated = float(np.mean((img == 0) | (img == 255)))
    if saturated >= thresholds.FINGER_SATURATED_FRACTION:
        raise BadImage(source, "saturated image")
    return img
