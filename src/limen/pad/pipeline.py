"""`assess(capture, purpose)`: the PAD pipeline as a straight line — locate faces → cues → fusion."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from limen import trace
from limen.bio.face.detect import Box
from limen.capture import Capture
from limen.errors import ConfigError
from limen.pad import faces, fusion
from limen.pad.challenge import Challenge, ChallengeCue, ChallengeSequence, asked_in
from limen.pad.contract import CueResult, CueUnavailable, PresentationAttackDetector, Purpose
from limen.pad.fusion_model import FusionModel, shipped_fusion
from limen.pad.minifasnet import CUE as MINIFASNET
from limen.pad.minifasnet import MiniFasNetCue
from limen.pad.motion import MotionCue
from limen.pad.texture import TextureCue, shipped_model

log = logging.getLogger(__name__)

_DEFAULT: list[tuple[PresentationAttackDetector, ...]] = []
_DEFAULT_LOCK = threading.Lock()


def default_cues() -> tuple[PresentationAttackDetector, ...]:
    """The cues every assessment runs (`DEFAULT_CUES`), built on first use.

    The sensor cues import SciPy (the pulse filter), most of a second of CPU:
    every `limen` command imports this package, so they load with the first
    assessment (`limen serve` assesses a blank frame at start), not at import.
    """
    with _DEFAULT_LOCK:
        if not _DEFAULT:
            from limen.pad.sensors import DepthCue, EyeRegionCue, InfraredCue, PulseCue, SubsurfaceCue

            _DEFAULT.append((TextureCue(), MotionCue(), DepthCue(), InfraredCue(), SubsurfaceCue(), EyeRegionCue(),
                             PulseCue()))
        return _DEFAULT[0]


def __getattr__(name: str) -> Any:
    if name == "DEFAULT_CUES":  # the module constant, built on first use (see `default_cues`)
        return default_cues()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# MiniFASNet joins every assessment (it needs the models directory, see `assess`) and is required: measured on
# cross-dataset folds, texture alone is at chance on a dataset it never saw (docs/pad.md), so without the deep
# cue a face is never judged bona fide.  The edge cue (`edges.EdgeCue`) and the flicker cue
# (`photometric.FlickerCue`) measured too weak (and flicker too risky under mains-lit rooms) to enter by default.
REQUIRED_CUES = (fusion.REQUIRED_CUE, MINIFASNET)


def assess(
    capture: Capture,
    *,
    purpose: Purpose,
    boxes: Sequence[Box | None] | None = None,
    challenge: Challenge | ChallengeSequence | None = None,
    cues: tuple[PresentationAttackDetector, ...] | None = None,
    models_dir: Path | None = None,
    fusion_model: FusionModel | None = None,
) -> fusion.PadVerdict:
    """Judge whether `capture` is a live face (bona fide) or a presentation attack.

    Never raises on odd input (no frames, frames of different sizes, no face,
    a face at the border, extreme lighting, a one-frame "video"): the verdict is
    then "insufficient_evidence", a deny with its reason in `detail`.  Only a
    broken installation (the shipped model cannot be read) raises `ConfigError`.
    `Purpose.ENROL` needs `PAD_ENROL_MIN_FRAMES` usable frames and the stricter
    `PAD_TEXTURE_ENROL` threshold; `Purpose.VERIFY` uses `PAD_TEXTURE_VERIFY`.
    `boxes` (one face box per capture frame, None where unknown, e.g.
    `FaceSample.box` from the face pipeline) skips PAD's own face detection,
    which is most of its cost.  `challenge` (the user was asked to turn the
    head, or to perform a random `ChallengeSequence`; a kiosk may instead
    record it in `capture.meta["challenge"]`) adds the challenge cue and makes
    it required; a malformed recorded challenge is insufficient evidence.  `cues` replaces
    `DEFAULT_CUES` (MiniFASNet and the challenge still join).  `models_dir` (the
    settings' `models_dir`, passed by the runtime) is where MiniFASNet's
    imported weights live; the cue is required, so without them every verdict
    is insufficient evidence ("minifasnet: model_not_imported").  `fusion_model` replaces the shipped
    fusion (lab use).  Models load once per process; calls are thread-safe.
    """
    shipped_model()  # a broken install is a ConfigError, not a silent deny
    model = fusion_model if fusion_model is not None else shipped_fusion()
    if not isinstance(capture, Capture) or not capture.frames:
        return fusion.insufficient(purpose, "no frames to judge")
    if len({f.device for f in capture.frames}) > 1:  # one presentation comes from one device
        return fusion.insufficient(purpose, "frames from different devices")
    try:
        sample = faces.locate(capture, boxes)
        required: tuple[str, ...] = REQUIRED_CUES
        cues = default_cues() if cues is None else cues
        asked = challenge if challenge is not None else asked_in(capture)
        if asked is not None:
            cues = (*cues, ChallengeCue(asked))
            required = (*required, ChallengeCue.name)
        cues = (*cues, MiniFasNetCue(models_dir))
        results = [_run(cue, sample, purpose) for cue in cues]
        verdict = fusion.fuse(results, sample, purpose, required, model)
    except ConfigError:
        raise
    except Exception as exc:  # fail closed: whatever went wrong, this capture does not pass
        log.warning("PAD could not process a capture: %s", type(exc).__name__)
        return fusion.insufficient(purpose, f"PAD could not process the capture ({type(exc).__name__})")
    trace.emit("pad.verdict", verdict.to_dict)
    return verdict


def _run(cue: PresentationAttackDetector, sample: faces.PadSample, purpose: Purpose) -> CueResult:
    try:
        return cue.score(sample, purpose)
    except ConfigError:
        raise
    except Exception as exc:  # one broken cue is a missing cue, never a pass
        log.warning("PAD cue %s failed: %s", cue.name, type(exc).__name__)
        return CueUnavailable(cue.name, f"error: {type(exc).__name__}")
