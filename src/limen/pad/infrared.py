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

`SubsurfaceCue` (module below) reads the same IR image for a second,
independent property: how sharply the projector's dot pattern comes back.
Light entering skin scatters in the dermis over millimetres before it leaves
(in-vivo μs' ≈ 1.2 mm⁻¹ at 850 nm), so the dots blur; an opaque pigmented
silicone or a paper or resin surface returns them sharper.  Measured on the
forehead and cheeks: the RMS of the high-passed IR image over its mean
(ambient and sensor noise removed), scaled to a reference distance, the
**dot contrast**.  Attack when it exceeds `SUBSURFACE_MAX_CONTRAST_VERIFY`
(`_ENROL`, stricter, at enrolment).  Simulator-calibrated; a real device
needs its own curve (its projector's contrast and its camera's blur).
"""

from __future__ import annotations

import math

import cv2
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


def ir_dark(view: FaceView) -> bool:
    """The IR image is dark everywhere (an emitter that is off): its `IR_SCENE_PERCENTILE` below `IR_MIN_SCENE_DN`."""
    ir = view.frame.ir
    return ir is not None and float(np.percentile(ir, thresholds.IR_SCENE_PERCENTILE)) < thresholds.IR_MIN_SCENE_DN


def glint_share(view: FaceView) -> float:
    """Share of eye-centre pixels at saturation (the illuminator's reflection on the cornea)."""
    ir = view.frame.ir
    assert ir is not None
    e = max(view.eye_distance, 1.0)
    spots = [disc(ir.astype(np.float32) + 1.0, view.points[i : i + 2].mean(axis=0), 0.12 * e) - 1.0 for i in (0, 2)]
    both = np.concatenate(spots)
    return float((both >= 250).mean()) if both.size else 0.0


def ir_unusable(sample: PadSample) -> str:
    """Why the IR stream cannot be judged at all (no stream, emitter off, too dark), or "" when it can."""
    problem = stream_problem(sample, "ir")
    if problem:
        return problem
    if any(v.frame.emitter_on is False for v in sample.faces):
        return "ir_emitter_off"
    if all(ir_dark(v) for v in sample.faces):
        return "ir_image_dark (emitter off?)"
    return ""


class InfraredCue:
    """NIR reflectance of skin under the camera's illuminator (simulator-calibrated)."""

    name = "infrared"

    def score(self, sample: PadSample, purpose: Purpose) -> CueResult:
        unusable = ir_unusable(sample)
        if unusable:
            return CueUnavailable(self.name, unusable)
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


def patch_centres(view: FaceView) -> list[np.ndarray]:
    """Forehead and both cheeks (image px), from the 5 landmarks: the surfaces the IR cues read."""
    pts = view.points
    eyes = pts[:4].mean(axis=0)
    nose = pts[4]
    e = max(view.eye_distance, 1.0)
    return [eyes - 0.6 * (nose - eyes), nose + np.array([0.6 * e, -0.15 * e]), nose + np.array([-0.6 * e, -0.15 * e])]


def _highpass_noise_gain(sigma: float) -> float:
    """Share of white noise's variance that survives `img − GaussianBlur(img, sigma)`."""
    probe = np.zeros((41, 41), np.float32)
    probe[20, 20] = 1.0
    kernel = probe - cv2.GaussianBlur(probe, (0, 0), sigma)
    return float(np.sum(kernel**2))


def dot_contrast(view: FaceView) -> tuple[float, float]:
    """(dot contrast on forehead and cheeks, distance mm) of one frame; NaN when it cannot be measured, and
    an infinite contrast when every patch is overexposed (clipped dots: too bright to judge).

    Contrast = sqrt(var(high-passed IR) − sensor-noise share) / (mean IR − ambient), the median over the
    three patches.  Distance from the depth map at the patches, else from the eye distance.
    """
    ir = view.frame.ir
    assert ir is not None
    img = ir.astype(np.float32)
    sigma = thresholds.SUBSURFACE_HIGHPASS_PX
    high = img - cv2.GaussianBlur(img, (0, 0), sigma)
    noise = (thresholds.IR_SIM_NOISE_DN**2 + 1.0 / 12.0) * _highpass_noise_gain(sigma)  # + 8-bit rounding
    e = max(view.eye_distance, 1.0)
    contrasts, dists = [], []
    overexposed = 0
    depth = view.frame.depth
    clipped = cv2.dilate((img >= thresholds.IR_SATURATED_DN).astype(np.uint8), np.ones((3, 3), np.uint8))
    for c in patch_centres(view):
        level = disc(img + 1.0, c, 0.14 * e) - 1.0
        hp = disc(high + 1000.0, c, 0.14 * e) - 1000.0  # disc keeps values > 0
        near_clip = disc(clipped.astype(np.float32) + 1.0, c, 0.14 * e) > 1.5
        keep = ~near_clip
        if near_clip.size and near_clip.mean() > thresholds.SUBSURFACE_MAX_SATURATED_SHARE:
            overexposed += 1  # a saturated dot is no longer a dot
            continue
        if keep.sum() < 8:
            continue
        active = float(level[keep].mean()) - thresholds.IR_AMBIENT_DN
        if active < thresholds.IR_MIN_SCENE_DN:
            continue  # too dark to see the dots above the noise
        contrasts.append(math.sqrt(max(float(hp[keep].var()) - noise, 0.0)) / active)
        if depth is not None:
            z = disc(depth, c, 0.14 * e)
            if z.size:
                dists.append(float(np.median(z)))
    if not contrasts:
        return (float("inf") if overexposed else float("nan")), float("nan")
    g = view.frame.geometry
    if dists:
        dist = float(np.median(dists))
    elif g is not None:
        dist = g.colour.fx * AVERAGE_EYE_DISTANCE_MM / e
    else:
        return float("nan"), float("nan")
    return float(np.median(contrasts)), dist


class SubsurfaceCue:
    """How sharp the projector's dots come back from the face: skin blurs them (sub-surface scattering; simulated)."""

    name = "subsurface"

    def score(self, sample: PadSample, purpose: Purpose) -> CueResult:
        unusable = ir_unusable(sample)
        if unusable:
            return CueUnavailable(self.name, unusable)
        measured = [dot_contrast(v) for v in sample.faces]
        if sum(math.isinf(c) for c, _ in measured) > len(measured) // 2:
            return CueUnavailable(self.name, "ir_overexposed (the dots are clipped: too bright to judge)")
        scaled = [c * (thresholds.SUBSURFACE_REF_MM / z) ** thresholds.SUBSURFACE_DISTANCE_EXPONENT
                  for c, z in measured if math.isfinite(c) and math.isfinite(z) and z > 0]
        if len(scaled) < max(1, len(sample.faces) // 2):
            return CueUnavailable(self.name, "no_dot_pattern_measurable (dark, saturated or no distance)")
        contrast = float(np.median(scaled))
        limit = (thresholds.SUBSURFACE_MAX_CONTRAST_ENROL if purpose is Purpose.ENROL
                 else thresholds.SUBSURFACE_MAX_CONTRAST_VERIFY)
        # score against the verification limit; enrolment holds it to a stricter (higher) threshold
        score = math.log(thresholds.SUBSURFACE_MAX_CONTRAST_VERIFY / max(contrast, 1e-4))
        threshold = math.log(thresholds.SUBSURFACE_MAX_CONTRAST_VERIFY / limit)
        return CueScore(self.name, score, threshold, {"dot_contrast": round(contrast, 4), "frames": float(len(scaled))})
