"""The frame cue: a screen's bezel or a sheet's edge around the face — long straight lines framing it.

A held photo or phone puts the face inside a rectangle: the paper edge or
the display's bezel shows as long straight edges close around the face, often
on two or more sides, with nothing of the person (neck, shoulders) continuing
across them.  Around a live face the long straight lines belong to the room
(door frames, shelves) and rarely frame the face on several sides at once.

Features of one frame (`frame_features`), in face heights: the longest
straight segment near the face (outside the face box), how many sides of the
face have a long segment roughly parallel to that side, and the mean edge
contrast along them.  Its score is a small logistic model's log-odds of bona
fide over these features, learned by `limen.lab.pad_train_v2` (stored in `fusion_v1.npz`).
A lab cue: measured on leave-one-dataset-out folds it is too weak (EER 46 %:
rooms are full of straight lines, attackers fill the frame), so it is not in
`pipeline.DEFAULT_CUES` (docs/pad.md).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from limen import thresholds
from limen.bio.face.detect import Box
from limen.pad.contract import CueResult, CueScore, CueUnavailable, Purpose
from limen.pad.faces import PadSample
from limen.pad.fusion_model import Logistic, shipped_fusion

FEATURES = ("longest", "sides", "contrast", "segments")


def frame_features(rgb: np.ndarray, box: Box) -> np.ndarray:
    """(longest segment, framed sides 0–4, edge contrast, long segments) around the face in `rgb`."""
    h, w = rgb.shape[:2]
    side = max(box.width, box.height)
    reach = thresholds.PAD_EDGE_REACH * side
    x0, y0 = int(max(0, box.left - reach)), int(max(0, box.top - reach))
    x1, y1 = int(min(w, box.right + reach)), int(min(h, box.bottom + reach))
    region = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    scale = thresholds.PAD_EDGE_FACE_PX / float(side)  # work at a fixed face size: cost and thresholds
    region = cv2.resize(region, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    edges = cv2.Canny(cv2.GaussianBlur(region, (5, 5), 1.2), 40, 120)
    face_px = thresholds.PAD_EDGE_FACE_PX
    lines = cv2.HoughLinesP(edges, 1, np.pi / 180, threshold=40, minLineLength=int(0.5 * face_px), maxLineGap=6)
    fl, ft = (box.left - x0) * scale, (box.top - y0) * scale
    fr, fb = fl + box.width * scale, ft + box.height * scale
    margin = 0.1 * face_px
    longest = 0.0
    sides: set[str] = set()
    contrast: list[float] = []
    count = 0
    gx = cv2.Sobel(region, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(region, cv2.CV_32F, 0, 1)
    grad = np.hypot(gx, gy)
    for ax, ay, bx, by in (lines.reshape(-1, 4) if lines is not None else np.zeros((0, 4))):
        length = math.hypot(bx - ax, by - ay)
        mx, my = (ax + bx) / 2, (ay + by) / 2
        if fl - margin < mx < fr + margin and ft - margin < my < fb + margin:
            continue  # inside the face: jaw, glasses, hair
        count += 1
        longest = max(longest, length / face_px)
        angle = abs(math.degrees(math.atan2(by - ay, bx - ax))) % 180
        vertical = abs(angle - 90) < 20
        horizontal = angle < 20 or angle > 160
        if vertical and fb > min(ay, by) and ft < max(ay, by):
            sides.add("left" if mx < fl else "right" if mx > fr else "")
        if horizontal and fr > min(ax, bx) and fl < max(ax, bx):
            sides.add("top" if my < ft else "bottom" if my > fb else "")
        n = max(2, int(length))
        xs = np.linspace(ax, bx, n).round().astype(int).clip(0, region.shape[1] - 1)
        ys = np.linspace(ay, by, n).round().astype(int).clip(0, region.shape[0] - 1)
        contrast.append(float(grad[ys, xs].mean()) / 255.0)
    sides.discard("")
    return np.array([longest, float(len(sides)), float(np.mean(contrast)) if contrast else 0.0, float(count)])


class EdgeCue:
    """Straight edges framing the face (paper edge, bezel), scored by the learned edge model."""

    name = "edges"

    def __init__(self, model: Logistic | None = None) -> None:
        self._model = model

    def score(self, sample: PadSample, purpose: Purpose) -> CueResult:
        if not sample.faces:
            return CueUnavailable(self.name, "no_usable_face")
        model = self._model if self._model is not None else shipped_fusion().edges
        feats = np.stack([frame_features(f.frame.rgb, f.box) for f in sample.faces])
        logits = model.logits(feats)
        evidence = {"longest": round(float(feats[:, 0].max()), 3), "framed_sides": float(feats[:, 1].max()),
                    "min": round(float(logits.min()), 4)}
        return CueScore(self.name, float(logits.mean()), thresholds.PAD_EDGE_VETO, evidence)
