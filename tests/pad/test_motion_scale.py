"""Could the motion cue track a smaller image and stay as good?  The measurement that kept the full frame.

    nice -n 10 python -m tests.pad.test_motion_scale [--per-run N] [--variant PX,WIN,LEVELS,FB,POINTS ...]
                                                      [--out bench/results/unlock-motion-evidence]

The shipped cue (`limen.pad.motion`) tracks ~80 corners with 21-px Lucas–Kanade windows on the full
640×480 frames (13 ms of CPU per 5-frame burst).  A *candidate* tracks the face region instead — the
union of the burst's face boxes grown by half a box side, in grey, scaled so the median box side is
PX pixels (never enlarged) — with WIN-px windows, LEVELS pyramid levels, a forward–backward limit of FB
px (at that scale) and at most POINTS corners; everything else (landmark start, homography, the ratio
and its median over moving pairs) is the shipped cue's.  Both score the same located bursts:

- live (real): 5 consecutive frames of a nuaa-dev live run, every non-overlapping window of every run
  (the construction of `limen.lab.recapture.build_bursts`, which `limen lab pad --bursts` reads);
- print (real): the same windows over nuaa-dev's print runs (photos moved by hand);
- **simulated** hand-held prints and screens: each live window's first frame through
  `recapture.simulate_burst` (`build_bursts`' seed rule);
- **simulated** turned prints: each live run's first frame as a flat print yawed or tilted 0–16° over a
  5-frame burst (`challenge_calibration.turned_print`).

A live burst judged planar is the cue's false reject; an attack judged planar is a detection.  The
report gives both at `PAD_MOTION_PLANAR_RATIO` and at a threshold recalibrated to the same margin below
the lowest live burst as the shipped cue has (0.35 / 0.455), and the live-vs-attack AUC per kind.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from limen import thresholds
from limen.capture import Capture, Frame, load_image
from limen.pad import faces
from limen.pad.contract import CueResult, CueScore, CueUnavailable, Purpose
from limen.pad.faces import FaceView, PadSample
from limen.pad.motion import MotionCue
from tests.conftest import SHARED_DATA, shared

FRAMES = 5
TURN_ANGLES = (0.0, 4.0, 8.0, 12.0, 16.0)
MARGIN = 0.5  # face boxes grown by this many box sides


@dataclass(frozen=True)
class Variant:
    """A candidate's tracking settings."""

    face_px: int
    window: int
    levels: int
    fb_px: float
    points: int

    @property
    def name(self) -> str:
        return f"px{self.face_px} w{self.window} l{self.levels} fb{self.fb_px} n{self.points}"


# The variants measured (bench/results/unlock-motion-evidence.md); px 9999: the full scale, cropped.
MEASURED = (Variant(96, 11, 2, 1.0, 80), Variant(96, 11, 2, 0.5, 80), Variant(112, 13, 2, 1.0, 80),
            Variant(112, 13, 2, 0.5, 80), Variant(9999, 17, 2, 1.0, 50), Variant(9999, 21, 2, 1.0, 40),
            Variant(160, 17, 2, 1.0, 40))


# ------------------------------------------------------------------ the candidate


def region_of(views: Sequence[FaceView], face_px: int) -> tuple[int, int, int, int, float]:
    """(left, top, right, bottom, scale): the views' face boxes grown by MARGIN sides, at the face scale."""
    side = float(np.median([max(v.box.width, v.box.height, 1) for v in views]))
    grow = int(round(MARGIN * side))
    h, w = views[0].frame.rgb.shape[:2]
    return (max(0, min(v.box.left for v in views) - grow), max(0, min(v.box.top for v in views) - grow),
            min(w, max(v.box.right for v in views) + grow), min(h, max(v.box.bottom for v in views) + grow),
            min(1.0, face_px / side))


def region_grey(view: FaceView, region: tuple[int, int, int, int, float]) -> np.ndarray:
    """The region in grey at its scale: Gaussian halvings, then bilinear for the last factor (≤ 2)."""
    left, top, right, bottom, scale = region
    g = cv2.cvtColor(view.frame.rgb[top:bottom, left:right], cv2.COLOR_RGB2GRAY)
    if scale == 1.0:
        return np.asarray(g)
    size = (max(1, round((right - left) * scale)), max(1, round((bottom - top) * scale)))
    while g.shape[1] > 2 * size[0] and g.shape[0] > 2 * size[1]:
        g = cv2.pyrDown(g)
    return np.asarray(cv2.resize(g, size, interpolation=cv2.INTER_LINEAR))


