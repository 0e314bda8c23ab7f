"""Challenge–response: a random sequence of head moves, checked in order and for 3-D-consistent motion.

A kiosk with an RGB-only camera may ask for a random sequence such as "turn
left, look up, turn right" (`ChallengeSequence.random()`, drawn from the OS's
CSPRNG, so a pre-recorded video cannot know it).  Each usable frame's head pose
is read from the 5 landmarks — signed yaw: the nose's offset from the eyes'
midpoint along the eye axis; pitch: its offset across the eye axis, relative
to the median of the frames that show no turn (so the capture should start
and end facing the camera); both in eye distances — and labelled with the
move it shows, if any.  The labels, with repeats and neutral frames dropped,
must be exactly the requested sequence.  A printed photo cannot perform it; a
replayed video of someone moving could, so the frames of the sequence must
also show parallax: they are checked like the motion cue (homography
residual / motion).  Not performed → `CueUnavailable("not_performed")`, which
the fusion treats as insufficient evidence when a challenge was asked for;
performed but planar → an attack score.

Directions are as seen in the camera image (LEFT: the nose moves toward the
image's left); a kiosk that mirrors its preview must flip LEFT/RIGHT in the
prompt it shows.  A capture carries the sequence its person was shown as
`Capture.meta[CAPTURE_META_KEY]` ("left,up,right"), so the service needs no
other plumbing: `assess` then requires it.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from limen import thresholds
from limen.capture import Capture
from limen.errors import BadRequest
from limen.pad.contract import CueResult, CueScore, CueUnavailable, Purpose
from limen.pad.faces import FaceView, PadSample
from limen.pad.motion import pair_motion

CAPTURE_META_KEY = "challenge"


class Move(StrEnum):
    LEFT = "left"
    RIGHT = "right"
    UP = "up"


@dataclass(frozen=True)
class ChallengeSequence:
    """The moves asked for, in order (no move twice in a row)."""

    moves: tuple[Move, ...]

    def __post_init__(self) -> None:
        if not 2 <= len(self.moves) <= thresholds.PAD_CHALLENGE_MAX_MOVES:
            raise BadRequest("challenge", f"2 to {thresholds.PAD_CHALLENGE_MAX_MOVES} moves")
        if any(a == b for a, b in zip(self.moves, self.moves[1:], strict=False)):
            raise BadRequest("challenge", "the same move twice in a row cannot be told apart")

    @classmethod
    def random(cls, length: int = 3) -> ChallengeSequence:
        """A fresh sequence from the OS's CSPRNG, with at least one turn (a head turn shows the most parallax)."""
        rng = secrets.SystemRandom()
        while True:
            moves: list[Move] = []
            while len(moves) < length:
                moves.append(rng.choice([m for m in Move if not moves or m != moves[-1]]))
            if {Move.LEFT, Move.RIGHT} & set(moves):
                return cls(tuple(moves))

    @classmethod
    def parse(cls, text: str) -> ChallengeSequence:
        """From "left,up,right" (the form a kiosk sends back); `BadRequest` on anything else."""
        try:
            return cls(tuple(Move(part.strip().lower()) for part in text.split(",")))
        except ValueError:
            raise BadRequest("challenge", f"moves are {', '.join(m.value for m in Move)}") from None

    def __str__(self) -> str:
        return ",".join(m.value for m in self.moves)


class Challenge(StrEnum):
    """The two fixed head turns of the CLI (`limen pad check --challenge`)."""

    TURN_LEFT_RIGHT = "turn_left_right"
    TURN_RIGHT_LEFT = "turn_right_left"

    @property
    def sequence(self) -> ChallengeSequence:
        first, second = (Move.LEFT, Move.RIGHT) if self is Challenge.TURN_LEFT_RIGHT else (Move.RIGHT, Move.LEFT)
        return ChallengeSequence((first, second))


def asked_in(capture: Capture) -> ChallengeSequence | None:
    """The sequence recorded in `capture.meta` (None when none was asked); `BadRequest` when malformed."""
    text = capture.meta.get(CAPTURE_META_KEY)
    return None if text is None else ChallengeSequence.parse(text)


def _eyes(view: FaceView) -> tuple[np.ndarray, np.ndarray, float]:
    eye_a, eye_b = view.points[0:2].mean(axis=0), view.points[2:4].mean(axis=0)
    left, right = (eye_a, eye_b) if eye_a[0] <= eye_b[0] else (eye_b, eye_a)
    return left, right, float(np.linalg.norm(right - left))


