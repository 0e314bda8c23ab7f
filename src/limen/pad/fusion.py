"""Fusion of cue results into one `PadVerdict`, failing closed.

First, when a `FusionModel` is given, the single-frame cues that ran
(texture and MiniFASNet) are combined into one
calibrated log-odds, the **fused** score (held to `PAD_FUSED_VERIFY` or the
stricter `PAD_FUSED_ENROL`); it is one more judgement, and it is required.
Over a burst it is combined frame by frame and the burst is judged by its
robust minimum (all usable frames but `PAD_FUSED_FRAMES_FORGIVEN_SHARE` of
them, rounded down, must pass alone; `robust_minimum`).
Then, first match wins:

1. any cue that ran says attack (the fused score, or any single cue below its
   own veto threshold) → **attack** (whatever the others say);
2. too few usable face frames for the purpose, or too many unusable ones, or a
   required cue could not judge (texture; MiniFASNet, via the pipeline; the
   fused score; the challenge when one was asked for) →
   **insufficient_evidence** (a deny, with the reason);
3. otherwise → **bona_fide**.

Assurance records how much evidence there was, never whether it passed:
NONE when nothing could be judged, LOW for single-frame cues alone, MEDIUM
when a multi-frame cue (motion, flicker, challenge) also judged, HIGH when a
depth or infrared cue also judged.  An unavailable cue is listed in
`cues_missing` with its reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from limen import thresholds
from limen.decision import Assurance, Reason
from limen.pad.contract import CueResult, CueScore, CueUnavailable, Purpose
from limen.pad.faces import PadSample
from limen.pad.fusion_model import FusionModel
from limen.pad.texture import frames_of

BONA_FIDE = "bona_fide"
ATTACK = "attack"
INSUFFICIENT = "insufficient_evidence"
REQUIRED_CUE = "texture"
FUSED = "fused"
SENSOR_CUES = frozenset({"depth", "infrared", "subsurface"})  # "subsurface" reads the IR image
MULTI_FRAME_CUES = frozenset({"motion", "flicker", "challenge", "pulse"})


@dataclass(frozen=True)
class PadVerdict:
    """PAD's answer for one capture: passed or not, why, with which evidence.

    `reason` is "bona_fide", "attack" or "insufficient_evidence" (both of the
    latter deny).  `scores` holds each cue's score (log-odds, higher = more bona
    fide) and `evidence` the numbers behind it; no image or template is kept.
    """

    passed: bool
    reason: str
    assurance: Assurance
    purpose: Purpose
    scores: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, dict[str, float]] = field(default_factory=dict)
    cues_run: tuple[str, ...] = ()
    cues_missing: dict[str, str] = field(default_factory=dict)
    frames_analysed: int = 0
    frames_usable: int = 0
    unusable: dict[str, int] = field(default_factory=dict)
    detail: str = ""

    @property
    def decision_reason(self) -> Reason | None:
        """The `Decision` reason a failed verdict maps to (None when PAD passed)."""
        if self.passed:
            return None
        return Reason.PAD_FAILED if self.reason == ATTACK else Reason.INSUFFICIENT_EVIDENCE

    @property
    def decision_scores(self) -> dict[str, float]:
        """Cue scores prefixed `pad_` for `Decision.scores`."""
        return {f"pad_{k}": round(v, 4) for k, v in self.scores.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed, "reason": self.reason, "assurance": self.assurance.value,
            "purpose": self.purpose.value, "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "thresholds": {k: round(v, 4) for k, v in self.thresholds.items()},
            "evidence": self.evidence, "cues_run": list(self.cues_run), "cues_missing": dict(self.cues_missing),
            "frames_analysed": self.frames_analysed, "frames_usable": self.frames_usable,
            "unusable": dict(self.unusable), "detail": self.detail,
        }


def fuse(
    results: list[CueResult], sample: PadSample, purpose: Purpose, required: tuple[str, ...] = (REQUIRED_CUE,),
    model: FusionModel | None = None,
) -> PadVerdict:
    """One verdict from every cue's result (see the module docstring); `required` cues must have judged."""
    if model is not None:
        results = [*results, fused_score(results, purpose, model)]
        required = (*required, FUSED)
    ran = [r for r in results if isinstance(r, CueScore)]
    missing = {r.cue: r.reason for r in results if isinstance(r, CueUnavailable)}
    common: dict[str, Any] = {
        "purpose": purpose,
        "scores": {r.cue: r.score for r in ran},
        "thresholds": {r.cue: r.threshold for r in ran},
        "evidence": {r.cue: dict(r.evidence) for r in ran},
        "cues_run": tuple(r.cue for r in ran),
        "cues_missing": missing,
        "frames_analysed": sample.analysed,
        "frames_usable": len(sample.faces),
        "unusable": dict(sample.unusable),
        "assurance": _assurance(ran),
    }
    attacks = [r.cue for r in ran if r.says_attack]
    if attacks:
        return PadVerdict(False, ATTACK, detail=_attack_detail(attacks, purpose), **common)
    shortfall = _shortfall(sample, purpose, ran, required, missing)
    if shortfall:
        return PadVerdict(False, INSUFFICIENT, detail=shortfall, **common)
    return PadVerdict(True, BONA_FIDE, detail="bona fide presentation", **common)


