"""The multi-frame cue: a photo or a screen moves as a plane, a face does not.

Corner points inside the face are tracked between consecutive usable frames
(pyramidal Lucas–Kanade started from the similarity between the two frames'
landmarks, so large moves track, with a forward–backward check) and a homography is
fitted to them by least squares.  The points of a flat object fit it to within
tracking noise whatever the motion; a head that turns shows parallax (nose
against cheeks, face against ears) the homography cannot explain.  The score
is log(residual / motion / `PAD_MOTION_PLANAR_RATIO`) (median over moving
pairs; residual and motion in eye distances); higher is more bona fide.  When
the face barely moves (or too few points track) the cue cannot tell and
reports `CueUnavailable("too_little_motion")`: it lowers the assurance, it
never passes by default.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from limen import thresholds
from limen.bio.face.detect import Box
from limen.pad.contract import CueResult, CueScore, CueUnavailable, Purpose
from limen.pad.faces import FaceView, PadSample


def grey(view: FaceView) -> np.ndarray:
    """The grey frame the tracker reads (converted once per frame by `MotionCue`, shared by its two pairs)."""
    return np.asarray(cv2.cvtColor(view.frame.rgb, cv2.COLOR_RGB2GRAY))


def pair_motion(a: FaceView, b: FaceView,
                greys: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[float, float, int] | None:
    """(motion, parallax residual, tracked points) between two views, in eye distances; None if untrackable.

    `greys` are the two frames' `grey(view)` when the caller already has them.
    """
    if a.frame.rgb.shape != b.frame.rgb.shape:
        return None
    g0, g1 = greys if greys is not None else (grey(a), grey(b))
    corners = box_corners(g0, a.box)
    if corners is None:
        return None
    p0 = np.concatenate([corners.reshape(-1, 2), a.points]).astype(np.float32)
    start = p0.reshape(-1, 1, 2)
    guess = _landmark_guess(a, b, p0).reshape(-1, 1, 2)
    flags = cv2.OPTFLOW_USE_INITIAL_FLOW
    p1, ok1, _ = cv2.calcOpticalFlowPyrLK(g0, g1, start, guess, winSize=(21, 21), maxLevel=3, flags=flags)
    back, ok2, _ = cv2.calcOpticalFlowPyrLK(g1, g0, p1, start.copy(), winSize=(21, 21), maxLevel=3, flags=flags)
    p1, back = np.asarray(p1).reshape(-1, 2), np.asarray(back).reshape(-1, 2)
    tracked = (np.asarray(ok1).ravel() == 1) & (np.asarray(ok2).ravel() == 1)
    good = tracked & (np.linalg.norm(back - p0, axis=1) < thresholds.PAD_MOTION_FB_PX)
    if good.sum() < thresholds.PAD_MOTION_MIN_POINTS:
        return None
    src, dst = p0[good].astype(np.float64), p1[good].astype(np.float64)
    h, _ = cv2.findHomography(src, dst, 0)
    if h is None or not np.all(np.isfinite(h)):
        return None
    projected = cv2.perspectiveTransform(src.reshape(-1, 1, 2), h).reshape(-1, 2)
    eye = max(a.eye_distance, 1.0)
    residual = float(np.sqrt(np.mean(np.sum((projected - dst) ** 2, axis=1)))) / eye
    flow = dst - src
    motion = float(np.sqrt(np.mean(np.sum((flow - flow.mean(axis=0)) ** 2, axis=1)))) / eye
    return motion, residual, int(good.sum())


# The corners are OpenCV's on the whole frame, masked to the box, found on the part of the frame that decides
# them: every row from the top (the corner measure's box sums run down each column from row 0, so a frame cut
# above the box changes their last bits, up to 6e-11) down to the box's bottom + `_CORNER_MARGIN_PX`, and
# columns from a multiple of `_CORNER_COLUMN_ALIGN` for a multiple of it (or to the frame's right edge): its
# vector loops then cover the same pixels in the same lanes as on the whole frame (a cut at any column leaves a
# scalar tail whose last bits differ; 64 covers vectors up to 512 bits, 64 uint8 lanes).  The margin covers the
# Sobel, block and dilation radii (1 px each).
# Same corners, bit for bit (tests/pad/test_motion.py), on a third of the pixels.
_CORNER_MARGIN_PX = 4
_CORNER_COLUMN_ALIGN = 64


def box_corners(g: np.ndarray, box: Box) -> np.ndarray | None:
    """`cv2.goodFeaturesToTrack` of the grey frame `g` masked to `box` (frame pixels), as on the whole frame."""
    h, w = g.shape[:2]
    align = _CORNER_COLUMN_ALIGN
    x0 = max(0, box.left - _CORNER_MARGIN_PX) // align * align
    x1 = min(w, x0 + -(-(min(w, box.right + _CORNER_MARGIN_PX) - x0) // align) * align)
    y1 = min(h, box.bottom + _CORNER_MARGIN_PX)
    if box.left < 0 or box.top < 0:  # a box beyond the frame's edge masks as NumPy's negative indices do
        x0, x1, y1 = 0, w, h
    part = g[:y1, x0:x1]
    mask = np.zeros_like(part)
    mask[box.top : box.bottom, box.left - x0 : box.right - x0] = 255
    corners = cv2.goodFeaturesToTrack(part, maxCorners=thresholds.PAD_MOTION_MAX_POINTS, qualityLevel=0.01,
                                      minDistance=max(3, box.width // 25), mask=mask)
    if corners is None:
        return None
    return np.asarray(corners + np.array([x0, 0], dtype=np.float32))


def _landmark_guess(a: FaceView, b: FaceView, points: np.ndarray) -> np.ndarray:
    """Where `points` should land in `b`: the similarity between the two landmark sets (large moves)."""
    m, _ = cv2.estimateAffinePartial2D(a.points.astype(np.float32), b.points.astype(np.float32))
    if m is None or not np.all(np.isfinite(m)):
        return points.copy()
    return (points @ m[:, :2].T + m[:, 2]).astype(np.float32)


class MotionCue:
    """Planar-motion (homography parallax) cue over consecutive usable frames."""

    name = "motion"

    def score(self, sample: PadSample, purpose: Purpose) -> CueResult:
        if len(sample.faces) < 2:
            return CueUnavailable(self.name, "single_frame")
        greys = [grey(f) for f in sample.faces]  # each frame converted once, shared by its two pairs
        pairs = [pair_motion(a, b, (g0, g1))
                 for a, b, g0, g1 in zip(sample.faces[:-1], sample.faces[1:], greys[:-1], greys[1:], strict=True)]
        measured = [p for p in pairs if p is not None]
        if not measured:
            return CueUnavailable(self.name, "untrackable")
        moving = [p for p in measured if p[0] >= thresholds.PAD_MOTION_MIN_MOTION]
        if len(moving) < thresholds.PAD_MOTION_MIN_PAIRS:
            return CueUnavailable(self.name, "too_little_motion")
        ratio = float(np.median([p[1] / p[0] for p in moving]))
        score = math.log(max(ratio, 1e-6) / thresholds.PAD_MOTION_PLANAR_RATIO)
        evidence = {
            "pairs": float(len(moving)),
            "motion": round(float(np.median([p[0] for p in moving])), 5),
            "parallax": round(float(np.median([p[1] for p in moving])), 5),
            "parallax_ratio": round(ratio, 4),
            "points": float(min(p[2] for p in moving)),
        }
        return CueScore(self.name, score, 0.0, evidence)