def region_pair(a: FaceView, b: FaceView, region: tuple[int, int, int, int, float], g0: np.ndarray,
                g1: np.ndarray, v: Variant) -> tuple[float, float] | None:
    """(motion, residual) in eye distances, as `motion.pair_motion`, on the region."""
    left, top, _, _, s = region
    origin = np.array([left, top], dtype=np.float64)
    box = np.rint((np.array([[a.box.left, a.box.top], [a.box.right, a.box.bottom]]) - origin) * s).astype(int)
    x0, y0 = (int(c) for c in np.maximum(box[0], 0))
    x1, y1 = (int(c) for c in np.minimum(box[1], (g0.shape[1], g0.shape[0])))
    if x1 - x0 < 3 or y1 - y0 < 3:
        return None
    corners = cv2.goodFeaturesToTrack(g0[y0:y1, x0:x1], maxCorners=v.points, qualityLevel=0.01,
                                      minDistance=max(3, int(a.box.width * s) // 25))
    if corners is None:
        return None
    pa, pb = ((a.points - origin) * s).astype(np.float32), ((b.points - origin) * s).astype(np.float32)
    p0 = np.concatenate([corners.reshape(-1, 2) + (x0, y0), pa]).astype(np.float32)
    m, _ = cv2.estimateAffinePartial2D(pa, pb)
    guess = p0.copy() if m is None or not np.all(np.isfinite(m)) else (p0 @ m[:, :2].T + m[:, 2]).astype(np.float32)
    start, flags = p0.reshape(-1, 1, 2), cv2.OPTFLOW_USE_INITIAL_FLOW
    win = (v.window, v.window)
    p1, ok1, _ = cv2.calcOpticalFlowPyrLK(g0, g1, start, guess.reshape(-1, 1, 2), winSize=win, maxLevel=v.levels,
                                          flags=flags)
    back, ok2, _ = cv2.calcOpticalFlowPyrLK(g1, g0, p1, start.copy(), winSize=win, maxLevel=v.levels, flags=flags)
    p1, back = np.asarray(p1).reshape(-1, 2), np.asarray(back).reshape(-1, 2)
    good = (np.asarray(ok1).ravel() == 1) & (np.asarray(ok2).ravel() == 1) & (
        np.linalg.norm(back - p0, axis=1) < v.fb_px)
    if good.sum() < thresholds.PAD_MOTION_MIN_POINTS:
        return None
    src, dst = p0[good].astype(np.float64), p1[good].astype(np.float64)
    h, _ = cv2.findHomography(src, dst, 0)
    if h is None or not np.all(np.isfinite(h)):
        return None
    projected = cv2.perspectiveTransform(src.reshape(-1, 1, 2), h).reshape(-1, 2)
    eye = max(a.eye_distance * s, 1e-6)
    flow = dst - src
    return (float(np.sqrt(np.mean(np.sum((flow - flow.mean(axis=0)) ** 2, axis=1)))) / eye,
            float(np.sqrt(np.mean(np.sum((projected - dst) ** 2, axis=1)))) / eye)


def region_cue(sample: PadSample, v: Variant) -> CueResult:
    """The candidate cue: `MotionCue.score`'s aggregation over `region_pair`."""
    views = [f for f in sample.faces if f.frame.rgb.shape == sample.faces[0].frame.rgb.shape] if sample.faces else []
    if len(views) < 2:
        return CueUnavailable("motion", "single_frame")
    region = region_of(views, v.face_px)
    greys = [region_grey(f, region) for f in views]
    pairs = [region_pair(a, b, region, g0, g1, v)
             for a, b, g0, g1 in zip(views[:-1], views[1:], greys[:-1], greys[1:], strict=True)]
    measured = [p for p in pairs if p is not None]
    if not measured:
        return CueUnavailable("motion", "untrackable")
    moving = [p for p in measured if p[0] >= thresholds.PAD_MOTION_MIN_MOTION]
    if len(moving) < thresholds.PAD_MOTION_MIN_PAIRS:
        return CueUnavailable("motion", "too_little_motion")
    ratio = float(np.median([r / m for m, r in moving]))
    return CueScore("motion", math.log(max(ratio, 1e-6) / thresholds.PAD_MOTION_PLANAR_RATIO), 0.0,
                    {"parallax_ratio": round(ratio, 4)})


# ------------------------------------------------------------------ the comparison


def cues(variants: Sequence[Variant]) -> dict[str, Callable[[PadSample], CueResult]]:
    shipped: dict[str, Callable[[PadSample], CueResult]] = {
        "full_frame": lambda s: MotionCue().score(s, Purpose.VERIFY)}
    return shipped | {v.name: (lambda s, v=v: region_cue(s, v)) for v in variants}


def outcome(score: Callable[[PadSample], CueResult], sample: PadSample) -> dict[str, Any]:
    t = time.process_time()
    r = score(sample)
    ms = round((time.process_time() - t) * 1000, 3)
    if isinstance(r, CueScore):
        return {"judged": True, "planar": r.says_attack, "ratio": float(r.evidence["parallax_ratio"]), "cpu_ms": ms}
    return {"judged": False, "planar": False, "ratio": None, "reason": r.reason, "cpu_ms": ms}


def runs(folder: Path) -> dict[str, list[Path]]:
    """Frames of each nuaa-dev run (subject, glasses, position, session), in frame order."""
    out: dict[str, list[Path]] = {}
    for f in sorted(folder.glob("*/*.jpg")):
        out.setdefault("_".join(f.stem.split("_")[:4]), []).append(f)
    return {k: sorted(v, key=lambda p: int(p.stem.split("_")[4])) for k, v in out.items()}


def windows(folder: Path, per_run: int) -> Iterator[tuple[str, list[Path]]]:
    """`build_bursts`' windows: `per_run` non-overlapping `FRAMES`-frame windows per run (0: all)."""
    for key, run in sorted(runs(folder).items()):
        if len(run) < FRAMES:
            continue
        limit = len(run) // FRAMES if per_run <= 0 else per_run
        step = max(FRAMES, len(run) // limit)
        for start in range(0, min(len(run) - FRAMES + 1, limit * step), step):
            yield f"{key}_{start}", run[start : start + FRAMES]


def capture(images: Sequence[np.ndarray]) -> Capture:
    return Capture(tuple(Frame(rgb=img, t=float(i)) for i, img in enumerate(images)))


def bursts(nuaa: Path, per_run: int, species: Sequence[str] | None = None,
           turned: bool = True) -> Iterator[tuple[str, str, Capture]]:
    """(kind, name, burst) for every burst of the comparison (`species`: the simulated ones, default all)."""
    from limen.lab.challenge_calibration import turned_print
    from limen.lab.recapture import SPECIES, _stable, simulate_burst

    for name, files in windows(nuaa / "live", per_run):
        images = [load_image(f) for f in files]
        yield "live", name, capture(images)
        for sp in [s.value for s in SPECIES] if species is None else species:
            yield f"sim_{sp}", name, capture(simulate_burst(images[0], sp, seed=_stable(name), frames=FRAMES))
    for name, files in windows(nuaa / "print", per_run):
        yield "print_nuaa", name, capture([load_image(f) for f in files])
    if turned:
        for key, run in sorted(runs(nuaa / "live").items()):
            first = load_image(run[0])
            yield "sim_turned_yaw", key, capture([turned_print(first, a, 0.0) for a in TURN_ANGLES])
            yield "sim_turned_pitch", key, capture([turned_print(first, 0.0, a) for a in TURN_ANGLES])


def compare(nuaa: Path, per_run: int, variants: Sequence[Variant], species: Sequence[str] | None = None,
            turned: bool = True, log: bool = False) -> list[dict[str, Any]]:
    """One row per burst: kind, name, usable faces and each cue's outcome (each burst located once)."""
    rows: list[dict[str, Any]] = []
    scorers = cues(variants)
    for n, (kind, name, burst) in enumerate(bursts(nuaa, per_run, species, turned)):
        sample = faces.locate(burst)
        rows.append({"kind": kind, "name": name, "faces": len(sample.faces)}
                    | {cue: outcome(score, sample) for cue, score in scorers.items()})
        if log and n % 50 == 0:
            print(f"  {n} bursts, load {os.getloadavg()[0]:.1f}", flush=True)
    return rows


def report(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per cue: CPU, live judged / lowest ratio / false rejects, attacks flagged per kind at 0.35 and at the
    shipped cue's live margin, and live-vs-attack AUC per kind (judged bursts)."""
    names = [k for k in rows[0] if k not in ("kind", "name", "faces")]
    kinds = sorted({r["kind"] for r in rows} - {"live"})

    def ratios(kind: str, cue: str) -> np.ndarray:
        return np.array([r[cue]["ratio"] for r in rows if r["kind"] == kind and r[cue]["judged"]])

    shipped_margin = thresholds.PAD_MOTION_PLANAR_RATIO / float(ratios("live", "full_frame").min())
    out: dict[str, Any] = {}
    for cue in names:
        live = ratios("live", cue)
        entry: dict[str, Any] = {"cpu_ms_median": round(float(np.median([r[cue]["cpu_ms"] for r in rows])), 2),
                                 "live_bursts": sum(r["kind"] == "live" for r in rows), "live_judged": int(live.size),
                                 "live_lowest_ratio": round(float(live.min()), 4)}
        for label, t in (("at_0.35", thresholds.PAD_MOTION_PLANAR_RATIO),
                         ("at_shipped_margin", shipped_margin * float(live.min()))):
            flagged = {k: int((ratios(k, cue) < t).sum()) for k in kinds}
            entry[label] = {"threshold": round(t, 4), "live_planar": int((live < t).sum()),
                            "attacks_planar": sum(flagged.values())} | flagged
        entry["auc"] = {k: round(float(np.mean(ratios(k, cue)[:, None] < live[None, :])), 4) for k in kinds}
        entry["judged"] = {k: int(ratios(k, cue).size) for k in kinds}
        out[cue] = entry
    out["bursts"] = {k: sum(r["kind"] == k for r in rows) for k in ["live", *kinds]}
    return out


def markdown(summary: dict[str, Any], head: str) -> str:
    kinds = list(summary["bursts"])[1:]
    cues_ = [k for k in summary if k != "bursts"]
    lines = [head, "", "bursts: " + ", ".join(f"{k} {n}" for k, n in summary["bursts"].items()), "",
             "| cue | CPU ms/burst (median) | live judged | lowest live ratio | threshold | live planar | "
             + " | ".join(kinds) + " | attacks planar |", "|" + " --- |" * (6 + len(kinds) + 1)]
    for cue in cues_:
        e = summary[cue]
        for label in ("at_0.35", "at_shipped_margin"):
            x = e[label]
            lines.append(f"| {cue} | {e['cpu_ms_median']} | {e['live_judged']} | {e['live_lowest_ratio']} | "
                         f"{x['threshold']} ({label}) | {x['live_planar']} | "
                         + " | ".join(f"{x[k]}/{e['judged'][k]}" for k in kinds) + f" | {x['attacks_planar']} |")
    lines += ["", "AUC live vs attack (judged bursts; 1 = every attack below every live burst)", "",
              "| cue | " + " | ".join(kinds) + " |", "|" + " --- |" * (1 + len(kinds))]
    lines += [f"| {cue} | " + " | ".join(str(summary[cue]["auc"][k]) for k in kinds) + " |" for cue in cues_]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--nuaa", type=Path, default=SHARED_DATA / "nuaa-dev")
    ap.add_argument("--per-run", type=int, default=0, help="windows per run (0: every non-overlapping window)")
    ap.add_argument("--variant", action="append", default=[], help="PX,WIN,LEVELS,FB,POINTS (default: MEASURED)")
    ap.add_argument("--out", type=Path, default=None, help="write OUT.json (summary) and OUT.md")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    variants = [Variant(int(p), int(w), int(lv), float(fb), int(n))
                for p, w, lv, fb, n in (s.split(",") for s in args.variant)] or list(MEASURED)
    load = os.getloadavg()[0]
    rows = compare(args.nuaa, args.per_run, variants, log=True)
    summary = report(rows) | {"variants": [asdict(v) for v in variants]}
    head = (f"# motion cue: full frame (shipped) vs face-region candidates\n\n`python -m tests.pad.test_motion_scale "
            f"--per-run {args.per_run}`; load {load:.1f} at start, {os.getloadavg()[0]:.1f} at the end; CPU time "
            f"of each cue on the same located bursts (nuaa-dev: development data; sim_*: **simulated**)")
    text = markdown({k: v for k, v in summary.items() if k != "variants"}, head)
    print(text)
    if args.out is not None:
        args.out.with_suffix(".json").write_text(json.dumps(summary, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(text)
    return 0


# ------------------------------------------------------------------ a test that keeps the harness working


def test_the_comparison_runs_on_a_sample_of_real_bursts() -> None:
    """One window per nuaa-dev run, no simulation: the shipped cue refuses no live burst, flags real prints."""
    rows = compare(shared("nuaa-dev"), per_run=1, variants=MEASURED[-1:], species=(), turned=False)
    summary = report(rows)
    shipped, candidate = summary["full_frame"], summary[MEASURED[-1].name]
    assert summary["bursts"]["live"] >= 12 and summary["bursts"]["print_nuaa"] >= 12
    assert shipped["live_judged"] >= 10 and shipped["at_0.35"]["live_planar"] == 0
    assert shipped["at_0.35"]["print_nuaa"] > shipped["judged"]["print_nuaa"] // 2
    assert candidate["live_judged"] >= 10  # the candidate ran on the same bursts
    assert "| full_frame |" in markdown(summary, "head")


if __name__ == "__main__":
    raise SystemExit(main())
