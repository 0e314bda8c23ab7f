"""The extractor: real prints give minutiae; bad captures get one clear refusal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from limen import thresholds
from limen.bio.finger.extract import extract, extract_file
from limen.bio.finger.template import MinutiaType
from limen.errors import BadImage


def test_a_real_print_gives_plausible_minutiae(fvc_db1: Path) -> None:
    t = extract_file(fvc_db1 / "101_1.tif")
    assert (t.width, t.height, t.dpi) == (388, 374, 500)
    assert 15 <= len(t.minutiae) <= thresholds.FINGER_MAX_MINUTIAE
    kinds = {m.kind for m in t.minutiae}
    assert kinds <= {MinutiaType.ENDING, MinutiaType.BIFURCATION} and len(kinds) == 2
    for m in t.minutiae:
        assert 0 <= m.x < t.width and 0 <= m.y < t.height
        assert 0 <= m.angle < 2 * np.pi and 0 <= m.quality <= 100


def test_a_real_print_carries_its_block_field(fvc_db1: Path) -> None:
    t = extract_file(fvc_db1 / "101_1.tif")
    assert t.field is not None
    f = t.field
    assert (f.block, f.rows, f.cols) == (thresholds.FINGER_FIELD_BLOCK, 23, 24)     # 374 × 388 px in 16 px blocks
    theta, coherence, frequency = f.arrays()
    foreground = frequency > 0
    assert 0.3 < foreground.mean() < 1.0                             # the print, not the background
    period = 1 / np.median(frequency[foreground])                     # ridge period from the skeleton density
    assert 6 < period < 14
    assert np.median(coherence[foreground]) > 0.3 and ((theta >= 0) & (theta < np.pi)).all()


def test_extraction_is_deterministic(fvc_db1: Path) -> None:
    assert extract_file(fvc_db1 / "102_3.tif") == extract_file(fvc_db1 / "102_3.tif")


def test_a_half_erased_print_is_refused_or_keeps_fewer_minutiae(fvc_db1: Path) -> None:
    from limen.bio.finger.image import load_image

    image = load_image(fvc_db1 / "103_1.tif").copy()
    full = len(extract(image).minutiae)
    image[:, : int(image.shape[1] * 0.8)] = 255
    try:
        partial = extract(image)
    except BadImage as exc:
        assert "partial" in str(exc) or "minutiae" in str(exc)
    else:
        assert len(partial.minutiae) < full


@pytest.mark.parametrize("image, reason", [
    (np.full((300, 300), 128, np.uint8), "blank"),
    (np.where(np.random.default_rng(0).random((300, 300)) < 0.5, 0, 255).astype(np.uint8), "saturated"),
    (np.random.default_rng(1).integers(0, 255, (60, 60)).astype(np.uint8), "too small"),
    (np.random.default_rng(2).integers(0, 255, (2000, 300)).astype(np.uint8), "too large"),
    (np.zeros((300, 300, 3), np.uint8), "single-channel"),
])
def test_unusable_images_are_refused_with_the_reason(image: np.ndarray, reason: str) -> None:
    with pytest.raises(BadImage, match=reason):
        extract(image)


def test_noise_has_no_reliable_minutiae() -> None:
    noise = np.random.default_rng(3).normal(128, 40, (300, 300)).clip(0, 255).astype(np.uint8)
    with pytest.raises(BadImage):
        extract(noise)


def test_a_file_that_is_not_an_image_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "101_1.tif"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(BadImage, match="not a decodable image"):
        extract_file(bad)
    with pytest.raises(BadImage, match="not a file"):
        extract_file(tmp_path / "missing.tif")


def test_minutiae_turn_with_the_print(fvc_db1: Path) -> None:
    """A print rotated by 90° gives (mostly) the same minutiae, rotated: positions within 4 px, directions
    within 20° — catches direction conventions and axis mix-ups that a plausibility check cannot."""
    from limen.bio.finger.image import load_image

    image = load_image(fvc_db1 / "105_2.tif")
    upright = extract(image)
    turned = extract(np.ascontiguousarray(np.rot90(image, -1)))      # clockwise: (x, y) → (h − 1 − y, x)
    h = image.shape[0]
    xy = np.array([(h - 1 - m.y, m.x) for m in upright.minutiae], float)
    ang = np.array([m.angle + np.pi / 2 for m in upright.minutiae])
    found = 0
    for m in turned.minutiae:
        d = np.hypot(xy[:, 0] - m.x, xy[:, 1] - m.y)
        k = int(np.argmin(d))
        if d[k] <= 4 and np.cos(ang[k] - m.angle) >= np.cos(np.radians(20)):
            found += 1
    assert found >= 0.6 * min(len(upright.minutiae), len(turned.minutiae))
