"""The foreground mask: a synthetic print with a known foreground, and the image frame."""

from __future__ import annotations

import numpy as np

from limen.bio.finger.segmentation import normalized, segmentation_mask


def _synthetic_print(background_noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Curved ridges (period 9 px) inside an ellipse on a noisy grey background; (image, true foreground)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:300, 0:260].astype(np.float64)
    inside = ((x - 130) / 85) ** 2 + ((y - 150) / 110) ** 2 <= 1.0
    ridges = np.cos(2 * np.pi * np.hypot(x - 130, y - 260) / 9.0)
    image = 170 + rng.normal(0, background_noise, x.shape)
    image[inside] = 120 + 60 * ridges[inside] + rng.normal(0, 6, int(inside.sum()))
    return image.clip(0, 255).astype(np.uint8), inside


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_the_mask_finds_a_known_foreground() -> None:
    image, truth = _synthetic_print(background_noise=3.0)
    mask = segmentation_mask(normalized(image))
    assert _iou(mask, truth) > 0.8
    assert (truth & ~mask).sum() < 0.02 * truth.sum()          # the print is inside …
    assert not mask[:20].any() and not mask[-20:].any()        # … and the flat background stays out


def test_dark_scanner_lines_at_the_frame_are_not_foreground() -> None:
    image, truth = _synthetic_print(background_noise=3.0, seed=2)
    image[:2] = 0
    image[:, -2:] = 0
    mask = segmentation_mask(normalized(image))
    assert not mask[:10, 100:160].any() and not mask[140:160, -10:].any()
    assert _iou(mask, truth) > 0.8
