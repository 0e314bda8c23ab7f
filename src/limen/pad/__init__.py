"""Face presentation attack detection (PAD): is this a live face, or a photo or a screen?

`assess(capture, purpose=Purpose.VERIFY)` returns a `PadVerdict` (passed,
reason, assurance, per-cue scores and evidence); it never raises on odd input.
Cues implement `PresentationAttackDetector` (one module each: `texture`,
`motion`, `sensors` for depth/IR), `fusion` fails closed.  Enrolment
(`Purpose.ENROL`) is stricter and needs several frames.
"""

from limen.pad.challenge import Challenge
from limen.pad.contract import CueScore, CueUnavailable, PresentationAttackDetector, Purpose
from limen.pad.faces import PadSample
from limen.pad.fusion import PadVerdict
from limen.pad.pipeline import assess

__all__ = [
    "Challenge",
    "CueScore",
    "CueUnavailable",
    "PadSample",
    "PadVerdict",
    "PresentationAttackDetector",
    "Purpose",
    "assess",
]
