"""MiniFASNet's crop resizes before reversing channels: the same patch, pixel for pixel, as reversing first."""

from __future__ import annotations

import cv2
import numpy as np

from limen.bio.face.detect import Box
from limen.pad import onnx_minifasnet as graph
from limen.pad.minifasnet import crop, crop_box


def reversed_first(frame_rgb: np.ndarray, box: Box, scale: float) -> np.ndarray:
    """The crop as upstream writes it: the BGR region, then the resize."""
    height, width = frame_rgb.shape[:2]
    left, top, right, bottom = crop_box(width, height, box, scale)
    patch = np.ascontiguousarray(frame_rgb[top : bottom + 1, left : right + 1, ::-1])
    return np.asarray(cv2.resize(patch, (graph.INPUT_SIZE, graph.INPUT_SIZE), interpolation=cv2.INTER_LINEAR))


def test_crop_is_pixel_identical_to_reversing_channels_first() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        h, w = (int(v) for v in rng.integers(8, 500, 2))
        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        left, top = int(rng.integers(0, w - 2)), int(rng.integers(0, h - 2))
        box = Box(left, top, int(rng.integers(left + 1, w)), int(rng.integers(top + 1, h)))
        for scale in (1.0, 2.7, 4.0):
            got, want = crop(frame, box, scale), reversed_first(frame, box, scale)
            assert got.dtype == np.uint8 and got.flags.c_contiguous
            assert got.shape == (graph.INPUT_SIZE, graph.INPUT_SIZE, 3) and np.array_equal(got, want)
