"""Single-frame feature families: shapes, ranges, and that each responds to what it measures."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from limen.pad import distortion, frequency, lbp


@pytest.fixture
def face_like() -> np.ndarray:
    rng = np.random.default_rng(1)
    base = cv2.GaussianBlur(rng.integers(60, 200, (160, 160, 3), dtype=np.uint8), (5, 5), 0)
    return np.ascontiguousarray(base)


def test_uniform_lbp_has_58_uniform_patterns() -> None:
    lut = lbp._uniform_lut()
    assert len(set(lut.tolist())) == lbp.UNIFORM_BINS
    assert (lut < lbp.UNIFORM_BINS - 1).sum() == 58


def test_lbp_histogram_of_flat_channel_is_one_pattern() -> None:
    hist = lbp.uniform_lbp_histogram(np.full((20, 20), 100, dtype=np.uint8))
    assert hist.sum() == pytest.approx(1.0)
    assert hist.max() == pytest.approx(1.0)  # every neighbour ≥ centre: code 255, a uniform pattern


def test_colour_texture_is_six_normalised_histograms(face_like: np.ndarray) -> None:
    feats = lbp.colour_texture(face_like)
    assert feats.shape == (6 * lbp.UNIFORM_BINS,)
    assert np.allclose(feats.reshape(6, -1).sum(axis=1), 1.0)


@pytest.mark.parametrize("value", [0, 255])
def test_distortion_features_are_finite_on_flat_images(value: int) -> None:
    feats = distortion.distortion_features(np.full((80, 80, 3), value, dtype=np.uint8))
    assert feats.shape == (distortion.FEATURES,)
    assert np.all(np.isfinite(feats))


def test_blur_features_see_defocus(face_like: np.ndarray) -> None:
    sharp = distortion.distortion_features(face_like)
    blurred = distortion.distortion_features(cv2.GaussianBlur(face_like, (9, 9), 3))
    assert blurred[3] > sharp[3]  # Crete blur metric grows with blur
    assert blurred[4] < sharp[4]  # log Laplacian variance shrinks


def test_specular_share_sees_highlights(face_like: np.ndarray) -> None:
    shiny = face_like.copy()
    shiny[40:80, 40:80] = 250
    assert distortion.distortion_features(shiny)[0] > distortion.distortion_features(face_like)[0]


def test_frequency_peaks_see_a_moire_grating(face_like: np.ndarray) -> None:
    y, x = np.indices(face_like.shape[:2])
    grating = (40 * np.sin(2 * np.pi * (x * 0.31 + y * 0.17))).astype(np.int16)
    moire = np.clip(face_like.astype(np.int16) + grating[:, :, None], 0, 255).astype(np.uint8)
    plain, screen = frequency.frequency_features(face_like), frequency.frequency_features(moire)
    assert np.all(np.isfinite(screen))
    assert screen[-3:].max() > plain[-3:].max() + 1.0


def _random_crops() -> list[np.ndarray]:
    """Crops of many sizes: noise, three-level noise (many equal neighbours), flat, blurred noise."""
    rng = np.random.default_rng(3)
    crops = []
    for i in range(120):
        h, w = (int(v) for v in rng.integers(1, 300, 2))
        noise = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        crops.append([noise, (noise // 86) * 127, np.full_like(noise, int(rng.integers(0, 256))),
                      cv2.GaussianBlur(noise, (5, 5), 0)][i % 4])
    return crops


def test_colour_texture_is_the_channel_by_channel_histograms() -> None:
    """The six channels coded at once give the same bits as `uniform_lbp_histogram` on each channel."""
    side = lbp.thresholds.PAD_TEXTURE_CROP_PX
    for crop in _random_crops():
        small = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
        planes = np.concatenate([cv2.cvtColor(small, cv2.COLOR_RGB2YCrCb), cv2.cvtColor(small, cv2.COLOR_RGB2HSV)], 2)
        one_by_one = np.concatenate([lbp.uniform_lbp_histogram(planes[:, :, i]) for i in range(6)])
        assert np.array_equal(lbp.colour_texture(crop), one_by_one)


def test_frequency_median_is_numpys() -> None:
    rng = np.random.default_rng(5)
    for n in [*range(1, 200), 2412, 4004, 5638]:  # and the three peak rings' sizes at 128 px
        values = np.log1p(rng.exponential(1e6, n))
        values[::3] = values[0]  # ties
        assert frequency._median(values) == np.median(values)
