"""5-point landmarks and the aligned 150×150 face chip that dlib's ResNet expects.

The chip is `dlib.get_face_chip(rgb, shape, size=150, padding=0.25)`: RGB,
uint8, the same chip `face_recognition` feeds the network, so that any
embedding backend sees identical input.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from limen.bio.face import models
from limen.bio.face.detect import Box

CHIP_SIZE = 150
CHIP_PADDING = 0.25


@dataclass(frozen=True)
class Landmarks:
    """dlib's 5 points: two corners of each eye and the base of the nose, (x, y) in source pixels."""

    points: np.ndarray  # shape (5, 2); never modified (the eye centres below are computed once)
    shape: Any  # dlib.full_object_detection, needed for chip extraction

    @cached_property
    def eye_a(self) -> np.ndarray:
        return self.points[0:2].mean(axis=0)

    @cached_property
    def eye_b(self) -> np.ndarray:
        return self.points[2:4].mean(axis=0)

    @property
    def nose(self) -> np.ndarray:
        return self.points[4]

    @cached_property
    def eye_distance(self) -> float:
        return float(np.linalg.norm(self.eye_a - self.eye_b))


def landmarks(rgb: np.ndarray, box: Box) -> Landmarks:
    import dlib

    rect = dlib.rectangle(box.left, box.top, box.right, box.bottom)
    shape = models.shape_predictor()(rgb, rect)
    points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
    return Landmarks(points=points, shape=shape)


def face_chip(rgb: np.ndarray, marks: Landmarks) -> np.ndarray:
    import dlib

    return np.asarray(dlib.get_face_chip(rgb, marks.shape, size=CHIP_SIZE, padding=CHIP_PADDING), dtype=np.uint8)