def fused_score(results: list[CueResult], purpose: Purpose, model: FusionModel) -> CueResult:
    """The learned combination of the single-frame cues that ran (unavailable when none fits them).

    When every input cue reports its per-frame scores, the combination is applied frame by frame and the
    score is the burst's robust minimum (`robust_minimum`): all usable frames but a quarter (rounded down)
    must pass on their own.  A live face looks live in every frame; a replayed screen or a print whose
    glare, moiré or banding shifts from frame to frame shows it in some of them, which a mean would hide.
    One frame is judged exactly as before.
    """
    ran = {r.cue: r for r in results if isinstance(r, CueScore) and r.cue in model.inputs}
    combined = model.combine({k: r.score for k, r in ran.items()})
    if combined is None:
        return CueUnavailable(FUSED, "no_fusion_for_these_cues")
    value, comb = combined
    threshold = thresholds.PAD_FUSED_ENROL if purpose is Purpose.ENROL else thresholds.PAD_FUSED_VERIFY
    evidence = {f"w_{k}": round(float(w), 4) for k, w in zip(comb.inputs, comb.coef / comb.scale, strict=True)}
    frames = [frames_of(ran[k].evidence) for k in comb.inputs]
    if all(f is not None for f in frames) and len({f.size for f in frames if f is not None}) == 1:
        per_frame = comb.logits(np.column_stack([f for f in frames if f is not None]))
        evidence |= {"mean": round(float(per_frame.mean()), 4), "frames": float(per_frame.size),
                     "frames_below": float(np.sum(per_frame < threshold))}
        value = robust_minimum(per_frame)
    if not math.isfinite(value):
        return CueUnavailable(FUSED, "non_finite_score")
    return CueScore(FUSED, value, threshold, evidence)


def robust_minimum(per_frame: np.ndarray) -> float:
    """The score a burst is judged by: its ⌊n·share⌋-th lowest frame (share `PAD_FUSED_FRAMES_FORGIVEN_SHARE`;
    the minimum for 1–3 frames, the second lowest for the door's 5-frame burst); NaN in any frame is NaN."""
    if per_frame.size == 0 or not np.all(np.isfinite(per_frame)):
        return math.nan
    k = int(per_frame.size * thresholds.PAD_FUSED_FRAMES_FORGIVEN_SHARE)
    return float(np.sort(per_frame)[k])


def insufficient(purpose: Purpose, detail: str, sample: PadSample | None = None) -> PadVerdict:
    """A deny for a capture PAD could not judge at all."""
    return PadVerdict(
        False, INSUFFICIENT, Assurance.NONE, purpose, detail=detail,
        frames_analysed=sample.analysed if sample else 0, frames_usable=len(sample.faces) if sample else 0,
        unusable=dict(sample.unusable) if sample else {},
    )


def _assurance(ran: list[CueScore]) -> Assurance:
    names = {r.cue for r in ran}
    if REQUIRED_CUE not in names:
        return Assurance.NONE
    if names & SENSOR_CUES:
        return Assurance.HIGH
    if names & MULTI_FRAME_CUES:
        return Assurance.MEDIUM
    return Assurance.LOW


def _shortfall(sample: PadSample, purpose: Purpose, ran: list[CueScore], required: tuple[str, ...],
               missing: dict[str, str]) -> str:
    need = thresholds.PAD_ENROL_MIN_FRAMES if purpose is Purpose.ENROL else thresholds.PAD_VERIFY_MIN_FRAMES
    why = ", ".join(f"{k}: {v}" for k, v in sorted(sample.unusable.items()))
    if len(sample.faces) < need:
        return (f"{len(sample.faces)} usable face frame(s), {need} needed" + (f" ({why})" if why else "")
                + _advice(sample))
    if sample.usable_share < thresholds.PAD_MIN_USABLE_SHARE:
        return f"only {len(sample.faces)} of {sample.analysed} frames show a usable face ({why})" + _advice(sample)
    absent = [cue for cue in required if cue not in {r.cue for r in ran}]
    if absent:
        why_not = [f"{cue} ({missing[cue]})" if cue in missing else cue for cue in absent]
        return f"required cue(s) could not judge: {', '.join(why_not)}"
    return ""


# What the person can do about the commonest reason a frame could not be judged (none of these is an attack).
_ADVICE = {
    "too_dark": "the face is too dark to judge: more light, please",
    "too_bright": "the face is too bright to judge: less direct light, please",
    "face_too_small": "the face is too small to judge: come closer",
    "no_face": "no face seen: face the camera, uncovered",
}


def _advice(sample: PadSample) -> str:
    """' — <advice>' for the reason most unusable frames gave (ties: the order of `_ADVICE`), or ''."""
    counts = {k: sample.unusable.get(k, 0) for k in _ADVICE}
    top = max(counts, key=lambda k: counts[k])
    return f" — {_ADVICE[top]}" if counts[top] > 0 else ""


def _attack_detail(cues: list[str], purpose: Purpose) -> str:
    what = "the face looks like a photo or a screen"
    if purpose is Purpose.ENROL:
        return f"enrolment refused: {what} (presentation attack detection: {', '.join(cues)})"
    return f"{what} (presentation attack detection: {', '.join(cues)})"
