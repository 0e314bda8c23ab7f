"""The PAD contract: every cue scores a `PadSample` (higher = more bona fide) and shows its evidence.

A cue that cannot run on this sample (one frame where it needs motion, no
depth map, too little movement to judge) returns `CueUnavailable` — never a
passing score.  Fusion (`fusion.py`) turns cue results into a `PadVerdict`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from limen.pad.faces import PadSample


class Purpose(StrEnum):
    """Why PAD runs: enrolment is stricter (and needs several frames) than verification."""

    ENROL = "enrol"
    VERIFY = "verify"


@dataclass(frozen=True)
class CueScore:
    """One cue's judgement: `score` is log-odds of bona fide; `evidence` the numbers behind it."""

    cue: str
    score: float
    threshold: float
    evidence: dict[str, float] = field(default_factory=dict)

    @property
    def says_attack(self) -> bool:
        return not self.score >= self.threshold  # NaN counts as attack


@dataclass(frozen=True)
class CueUnavailable:
    """A cue that could not judge this sample, and why (it lowers assurance, never passes)."""

    cue: str
    reason: str


CueResult = CueScore | CueUnavailable


@runtime_checkable
class PresentationAttackDetector(Protocol):
    """A PAD cue.  `score` must not raise on odd samples: it returns `CueUnavailable` instead."""

    name: str

    def score(self, sample: PadSample, purpose: Purpose) -> CueResult:
        """Judge `sample` at the operating point for `purpose` (higher score = more bona fide)."""
        ...
