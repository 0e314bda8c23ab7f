"""Stage 0: a grey-level fingerprint image, checked before any processing."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from limen import thresholds
from limen.bio.finger.segmentation import area_reason, print_area
from limen.bio.finger.template import BlockField
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
    dpi = file_dpi(p)
    lo, hi = thresholds.FINGER_DPI_RANGE
    if dpi is not None and not lo <= dpi <= hi:
        raise BadImage(p, f"the file says it was scanned at {dpi:.0f} dpi; fingerprints are matched at "
                          f"{lo}–{hi} dpi (500 dpi nominal): rescan or resample it")
    return checked_image(image, p)


def file_dpi(path: Path) -> float | None:
    """The resolution the file records (JPEG/PNG/TIFF, via Pillow's header parse), or None when it records none
    (absent, or ≤ 1: "no unit" — FVC's TIFFs say 1 × 1)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            dpi = im.info.get("dpi")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None
    try:
        value = float(min(dpi)) if isinstance(dpi, tuple) and dpi else None
    except (TypeError, ValueError):
        return None
    return value if value is not None and value > 1 else None


def median_ridge_period(field: BlockField) -> float:
    """The median ridge period (px) over the field's foreground blocks (1 / their ridge frequency)."""
    freq = field.arrays()[2]
    freq = freq[freq > 0]
    return 1.0 / float(np.median(freq)) if freq.size else 0.0


def check_resolution(field: BlockField, source: str | Path = "<image>") -> None:
    """`BadImage` when the print's median ridge period says the image is not ≈ 500 dpi (250 or 1000 dpi
    scans, an image resampled to fit the size limits)."""
    period = median_ridge_period(field)
    lo, hi = thresholds.FINGER_RESOLUTION_PERIOD
    if not lo <= period <= hi:
        dpi = 500 * period / thresholds.FINGER_NOMINAL_PERIOD
        raise BadImage(source, f"median ridge period {period:.1f} px (≈ {dpi:.0f} dpi); a 500 dpi print has "
                               f"{lo}–{hi} px: wrong resolution, rescan or resample it to 500 dpi")


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
        area = print_area(img)
        if area >= thresholds.FINGER_BLANK_AREA_FRACTION:
            raise BadImage(source, area_reason(area))
        raise BadImage(source, "blank image (no contrast)")
    saturated = float(np.mean((img == 0) | (img == 255)))
    if saturated >= thresholds.FINGER_SATURATED_FRACTION:
        raise BadImage(source, "saturated image")
    return img
