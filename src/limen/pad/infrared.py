"""Infrared cue: skin reflects near-IR within a known band; screens are dark, paper and resin too bright.

With the camera's own illuminator, the IR level of a surface is
gain × reflectance × cos(incidence) / z².  Knowing z from the depth map (or,
without depth, from the eye distance), the cue estimates the NIR reflectance
of the forehead and cheeks and compares it with the skin band
[`IR_SKIN_MIN`, `IR_SKIN_MAX`] (850 nm: 0.45–0.60 from dark to light skin;
tones converge in the NIR, so the band is narrow and fair across groups).
Score = log-distance inside the band (negative outside); threshold 0.
Corneal glints (saturated pixels on the eyes) are reported as evidence.

`IR_SIM_GAIN` is the **simulated** camera's gain; a real device needs its own
(one capture of a reference target of known reflectance).  The cue is
unavailable (never a pass) when the emitter is off or the IR image is dark
everywhere, frames mix devices, a frame lacks IR, or sizes differ.
"""

from __future__ import annotations

import math

import numpy as np

from limen import thresholds
from limen.pad.contract import CueResult, CueScore, CueUnavailable, Purpose
from limen.pad.depth import disc, stream_problem
from limen.pad.faces import FaceView, PadSample

AVERAGE_EYE_DISTANCE_MM = 63.0  # adult inter-pupillary distance (mean ≈ 63 mm; Dodgson 2004)


def reflectance(view: FaceView) -> float:
    """Estimated NIR reflectance of the forehead and cheeks (NaN when nothing can be measured)."""
    ir = view.frame.ir
    assert ir is not None
    pts = view.points
    eyes = pts[:4].mean(axis=0)
    nose = pts[4]
    e = max(view.eye_distance, 1.0)
    centres = [eyes - 0.6 * (nose - eyes), nose + np.array([0.6 * e, -0.15 * e]),
               nose + np.array([-0.6 * e, -0.15 * e])]
    values, dists = [], []
    depth = view.frame.depth
    g = view.frame.geometry
    fx = g.colour.fx if g is not None else None
    for c in centres:
        patch = disc(ir.astype(np.float32) + 1.0, c, 0.14 * e) - 1.0  # disc keeps values > 0
        if patch.size == 0:
            continue
        values.append(float(np.mean(patch)))  # the mean: the projector's dots average out
        if depth is not None:
            z = disc(depth, c, 0.14 * e)
            dists.append(float(np.median(z)) if z.size else float("nan"))
        elif fx is not None:
            dists.append(fx * AVERAGE_EYE_DISTANCE_MM / e)
        else:
            dists.append(float("nan"))
    if not values:
        return float("nan")
    level = float(np.mean(values)) - thresholds.IR_AMBIENT_DN
    dist = float(np.nanmedian(dists)) if dists and not all(math.isnan(d) for d in dists) else float("nan")
    return level * dist * dist / (thresholds.IR_SIM_GAIN * thresholds.IR_MEAN_COS)


def glint_share(view: FaceView) -> float:
    """Share of eye-centre pixels at saturation (the illuminator's reflection on the cornea)."""
    ir = view.frame.ir
    assert ir is not None
    e = max(view.eye_distance, 1.0)
    spots = [disc(ir.astype(np.float32) + 1.0, view.points[i : i + 2].mean(axis=0), 0.12 * e) - 1.0 for i in (0, 2)]
    both = np.concatenate(spots)
    return float((both >= 250).mean()) if both.size else 0.0


class InfraredCue:
    """NIR reflectance of skin under the camera's illuminator (simulator-calibrated)."""

    name = "infrared"

    def score(self, sample: PadSample, purpose: Purpose) -> CueResult:
        problem = stream_problem(sample, "ir")
        if problem:
            return CueUnavailable(self.name, problem)
        if any(v.frame.emitter_on is False for v in sample.faces):
            return CueUnavailable(self.name, "ir_emitter_off")
        if all(v.frame.ir is not None and float(np.percentile(v.frame.ir, 99)) < thresholds.IR_MIN_SCENE_DN
               for v in sample.faces):
            return CueUnavailable(self.name, "ir_image_dark (emitter off?)")
        rho = [reflectance(v) for v in sample.faces]
        rho = [r for r in rho if math.isfinite(r)]
        if not rho:
            return CueUnavailable(self.name, "no_distance_for_reflectance")
        r = float(np.median(rho))
        lo, hi = thresholds.IR_SKIN_MIN, thresholds.IR_SKIN_MAX
        score = min(math.log(max(r, 1e-4) / lo), math.log(hi / max(r, 1e-4))) / math.log(hi / lo) * 2.0
        evidence = {"reflectance": round(r, 3), "glint_share": round(float(np.mean([glint_share(v) for v in
                                                                                    sample.faces])), 4)}
        return CueScore(self.name, score, 0.0, evidence)
