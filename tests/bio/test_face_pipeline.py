"""The face pipeline on real faces (lfw-subset) and on images degraded to trip each quality gate."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from limen import thresholds
from limen.bio.face import FaceEngine, FaceSample, QualityFailure
from limen.bio.face.align import Landmarks
from limen.bio.face.quality import yaw_ratio
from limen.capture import load_image
from limen.decision import QualityGate
from tests.conftest import shared


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine()


@pytest.fixture(scope="module")
def face_rgb() -> np.ndarray:
    return load_image(shared("lfw-subset", "Colin_Powell", "Colin_Powell_0001.jpg"))


def test_blank_image_has_no_face(engine: FaceEngine) -> None:
    out = engine.extract(np.full((200, 200, 3), 128, np.uint8))
    assert isinstance(out, QualityFailure) and out.gate is QualityGate.NO_FACE


def test_real_face_passes_and_embeds(engine: FaceEngine, face_rgb: np.ndarray) -> None:
    out = engine.extract(face_rgb)
    assert isinstance(out, FaceSample), out
    assert out.embedding.shape == (128,)
    assert 0.3 < float(np.linalg.norm(out.embedding)) < 2.0
    assert {"detect", "align", "embed"} <= set(out.timings)


def test_same_image_embeds_identically(engine: FaceEngine, face_rgb: np.ndarray) -> None:
    a, b = engine.extract(face_rgb), engine.extract(face_rgb.copy())
    assert isinstance(a, FaceSample) and isinstance(b, FaceSample)
    assert np.allclose(a.embedding, b.embedding)


def test_blurred_face_is_refused(engine: FaceEngine, face_rgb: np.ndarray) -> None:
    out = engine.extract(cv2.GaussianBlur(face_rgb, (0, 0), 3.0))
    assert isinstance(out, QualityFailure) and out.gate in (QualityGate.BLURRED, QualityGate.NO_FACE)
    if out.gate is QualityGate.BLURRED:
        assert out.quality is not None and out.quality.sharpness < thresholds.QUALITY_MIN_SHARPNESS


def test_dark_and_bright_faces_are_refused(engine: FaceEngine, face_rgb: np.ndarray) -> None:
    dark = engine.extract((face_rgb.astype(np.float32) * 0.2).astype(np.uint8))
    bright = engine.extract(np.clip(face_rgb.astype(np.float32) * 1.0 + 150, 0, 255).astype(np.uint8))
    assert isinstance(dark, QualityFailure) and dark.gate in (QualityGate.UNDEREXPOSED, QualityGate.NO_FACE)
    assert isinstance(bright, QualityFailure) and bright.gate in (QualityGate.OVEREXPOSED, QualityGate.NO_FACE)


def test_small_face_is_refused(engine: FaceEngine, face_rgb: np.ndarray) -> None:
    small = cv2.resize(face_rgb, None, fx=0.45, fy=0.45, interpolation=cv2.INTER_AREA)
    canvas = np.full((400, 400, 3), 120, np.uint8)
    canvas[100 : 100 + small.shape[0], 100 : 100 + small.shape[1]] = small
    out = engine.extract(canvas)
    assert isinstance(out, QualityFailure) and out.gate in (QualityGate.TOO_SMALL, QualityGate.NO_FACE)


def test_two_faces_are_refused(engine: FaceEngine, face_rgb: np.ndarray) -> None:
    other = load_image(shared("lfw-subset", "Tony_Blair", "Tony_Blair_0001.jpg"))
    out = engine.extract(np.hstack([face_rgb, other]))
    assert isinstance(out, QualityFailure) and out.gate is QualityGate.SEVERAL_FACES


def test_yaw_ratio_grows_as_the_nose_leaves_the_eye_midline() -> None:
    def marks(nose_x: float) -> Landmarks:
        pts = np.array([[30, 50], [40, 50], [70, 50], [60, 50], [nose_x, 80]], float)
        return Landmarks(points=pts, shape=None)

    assert yaw_ratio(marks(50)) == pytest.approx(0.0)
    assert yaw_ratio(marks(62)) > thresholds.QUALITY_MAX_YAW > yaw_ratio(marks(53))


def test_most_lfw_images_pass_the_gates(engine: FaceEngine) -> None:
    """Quality gates on a real set: a well-lit web set must mostly pass (a gate, not a number)."""
    files = sorted(Path(shared("lfw-subset")).glob("*/*_000[1-3].jpg"))
    outs = [engine.extract(load_image(f)) for f in files]
    passed = sum(isinstance(o, FaceSample) for o in outs)
    assert len(files) == 30 and passed / len(files) >= 0.8
