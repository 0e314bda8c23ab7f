"""Calibration of the head-move challenge (`limen.pad.challenge`) on data that exists here.

    python -m limen.lab.challenge_calibration [--nuaa DIR] [--lfw DIR] [--out F.json]

No recording of a person performing requested moves exists here, so the
thresholds are bounded from the two sides that can be measured:

- **from below, by live people not moving** (real): every usable frame of every
  nuaa-dev live run (one subject, glasses, position and session each; people
  sitting still in front of a webcam).  `|signed yaw|` of a resting face, and
  the nose drop's deviation from its run's median, must not read as a move, or
  the neutral frames a kiosk asks for break the sequence and a real person is
  refused.  The quantiles over all frames are reported; the thresholds sit
  above the 99.9th.
- **by a flat medium that is turned** (simulated): a nuaa-dev live frame
  rotated as a flat plane by a pinhole homography (focal length 1.0 image
  width, about a 53° field of view, like a webcam), yaw and pitch 0–45°.
  Turning a print does not move the nose against the eyes, tilting it back
  foreshortens the nose drop: the figures say which move a print can fake by
  pose alone (then only the parallax check stops it) and give the parallax
  ratio of every pair of poses, which must stay below `PAD_MOTION_PLANAR_RATIO`.
- **what a turned head reaches** (real, uncontrolled): `|signed yaw|` over
  lfw-subset (press photos, heads in natural poses), for the share of ordinary
  poses a threshold counts as "turned".

Geometry (for the docs): with the nose tip ~0.5 eye distances in front of the
eye line, a head yawed by θ shows signed yaw ≈ 0.5·tan θ; 0.25 ≈ 27°.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from limen import thresholds
from limen.capture import Capture, Frame, load_image
from limen.pad import faces
from limen.pad.challenge import nose_drop, signed_yaw
from limen.pad.faces import FaceView
from limen.pad.motion import pair_motion

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data"
QUANTILES = (0.5, 0.9, 0.99, 0.999, 1.0)


@dataclass(frozen=True)
class Pose:
    yaw: float
    drop: float


def pose(view: FaceView) -> Pose:
    return Pose(signed_yaw(view), nose_drop(view))


def nuaa_runs(nuaa_live: Path) -> dict[str, list[Path]]:
    """Frames of each nuaa-dev live run (subject, glasses, position, session), in frame order."""
    runs: dict[str, list[Path]] = {}
    for f in sorted(nuaa_live.glob("*/*.jpg")):
        runs.setdefault("_".join(f.stem.split("_")[:4]), []).append(f)
    return {k: sorted(v, key=lambda p: int(p.stem.split("_")[4])) for k, v in runs.items()}


def run_poses(files: Sequence[Path]) -> list[Pose]:
    out = []
    for f in files:
        sample = faces.locate(Capture.single(load_image(f)))
        if sample.faces:
            out.append(pose(sample.faces[0]))
    return out


def still_deviation(runs: dict[str, list[Pose]]) -> dict[str, np.ndarray]:
    """Per frame: |yaw| (absolute: the challenge reads it so) and |drop − run median| (pitch is relative)."""
    yaw = np.concatenate([[abs(p.yaw) for p in r] for r in runs.values() if r])
    drop = np.concatenate([[abs(p.drop - float(np.median([q.drop for q in r]))) for p in r]
                           for r in runs.values() if r])
    yaw_rel = np.concatenate([[abs(p.yaw - float(np.median([q.yaw for q in r]))) for p in r]
                              for r in runs.values() if r])
    return {"abs_yaw": yaw, "yaw_minus_run_median": yaw_rel, "drop_minus_run_median": drop}


def plane_homography(width: int, height: int, yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """The image of a flat medium facing the camera, rotated about its centre (pinhole, f = image width)."""
    f = float(width)
    k = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]])
    a, b = math.radians(yaw_deg), math.radians(pitch_deg)
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    r = ry @ rx
    d = 2.0 * f  # the medium's distance, in the focal length's units (the face fills ~a third of the frame)
    # plane z = d, normal (0,0,1): H = K (R + t nᵀ / d) K⁻¹ with the rotation about the plane's centre
    t = np.array([0, 0, d]) - r @ np.array([0, 0, d])
    h = k @ (r + np.outer(t, [0, 0, 1]) / d) @ np.linalg.inv(k)
    return np.asarray(h / h[2, 2])


def turned_print(rgb: np.ndarray, yaw_deg: float, pitch_deg: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    return np.ascontiguousarray(cv2.warpPerspective(rgb, plane_homography(w, h, yaw_deg, pitch_deg), (w, h),
                                                    flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))


def print_poses(rgb: np.ndarray, angles: Sequence[float]) -> dict[str, list[dict[str, float]]]:
    """Pose read off a flat print turned (yaw) and tilted (pitch) by each angle, relative to the flat one."""
    out: dict[str, list[dict[str, float]]] = {"yaw": [], "pitch": []}
    views: dict[tuple[str, float], FaceView] = {}
    for axis in ("yaw", "pitch"):
        for a in angles:
            img = turned_print(rgb, a if axis == "yaw" else 0.0, a if axis == "pitch" else 0.0)
            sample = faces.locate(Capture((Frame(rgb=img),)))
            if sample.faces:
                views[(axis, a)] = sample.faces[0]
    base = views.get(("yaw", 0.0))
    if base is None:
        return out
    p0 = pose(base)
    for (axis, a), v in sorted(views.items()):
        p = pose(v)
        m = pair_motion(base, v) if a else None
        out[axis].append({"angle_deg": a, "yaw": round(p.yaw - p0.yaw, 4), "drop_change": round(p0.drop - p.drop, 4),
                          "parallax_ratio": round(m[1] / m[0], 4) if m is not None and m[0] > 0 else float("nan")})
    return out


def summarise(values: np.ndarray) -> dict[str, float]:
    return {f"q{q:g}": round(float(np.quantile(values, q)), 4) for q in QUANTILES} | {"n": float(values.size)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Calibrate the head-move challenge on real and simulated poses.")
    ap.add_argument("--nuaa", type=Path, default=SHARED / "nuaa-dev")
    ap.add_argument("--lfw", type=Path, default=SHARED / "lfw-subset")
    ap.add_argument("--stride", type=int, default=1, help="every N-th frame of each run")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    runs = nuaa_runs(args.nuaa / "live")
    poses: dict[str, list[Pose]] = {}
    for n, (k, files) in enumerate(sorted(runs.items())):
        if n % 10 == 0:
            print(f"  run {n}/{len(runs)} load {os.getloadavg()[0]:.1f}", file=sys.stderr)
        poses[k] = run_poses(files[:: args.stride])
    still = still_deviation(poses)
    lfw = np.array([abs(p.yaw) for p in run_poses(sorted(args.lfw.glob("*/*.jpg")))])
    first = sorted(runs.items())[0][1][0]
    prints = print_poses(load_image(first), (0.0, 10.0, 20.0, 30.0, 45.0))
    report = {
        "live_still_nuaa_frames": {k: summarise(v) for k, v in still.items()},
        "lfw_abs_yaw": summarise(lfw) | {"share_at_or_above_min_yaw": round(float(np.mean(
            lfw >= thresholds.PAD_CHALLENGE_MIN_YAW)), 4)},
        "flat_print_turned": prints,
        "thresholds": {"PAD_CHALLENGE_MIN_YAW": thresholds.PAD_CHALLENGE_MIN_YAW,
                       "PAD_CHALLENGE_MIN_PITCH": thresholds.PAD_CHALLENGE_MIN_PITCH,
                       "PAD_MOTION_PLANAR_RATIO": thresholds.PAD_MOTION_PLANAR_RATIO},
    }
    text = json.dumps(report, indent=1)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
