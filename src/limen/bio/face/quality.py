"""Quality gates, each with a named threshold in `thresholds.py`.

Gates run in a fixed order and the first that fails is reported: several
faces, too small, head turned, blurred, under-/over-exposed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from limen import thresholds
from limen.bio.face.align import Landmarks
from limen.bio.face.detect import Detection
from limen.decision import QualityGate


@dataclass(frozen=True)
class QualityReport:
    face_px: float
    sharpness: float
    brightness: float
    yaw: float
    faces: int

    def as_scores(self) -> dict[str, float]:
        return {
            "face_px": round(self.face_px, 1),
            "sharpness": round(self.sharpness, 1),
            "brightness": round(self.brightness, 1),
            "yaw": round(self.yaw, 3),
        }


def measure(detections: list[Detection], marks: Landmarks, chip: np.ndarray) -> QualityReport:
    gray = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    return QualityReport(
        face_px=float(detections[0].box.width),
        sharpness=float(cv2.Laplacian(gray, cv2.CV_64F).var()),
        brightness=float(gray.mean()),
        yaw=yaw_ratio(marks),
        faces=_significant_faces(detections),
    )


def yaw_ratio(marks: Landmarks) -> float:
    """Horizontal offset of the nose from the eyes' midpoint, in eye distances (0 = frontal)."""
    mid = (marks.eye_a + marks.eye_b) / 2.0
    axis = marks.eye_b - marks.eye_a
    dist = float(np.linalg.norm(axis))
    if dist < 1e-6:
        return 1.0
    offset = float(np.dot(marks.nose - mid, axis / dist))
    return abs(offset) / dist


def failed_gate(report: QualityReport) -> QualityGate | None:
    """The first gate `report` fails, or None when it passes them all."""
    if report.faces > 1:
        return QualityGate.SEVERAL_FACES
    if report.face_px < thresholds.QUALITY_MIN_FACE_PX:
        return QualityGate.TOO_SMALL
    if report.yaw > thresholds.QUALITY_MAX_YAW:
        return QualityGate.HEAD_TURNED
    if report.brightness < thresholds.QUALITY_MIN_BRIGHTNESS:
        return QualityGate.UNDEREXPOSED
    if report.brightness > thresholds.QUALITY_MAX_BRIGHTNESS:
        return QualityGate.OVEREXPOSED
    if report.sharpness < thresholds.QUALITY_MIN_SHARPNESS:  # after exposure: contrast lowers the Laplacian too
        return QualityGate.BLURRED
    return None


def _significant_faces(detections: list[Detection]) -> int:
    if not detections:
        return 0
    largest = detections[0].box.area
    return sum(1 for d in detections if d.box.area >= thresholds.QUALITY_SECOND_FACE_RATIO * largest)
