"""Eye-region cue: real eyes sit in smooth sockets; behind a mask they sit in holes with a sharp rim.

On the registered depth map around each eye (from the landmarks), the depth
is sampled along 24 rays from the eye centre outwards.  A ray *steps* where
its profile bends by ≥ `EYES_STEP_MM` (second difference): a mask's edge, as
thick as the mask plus its stand-off, where a live socket rises smoothly.
Sensor noise makes a ray step now and then; a rim makes the *same* rays step
in most frames.  Score = log(`EYES_MAX_STEP_SHARE` / share of rays that step
in at least half of the frames); threshold 0 (at enrolment the stricter
`EYES_MAX_STEP_SHARE_ENROL`).  A print or a screen has
neither socket nor rim and is left to the depth cue.  Calibrated on the
**simulator** only.  Unavailable (never a pass) on the depth cue's input
problems, when the eyes fall on depth holes, or with fewer than 2 frames.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from limen import thresholds
from limen.pad.contract import CueResult, CueScore, CueUnavailable, Purpose
from limen.pad.depth import stream_problem
from limen.pad.faces import FaceView, PadSample

RAYS = 24
MIN_SAMPLES = 6  # measured depth samples a ray needs to count


def ray_steps(view: FaceView) -> np.ndarray | None:
    """Per ray around both eyes: 1 = steps, 0 = smooth, NaN = too few measurements; None if off the image."""
    raw = view.frame.depth
    assert raw is not None
    e = max(view.eye_distance, 1.0)
    depth = cv2.medianBlur(np.ascontiguousarray(raw, dtype=np.float32), 3)  # sensor noise, not the rim
    angles = np.linspace(0, 2 * np.pi, RAYS, endpoint=False)
    radii = np.linspace(0.15 * e, 0.45 * e, 12)
    h, w = depth.shape
    out = np.full(2 * RAYS, np.nan)
    for k, i in enumerate((0, 2)):
        centre = view.points[i : i + 2].mean(axis=0)
        xs = np.round(centre[0] + np.outer(np.cos(angles), radii)).astype(int)
        ys = np.round(centre[1] + np.outer(np.sin(angles), radii * 0.7)).astype(int)
        if xs.min() < 0 or ys.min() < 0 or xs.max() >= w or ys.max() >= h:
            return None
        for j, ray in enumerate(depth[ys, xs]):
            r = ray[ray > 0]
            if len(r) >= MIN_SAMPLES:
                bend = np.abs(r[2:] - 2 * r[1:-1] + r[:-2])  # a step bends the profile; a smooth socket barely
                out[k * RAYS + j] = float(bend.max() >= thresholds.EYES_STEP_MM)
    return out


def rim_share(sample: PadSample) -> float | str:
    """Share of rays that step in at least half of the frames, or why it cannot be measured."""
    per_frame = [ray_steps(v) for v in sample.faces]
    usable = np.array([r for r in per_frame if r is not None and np.isfinite(r).mean() >= 0.75])
    if len(usable) < max(2, len(sample.faces) // 2):
        return "eyes_on_depth_holes"
    frequency = np.nanmean(usable, axis=0)
    measured = np.isfinite(frequency)
    return float((frequency[measured] >= 0.5).mean())


class EyeRegionCue:
    """Eye-hole rim on the depth map, consistent across frames (simulator-calibrated)."""

    name = "eyes"

    def score(self, sample: PadSample, purpose: Purpose) -> CueResult:
        problem = stream_problem(sample, "depth")
        if problem:
            return CueUnavailable(self.name, problem)
        share = rim_share(sample)
        if isinstance(share, str):
            return CueUnavailable(self.name, share)
        score = math.log(thresholds.EYES_MAX_STEP_SHARE / max(share, 0.01))
        # enrolment holds the same score to the stricter share (a mask must not become a template)
        limit = thresholds.EYES_MAX_STEP_SHARE_ENROL if purpose is Purpose.ENROL else thresholds.EYES_MAX_STEP_SHARE
        threshold = math.log(thresholds.EYES_MAX_STEP_SHARE / limit)
        return CueScore(self.name, score, threshold, {"rim_step_share": round(share, 3),
                                                      "frames": float(len(sample.faces))})
