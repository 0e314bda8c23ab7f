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


def _corner_print(fvc_db1: Path, side: int, contrast: float) -> np.ndarray:
    """A print `side` px square in the corner of an otherwise empty (sensor-noise) image."""
    from limen.bio.finger.image import load_image

    image = load_image(fvc_db1 / "101_1.tif").astype(np.float64)
    canvas = np.random.default_rng(0).normal(245, 1.0, image.shape)
    y, x = image.shape[0] // 2, image.shape[1] // 2
    canvas[:side, :side] = 245 - contrast * (245 - image[y:y + side, x:x + side])
    return canvas.clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("side, contrast", [(60, 0.35), (90, 1.0)])
def test_a_small_corner_print_is_too_little_area_not_blank(fvc_db1: Path, side: int, contrast: float) -> None:
    from limen import thresholds

    image = _corner_print(fvc_db1, side, contrast)
    if contrast < 1:
        assert image.std() < thresholds.FINGER_MIN_CONTRAST          # the whole image looks blank …
    with pytest.raises(BadImage, match=r"too little fingerprint area \(\d+ % of the image\)") as refused:
        extract(image)
    assert "blank" not in str(refused.value)                          # … but the reason is the small print


@pytest.mark.parametrize("dpi", [250, 1000, 72])
def test_a_resolution_recorded_in_the_file_outside_the_range_is_refused(tmp_path: Path, fvc_db1: Path,
                                                                       dpi: int) -> None:
    from PIL import Image

    from limen.bio.finger.image import load_image

    for suffix in (".png", ".tif"):
        path = tmp_path / f"print{suffix}"
        Image.open(fvc_db1 / "101_1.tif").save(path, dpi=(dpi, dpi))
        with pytest.raises(BadImage, match=f"scanned at {dpi} dpi"):
            load_image(path)
    Image.open(fvc_db1 / "101_1.tif").save(tmp_path / "ok.png", dpi=(500, 500))
    assert extract_file(tmp_path / "ok.png") == extract_file(fvc_db1 / "101_1.tif")   # 500 dpi: same as no tag


@pytest.mark.parametrize("scale, says", [(0.5, "≈ [23][0-9]{2} dpi"), (2.0, "≈ 1[0-9]{3} dpi")])
def test_a_print_at_the_wrong_resolution_is_refused_by_its_ridge_period(fvc_db1: Path, scale: float,
                                                                        says: str) -> None:
    import cv2

    from limen.bio.finger.image import load_image

    image = load_image(fvc_db1 / "101_1.tif")
    resampled = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else
                           cv2.INTER_CUBIC)                           # a 250 / 1000 dpi scan, no tag to say so
    with pytest.raises(BadImage, match=f"median ridge period .* px \\({says}\\)"):
        extract(resampled)


@pytest.mark.parametrize("db", ["DB1_B", "DB2_B", "DB3_B", "DB4_B"])
def test_every_fvc2002_database_passes_the_resolution_check(db: str) -> None:
    from limen import thresholds
    from limen.bio.finger.image import load_image, median_ridge_period
    from tests.conftest import shared

    folder = shared("fvc2002", db)                                    # DB2 is 569 dpi
    for name in ("101_1.tif", "105_4.tif", "110_8.tif"):
        period = median_ridge_period(extract(load_image(folder / name)).field)  # type: ignore[arg-type]
        lo, hi = thresholds.FINGER_RESOLUTION_PERIOD
        assert lo < period < hi                                        # all 320: thresholds.py
