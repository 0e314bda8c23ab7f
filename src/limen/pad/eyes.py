"""Eye-region cue: real eyes sit in smooth sockets; behind a mask they sit in holes with a sharp rim.

On the registered depth map around each eye (from the landmarks), the depth
is sampled along rays from the eye centre outwards.  A mask's eye hole shows
as a *step* on most rays — the mask's edge, as thick as the mask plus its
stand-off — where a live socket rises smoothly.  Per frame: the share of rays
whose second difference reaches `EYES_STEP_MM` (a step, not a curve); score =
log(`EYES_MAX_STEP_SHARE` / share), median over frames; threshold 0.  A print
or screen has neither socket nor rim and is left to the depth cue.
Calibrated on the **simulator** only.  Unavailable (never a pass) on the same
input problems as the depth cue, and when the eyes fall on depth holes.
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


def step_share(view: FaceView) -> float:
    """Share of rays around both eyes whose depth jumps by ≥ `EYES_STEP_MM` (NaN if unmeasurable)."""
    raw = view.frame.depth
    assert raw is not None
    e = max(view.eye_distance, 1.0)
    depth = cv2.medianBlur(np.ascontiguousarray(raw, dtype=np.float32), 3)  # sensor noise, not the rim
    steps, measured = 0, 0
    angles = np.linspace(0, 2 * np.pi, RAYS, endpoint=False)
    radii = np.linspace(0.15 * e, 0.45 * e, 12)
    h, w = depth.shape
    for i in (0, 2):
        centre = view.points[i : i + 2].mean(axis=0)
        xs = np.round(centre[0] + np.outer(np.cos(angles), radii * 1.0)).astype(int)
        ys = np.round(centre[1] + np.outer(np.sin(angles), radii * 0.7)).astype(int)
        if xs.min() < 0 or ys.min() < 0 or xs.max() >= w or ys.max() >= h:
            return float("nan")
        prof = depth[ys, xs].astype(np.float32)
        for ray in prof:
            ok = ray > 0
            if ok.sum() < 6:
                continue
            r = ray[ok]
            bend = np.abs(r[2:] - 2 * r[1:-1] + r[:-2])  # a step bends the profile; a smooth socket barely
            measured += 1
            steps += int(bend.max() >= thresholds.EYES_STEP_MM)
    return steps / measured if measured >= RAYS else float("nan")


class EyeRegionCue:
    """Eye-hole rim on the depth map (simulator-calibrated)."""

    name = "eyes"

    def score(self, sample: PadSample, purpose: Purpose) -> CueResult:
        problem = stream_problem(sample, "depth")
        if problem:
            return CueUnavailable(self.name, problem)
        shares = [s for s in (step_share(v) for v in sample.faces) if math.isfinite(s)]
        if len(shares) < max(1, len(sample.faces) // 2):
            return CueUnavailable(self.name, "eyes_on_depth_holes")
        share = float(np.median(shares))
        score = math.log(thresholds.EYES_MAX_STEP_SHARE / max(share, 0.01))
        return CueScore(self.name, score, 0.0, {"rim_step_share": round(share, 3), "frames": float(len(shares))})