def signed_yaw(view: FaceView) -> float:
    """Nose offset from the eyes' midpoint along the eye axis (image left→right), in eye distances."""
    left, right, dist = _eyes(view)
    if dist < 1e-6:
        return 0.0
    return float(np.dot(view.points[4] - (left + right) / 2.0, (right - left) / dist)) / dist


def nose_drop(view: FaceView) -> float:
    """Nose offset below the eye axis, in eye distances (it shrinks when the head tilts up)."""
    left, right, dist = _eyes(view)
    if dist < 1e-6:
        return 0.0
    axis = (right - left) / dist
    down = np.array([-axis[1], axis[0]])  # the eye axis turned 90° clockwise: image "down" for an upright face
    return float(np.dot(view.points[4] - (left + right) / 2.0, down)) / dist


def frame_moves(views: list[FaceView]) -> list[Move | None]:
    """The move each frame shows (None: neutral); pitch is taken relative to the frames that show no turn."""
    yaw_need, pitch_need = thresholds.PAD_CHALLENGE_MIN_YAW, thresholds.PAD_CHALLENGE_MIN_PITCH
    yaws = [signed_yaw(v) for v in views]
    drops = [nose_drop(v) for v in views]
    level = [d for d, y in zip(drops, yaws, strict=True) if abs(y) < yaw_need]
    neutral = float(np.median(level)) if level else float(np.median(drops))
    out: list[Move | None] = []
    for y, d in zip(yaws, drops, strict=True):
        turn = abs(y) / yaw_need
        up = (neutral - d) / pitch_need
        if max(turn, up) < 1.0:
            out.append(None)
        elif turn >= up:
            out.append(Move.LEFT if y < 0 else Move.RIGHT)
        else:
            out.append(Move.UP)
    return out


def sequence_performed(moves: list[Move | None], asked: ChallengeSequence) -> tuple[int, int] | None:
    """Frame indices (first, last) of the performed sequence when the observed moves are exactly `asked`."""
    observed: list[tuple[Move, int]] = []
    for i, m in enumerate(moves):
        if m is not None and (not observed or observed[-1][0] != m):
            observed.append((m, i))
    if tuple(m for m, _ in observed) != asked.moves:
        return None
    last = max(i for i, m in enumerate(moves) if m is asked.moves[-1])
    return observed[0][1], last


def turn_performed(yaws: list[float], challenge: Challenge) -> tuple[int, int] | None:
    """Indices (first extreme, later opposite extreme) when the requested turn happened, else None."""
    need = thresholds.PAD_CHALLENGE_MIN_YAW
    first_sign = -1.0 if challenge is Challenge.TURN_LEFT_RIGHT else 1.0
    for i, y in enumerate(yaws):
        if first_sign * y >= need:
            for j in range(i + 1, len(yaws)):
                if -first_sign * yaws[j] >= need:
                    return i, j
            return None
    return None


class ChallengeCue:
    """Checks that the requested moves happened, in order, and moved like a 3-D head."""

    name = "challenge"

    def __init__(self, challenge: Challenge | ChallengeSequence) -> None:
        self.challenge = challenge

    def _span(self, views: list[FaceView]) -> tuple[int, int] | None:
        if isinstance(self.challenge, Challenge):  # the CLI's fixed turn: extremes anywhere, in order
            return turn_performed([signed_yaw(v) for v in views], self.challenge)
        return sequence_performed(frame_moves(views), self.challenge)

    def score(self, sample: PadSample, purpose: Purpose) -> CueResult:
        views = list(sample.faces)
        if len(views) < 3:
            return CueUnavailable(self.name, "too_few_frames")
        span = self._span(views)
        if span is None:
            return CueUnavailable(self.name, "not_performed")
        i, j = span
        pairs = [pair_motion(a, b) for a, b in zip(views[i:j], views[i + 1 : j + 1], strict=True)]
        moving = [p for p in pairs if p is not None and p[0] >= thresholds.PAD_MOTION_MIN_MOTION]
        if not moving:
            return CueUnavailable(self.name, "untrackable")
        ratio = float(np.median([p[1] / p[0] for p in moving]))
        evidence = {"first_frame": float(i), "last_frame": float(j), "pairs": float(len(moving)),
                    "parallax_ratio": round(ratio, 4)}
        return CueScore(self.name, math.log(max(ratio, 1e-6) / thresholds.PAD_MOTION_PLANAR_RATIO), 0.0, evidence)
