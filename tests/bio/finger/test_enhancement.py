"""Contextual Gabor enhancement: the separable filter is the 2-D kernel's convolution, at every bank angle."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from limen import thresholds
from limen.bio.finger.enhancement import _gabor_filtered, _gabor_kernel, enhanced_image


def _ridges(shape: tuple[int, int] = (120, 140), period: float = 9.0) -> np.ndarray:
    rng = np.random.default_rng(7)
    y, x = np.mgrid[:shape[0], :shape[1]].astype(np.float32)
    image = np.cos(2 * np.pi * (0.6 * x + 0.8 * y + 0.002 * x * y) / period) + 0.5 * rng.standard_normal(shape)
    return image.astype(np.float32)


@pytest.mark.parametrize("period", [6.2, 9.0, 13.1])
def test_separable_gabor_equals_the_2d_kernel(period: float) -> None:
    image = _ridges()
    n = thresholds.FINGER_GABOR_ANGLES
    for i in range(n):
        angle = np.pi * i / n
        expected = cv2.filter2D(image, cv2.CV_32F, _gabor_kernel(angle, period), borderType=cv2.BORDER_REFLECT)
        got = _gabor_filtered(image, angle, period)
        assert got.shape == expected.shape and got.dtype == np.float32
        assert float(np.abs(got - expected).max()) < 1e-4 * float(np.abs(expected).max())


def test_enhancement_makes_dark_ridges_negative() -> None:
    period = 9.0
    y, x = np.mgrid[:96, :96].astype(np.float32)
    image = np.cos(2 * np.pi * x / period).astype(np.float32)     # vertical ridges: dark where cos < 0
    orientation = np.full(image.shape, np.pi / 2, np.float32)     # ridges run along y
    enhanced = enhanced_image(image, orientation, period)
    inner = (slice(20, -20), slice(20, -20))
    agree = np.sign(enhanced[inner]) == np.sign(image[inner])
    assert float(agree.mean()) > 0.95
