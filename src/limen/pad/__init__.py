"""Face presentation attack detection (PAD): is this a live face, or a photo or a screen?

`assess(capture, purpose=Purpose.VERIFY, models_dir=...)` returns a `PadVerdict`
(passed, reason, assurance, per-cue scores and evidence); it never raises on
odd input.  Cues implement `PresentationAttackDetector` (one module each:
`texture`, `minifasnet`, `motion`, sensors for depth/IR); `fusion` combines
texture and MiniFASNet into one calibrated score and fails closed (MiniFASNet
is required).  Enrolment (`Purpose.ENROL`) is stricter and needs several frames.
"""

from limen.pad.challenge import Challenge, ChallengeSequence, Move
from limen.pad.contract import CueScore, CueUnavailable, PresentationAttackDetector, Purpose
from limen.pad.faces import PadSample
from limen.pad.fusion import PadVerdict
from limen.pad.pipeline import assess

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
