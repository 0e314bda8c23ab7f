"""Face detection with dlib's HOG detector: reduced resolution first, upsampled only when needed."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from limen import thresholds
from limen.bio.face import models


@dataclass(frozen=True)
class Box:
    """A face box in source-image pixels."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)


@dataclass(frozen=True)
class Detection:
    box: Box
    score: float


def detect_faces(rgb: np.ndarray, max_side: int = thresholds.DETECT_MAX_SIDE) -> list[Detection]:
    """All faces in `rgb`, largest first, detected on a copy no larger than `max_side`."""
    scale = min(1.0, max_side / max(rgb.shape[:2]))
    small = rgb if scale == 1.0 else cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    found = _run(small, upsample=0)
    if not found:
        found = _run(small, upsample=thresholds.DETECT_UPSAMPLE_RETRY)
    boxes = [Detection(_rescale(rect, scale, rgb.shape), score) for rect, score in found]
    return sorted(boxes, key=lambda d: d.box.area, reverse=True)


def detect_near(rgb: np.ndarray, near: Box, margin: float, face_px: int) -> list[Detection]:
    """Faces in the region around `near` (grown by `margin` box sides each way), scaled so `near` is `face_px`."""
    side = max(near.width, near.height, 1)
    grow = int(round(margin * side))
    h, w = rgb.shape[:2]
    left, top = max(0, near.left - grow), max(0, near.top - grow)
    right, bottom = min(w, near.right + grow), min(h, near.bottom + grow)
    if right - left < 2 or bottom - top < 2:
        return []
    scale = min(1.0, face_px / side)
    region = rgb[top:bottom, left:right]
    small = region if scale == 1.0 else cv2.resize(region, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    found = [Detection(_rescale(rect, scale, region.shape), score) for rect, score in _run(small, upsample=0)]
    moved = [Detection(Box(d.box.left + left, d.box.top + top, d.box.right + left, d.box.bottom + top), d.score)
             for d in found]
    return sorted(moved, key=lambda d: d.box.area, reverse=True)


def _run(img: np.ndarray, upsample: int) -> list[tuple[object, float]]:
    rects, scores, _ = models.detector().run(np.ascontiguousarray(img), upsample, 0.0)
    return list(zip(rects, scores, strict=True))


def _rescale(rect: object, scale: float, shape: tuple[int, ...]) -> Box:
    h, w = shape[:2]
    inv = 1.0 / scale
    return Box(
        left=max(0, int(round(rect.left() * inv))),  # type: ignore[attr-defined]
        top=max(0, int(round(rect.top() * inv))),  # type: ignore[attr-defined]
        right=min(w, int(round(rect.right() * inv))),  # type: ignore[attr-defined]
        bottom=min(h, int(round(rect.bottom() * inv))),  # type: ignore[attr-defined]
    )
