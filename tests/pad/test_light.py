"""A face too dark to judge is insufficient evidence with advice, never an attack (issue 13, item 5)."""

from __future__ import annotations

import numpy as np
import pytest

from limen import thresholds
from limen.capture import Capture, Frame, load_image
from limen.decision import Reason
from limen.pad import Purpose, assess, faces
from tests.pad.helpers import nuaa_files

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _scaled_to_face_luma(rgb: np.ndarray, box: object, target: float) -> np.ndarray:
    b = box  # a limen.bio.face.detect.Box
    crop = rgb[b.top : b.bottom, b.left : b.right].astype(np.float32)  # type: ignore[attr-defined]
    gain = target / float((crop @ LUMA).mean())
    return np.clip(rgb.astype(np.float32) * gain + 0.5, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("purpose", list(Purpose))
def test_a_dark_face_is_insufficient_evidence_with_advice_not_an_attack(purpose: Purpose) -> None:
    rgb = load_image(nuaa_files("live", "0001", 1)[0])
    box = faces.locate(Capture.single(rgb)).faces[0].box
    dark = _scaled_to_face_luma(rgb, box, thresholds.PAD_MIN_LUMA * 0.8)
    v = assess(Capture(tuple(Frame(rgb=dark, t=0.4 * i) for i in range(5))), purpose=purpose, boxes=[box] * 5)
    assert not v.passed and v.reason == "insufficient_evidence"
    assert v.decision_reason is Reason.INSUFFICIENT_EVIDENCE  # not PAD_FAILED: no alarm, no lockout count
    assert v.unusable == {"too_dark": 5}
    assert "more light" in v.detail
    assert not v.cues_run  # nothing judged the face, so nothing can have called it an attack


def test_the_floor_is_where_a_face_stops_being_judged() -> None:
    rgb = load_image(nuaa_files("live", "0001", 1)[0])
    box = faces.locate(Capture.single(rgb)).faces[0].box
    below = _scaled_to_face_luma(rgb, box, thresholds.PAD_MIN_LUMA - 3)
    above = _scaled_to_face_luma(rgb, box, thresholds.PAD_MIN_LUMA + 3)
    assert faces.face_view(below, box) == "too_dark"
    assert isinstance(faces.face_view(above, box), faces.FaceView)


def test_advice_follows_the_commonest_reason() -> None:
    black = Frame(rgb=np.zeros((480, 640, 3), np.uint8))
    v = assess(Capture((black,)), purpose=Purpose.VERIFY)
    assert v.unusable == {"no_face": 1} and "face the camera" in v.detail and "more light" not in v.detail


def test_lab_report_names_the_shipped_models() -> None:
    from limen.cli.pad import _model_label
    from limen.pad.fusion_model import MODEL_FILE as FUSION_FILE
    from limen.pad.texture import MODEL_FILE as TEXTURE_FILE

    label = _model_label()
    assert TEXTURE_FILE.stem in label and FUSION_FILE.stem in label
