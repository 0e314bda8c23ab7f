"""Face presentation attack detection (PAD): is this a live face, or a photo or a screen?

`assess(capture, purpose=Purpose.VERIFY, models_dir=...)` returns a `PadVerdict`
(passed, reason, assurance, per-cue scores and evidence); it never raises on
odd input.  Cues implement `PresentationAttackDetector` (one module each:
`texture`, `minifasnet`, `motion`, sensors for depth/IR); `fusion` combines
texture and MiniFASNet into one calibrated score and fails closed (MiniFASNet
is required).  Enrolment (`Purpose.ENROL`) is stricter and needs several frames.

The names below load on first use: importing a submodule (`limen.pad.minifasnet_models`
for `limen status`) does not import the pipeline, the face models' code or OpenCV.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from limen.pad.challenge import Challenge, ChallengeSequence, Move
    from limen.pad.contract import CueScore, CueUnavailable, PresentationAttackDetector, Purpose
    from limen.pad.faces import PadSample
    from limen.pad.fusion import PadVerdict
    from limen.pad.pipeline import assess

_HOME = {
    "Challenge": "limen.pad.challenge",
    "ChallengeSequence": "limen.pad.challenge",
    "Move": "limen.pad.challenge",
    "CueScore": "limen.pad.contract",
    "CueUnavailable": "limen.pad.contract",
    "PresentationAttackDetector": "limen.pad.contract",
    "Purpose": "limen.pad.contract",
    "PadSample": "limen.pad.faces",
    "PadVerdict": "limen.pad.fusion",
    "assess": "limen.pad.pipeline",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])


__all__ = [
    "Challenge",
    "ChallengeSequence",
    "CueScore",
    "CueUnavailable",
    "Move",
    "PadSample",
    "PadVerdict",
    "PresentationAttackDetector",
    "Purpose",
    "assess",
]
