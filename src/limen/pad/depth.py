"""Depth cue: a live face has relief (nose in front of the cheeks); a print or a screen is a plane or a cylinder.

On the depth map (millimetres, registered to colour) inside the face, per
usable frame:

- **relief**: cheek depth minus nose-tip depth, located from the 5 landmarks;
- **planarity residual**: RMS distance (mm) of the face points to their
  least-squares plane (a flat print or a screen leaves only sensor noise);
- **cylinder residual**: RMS residual of z = a + bX + cY + dX² (a print bent
  around a vertical axis fits it; a nose does not).

Score = log(min(relief / `DEPTH_RELIEF_MIN_MM`, plane / `DEPTH_PLANE_RMS_MIN_MM`,
cylinder / `DEPTH_CYL_RMS_MIN_MM`)), median over frames; threshold 0.  The
thresholds are calibrated on the **simulator** only (`limen lab campaign`).

Before judging, the inputs are checked and the cue is unavailable (never a
pass) when: frames come from different devices, a frame has no depth (a camera
that stopped mid-burst), depth and colour differ in size, intrinsics are
missing, the face has too many holes, or the face region spans an implausible
depth range (streams not registered, or something in front of the face).
"""

from __future__ import annotations

import math

import numpy as np

from limen import thresholds
from limen.pad.contract import CueResult, CueScore, CueUnavailable, Purpose
from limen.pad.faces import FaceView, PadSample


def stream_problem(sample: PadSample, stream: str) -> str | None:
    """Why the `stream` ("depth" or "ir") of this sample cannot be judged, or None."""
    views = sample.faces
    if not views:
        return "no_usable_faces"
    if len({v.frame.device for v in views}) > 1 or (
            sample.capture is not None and len({f.device for f in sample.capture.frames}) > 1):
        return "frames_from_different_devices"
    images = [v.frame.depth if stream == "depth" else v.frame.ir for v in views]
    if all(i is None for i in images):
        return f"no_{stream}_frames"
    if any(i is None for i in images):
        return f"{stream}_stream_stopped"
    for v, img in zip(views, images, strict=True):
        if img is None or img.shape[:2] != v.frame.rgb.shape[:2]:
            return f"{stream}_not_registered_to_colour"
    return None


def face_points(view: FaceView, depth: np.ndarray) -> tuple[np.ndarray, float] | str:
    """(N×3 points in mm of the inner face, valid share) or the reason it cannot be measured."""
    g = view.frame.geometry
    if g is None:
        return "no_intrinsics"
    pts = view.points
    eye_l, eye_r = pts[0:2].mean(axis=0), pts[2:4].mean(axis=0)
    e = max(float(np.linalg.norm(eye_l - eye_r)), 1.0)
    x0, x1 = int(pts[:4, 0].min()), int(pts[:4, 0].max()) + 1  # between the outer eye corners
    y0, y1 = int(min(eye_l[1], eye_r[1]) - 0.35 * e), int(pts[4, 1] + 0.45 * e) + 1
    h, w = depth.shape
    if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
        return "face_outside_depth_image"
    patch = depth[y0:y1, x0:x1].astype(np.float32)
    valid = patch > 0
    share = float(valid.mean())
    vv, uu = np.nonzero(valid)
    z = patch[valid]
    c = g.colour
    xs = (uu + x0 - c.cx) * z / c.fx
    ys = (vv + y0 - c.cy) * z / c.fy
    return np.stack([xs, ys, z], axis=1), share


def relief_mm(view: FaceView, depth: np.ndarray) -> float:
    """Cheek depth minus nose-tip depth (mm); NaN when either region has no measurement."""
    pts = view.points
    eyes = pts[:4].mean(axis=0)
    nose_base = pts[4]
    e = max(view.eye_distance, 1.0)
    tip = eyes + 0.75 * (nose_base - eyes)
    nose = disc(depth, tip, 0.15 * e)
    cheeks = [disc(depth, nose_base + np.array([s * 0.62 * e, -0.15 * e]), 0.12 * e) for s in (-1.0, 1.0)]
    if nose.size == 0 or any(c.size == 0 for c in cheeks):
        return float("nan")
    return float(np.median(np.concatenate(cheeks)) - np.percentile(nose, 10))


def shape_residuals(points: np.ndarray) -> tuple[float, float]:
    """(RMS residual to the best plane, RMS residual to the best vertical cylinder z = a+bX+cY+dX²), mm."""
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    x, y = x - x.mean(), y - y.mean()
    plane = np.stack([np.ones_like(x), x, y], axis=1)
    cyl = np.stack([np.ones_like(x), x, y, x * x], axis=1)
    out = []
    for a in (plane, cyl):
        coef, *_ = np.linalg.lstsq(a, z, rcond=None)
        out.append(float(np.sqrt(np.mean((a @ coef - z) ** 2))))
    return out[0], out[1]


class DepthCue:
    """Relief, planarity and bent-print fit on the registered depth map (simulator-calibrated)."""

    name = "depth"

    def score(self, sample: PadSample, purpose: Purpose) -> CueResult:
        problem = stream_problem(sample, "depth")
        if problem:
            return CueUnavailable(self.name, problem)
        frame_scores, reliefs, planes, cyls, shares = [], [], [], [], []
        for view in sample.faces:
            depth = view.frame.depth
            assert depth is not None
            measured = face_points(view, depth)
            if isinstance(measured, str):
                return CueUnavailable(self.name, measured)
            points, share = measured
            shares.append(share)
            if share < thresholds.DEPTH_MIN_VALID_SHARE or len(points) < 20:
                continue
            lo, hi = np.percentile(points[:, 2], [5, 95])
            if hi - lo > thresholds.DEPTH_MAX_FACE_RANGE_MM:
                return CueUnavailable(self.name, "depth_range_implausible (misregistered or occluded)")
            relief = relief_mm(view, depth)
            plane, cyl = shape_residuals(points)
            if not math.isfinite(relief):
                continue
            ratios = (relief / thresholds.DEPTH_RELIEF_MIN_MM, plane / thresholds.DEPTH_PLANE_RMS_MIN_MM,
                      cyl / thresholds.DEPTH_CYL_RMS_MIN_MM)
            frame_scores.append(math.log(max(min(ratios), 1e-3)))
            reliefs.append(relief)
            planes.append(plane)
            cyls.append(cyl)
        if len(frame_scores) < max(1, len(sample.faces) // 2):
            return CueUnavailable(self.name, f"depth_holes (valid share {min(shares):.2f})")
        evidence = {"relief_mm": round(float(np.median(reliefs)), 2),
                    "plane_rms_mm": round(float(np.median(planes)), 2),
                    "cylinder_rms_mm": round(float(np.median(cyls)), 2), "valid_share": round(float(min(shares)), 3),
                    "frames": float(len(frame_scores))}
        return CueScore(self.name, float(np.median(frame_scores)), 0.0, evidence)


def disc(img: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Measured (> 0) values of `img` within `radius` px of `centre`."""
    r = max(1, int(math.ceil(radius)))
    cx, cy = int(round(float(centre[0]))), int(round(float(centre[1])))
    h, w = img.shape[:2]
    y0, y1, x0, x1 = max(0, cy - r), min(h, cy + r + 1), max(0, cx - r), min(w, cx + r + 1)
    if y0 >= y1 or x0 >= x1:
        return np.empty(0, np.float32)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    patch = img[y0:y1, x0:x1].astype(np.float32)
    keep = ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius * radius) & (patch > 0)
    return patch[keep]
