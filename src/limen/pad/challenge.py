"""Optional challenge–response: "turn your head left, then right", checked for 3-D-consistent motion.

The head turn is read from the 5 landmarks (signed yaw: nose offset from the
eyes' midpoint along the eye axis, in eye distances).  A printed photo cannot
perform it; a replayed video of someone turning can, so the turn must also
show parallax: the frames around the turn are checked like the motion cue
(homography residual / motion).  Not performed → `CueUnavailable`
("not_performed"), which the fusion treats as insufficient evidence when a
challenge was asked for; performed but planar → an attack score.
"""

from __future__ import annotations

import math
from enum import StrEnum

import numpy as np

from limen import thresholds
from limen.pad.contract import CueResult, CueScore, CueUnavailable, Purpose
from limen.pad.faces import FaceView, PadSample
from limen.pad.motion import pair_motion


class Challenge(StrEnum):
    TURN_LEFT_RIGHT = "turn_left_right"
    TURN_RIGHT_LEFT = "turn_right_left"


def signed_yaw(view: FaceView) -> float:
    """Nose offset from the eyes' midpoint along the eye axis (image left→right), in eye distances."""
    eye_a, eye_b = view.points[0:2].mean(axis=0), view.points[2:4].mean(axis=0)
    left, right = (eye_a, eye_b) if eye_a[0] <= eye_b[0] else (eye_b, eye_a)
    axis = right - left
    dist = float(np.linalg.norm(axis))
    if dist < 1e-6:
        return 0.0
    return float(np.dot(view.points[4] - (left + right) / 2.0, axis / dist)) / dist


def turn_performed(yaws: list[float], challenge: Challenge) -> tuple[int, int] | None:
    """Indices (first extreme, later opposite extreme) when the requested turn happened, else None."""
    need = thresholds.PAD_CHALLENGE_MIN_YAW
    first_sign = -1.0 if challenge is Challenge.TURN_LEFT_RIGHT else 1.0
    for i, y in enumerate(yaws):
        if first_sign * y >= need:
            for j in range(i + 1, len(yaws)):
                if -first_sign * yaws[j] >= need:
                    return i, j
            return None
    return None


class ChallengeCue:
    """Checks that the requested head turn happened and moved like a 3-D head."""

    name = "challenge"

    def __init__(self, challenge: Challenge) -> None:
        self.challenge = challenge

    def score(self, sample: PadSample, purpose: Purpose) -> CueResult:
        views = list(sample.faces)
        if len(views) < 3:
            return CueUnavailable(self.name, "too_few_frames")
        yaws = [signed_yaw(v) for v in views]
        turn = turn_performed(yaws, self.challenge)
        if turn is None:
            return CueUnavailable(self.name, "not_performed")
        i, j = turn
        pairs = [pair_motion(a, b) for a, b in zip(views[i:j], views[i + 1 : j + 1], strict=True)]
        moving = [p for p in pairs if p is not None and p[0] >= thresholds.PAD_MOTION_MIN_MOTION]
        if not moving:
            return CueUnavailable(self.name, "untrackable")
        ratio = float(np.median([p[1] / p[0] for p in moving]))
        evidence = {"yaw_first": round(yaws[i], 3), "yaw_second": round(yaws[j], 3),
                    "pairs": float(len(moving)), "parallax_ratio": round(ratio, 4)}
        return CueScore(self.name, math.log(max(ratio, 1e-6) / thresholds.PAD_MOTION_PLANAR_RATIO), 0.0, evidence)
