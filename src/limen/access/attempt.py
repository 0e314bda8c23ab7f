"""An attempt to open the door: one or more factors, as values (never images).

Every way in, a face, a fingerprint, a keypad PIN, an offline code, an RFID
tag, a remote command, the mechanical key, becomes an `Attempt` and goes
through the same `policy.evaluate`.  Several factors in one attempt serve dual
and tri credential rules (e.g. face + PIN).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from limen.decision import Assurance, Decision


class Source(StrEnum):
    KEYPAD = "keypad"
    CAMERA = "camera"
    FINGERPRINT_SENSOR = "fingerprint_sensor"
    RFID_READER = "rfid_reader"
    REMOTE = "remote"
    KEY_SENSOR = "key_sensor"
    CLI = "cli"


@dataclass(frozen=True)
class FaceEvidence:
    """The face pipeline's verdict (distance: lower is more alike) and PAD's."""

    user_id: str | None
    distance: float | None
    threshold: float | None
    pad_passed: bool
    assurance: Assurance | None = None
    scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FingerprintEvidence:
    user_id: str | None
    score: float | None
    threshold: float | None          # similarity: accepted when score >= threshold
    pad_passed: bool
    assurance: Assurance | None = None


@dataclass(frozen=True)
class PinEntry:
    """Digits typed at the keypad (possibly with anti-peep decoys).  Never logged."""

    digits: str = field(repr=False)


@dataclass(frozen=True)
class CodeEntry:
    """An offline code typed at the keypad.  Never logged."""

    digits: str = field(repr=False)


@dataclass(frozen=True)
class RfidEntry:
    uid: str = field(repr=False)


@dataclass(frozen=True)
class RemoteCommand:
    """An unlock command whose owner signature the link layer has already checked."""

    user_id: str
    authorised: bool                  # signature valid, fresh, not replayed
    pin: str | None = field(default=None, repr=False)
    device: str = "remote"


@dataclass(frozen=True)
class KeyTurn:
    """The key-inserted sensor saw the mechanical key."""


Factor = FaceEvidence | FingerprintEvidence | PinEntry | CodeEntry | RfidEntry | RemoteCommand | KeyTurn


@dataclass(frozen=True)
class Attempt:
    factors: tuple[Factor, ...]
    source: Source = Source.KEYPAD


class PadVerdictLike(Protocol):
    @property
    def passed(self) -> bool: ...

    @property
    def assurance(self) -> Any: ...

    @property
    def scores(self) -> dict[str, float]: ...


def face_evidence(decision: Decision, pad: PadVerdictLike | None = None) -> FaceEvidence:
    """Turn the face pipeline's `Decision` (+ optional PAD verdict) into evidence.

    Without a PAD verdict the face counts as not PAD-checked: it fails closed.
    """
    matched = decision.accepted and decision.user_id is not None
    scores = dict(decision.scores)
    assurance = decision.assurance
    pad_passed = False
    if pad is not None:
        pad_passed = bool(pad.passed)
        scores.update({f"pad.{k}": float(v) for k, v in dict(pad.scores).items()})
        raw = str(getattr(pad.assurance, "value", pad.assurance))
        assurance = Assurance(raw) if raw in Assurance.__members__.values() else Assurance.NONE
    return FaceEvidence(
        user_id=decision.user_id if matched else None,
        distance=decision.score,
        threshold=decision.threshold,
        pad_passed=pad_passed,
        assurance=assurance,
        scores=scores,
    )


def face_attempt(decision: Decision, pad: PadVerdictLike | None = None, *extra: Factor) -> Attempt:
    return Attempt((face_evidence(decision, pad), *extra), Source.CAMERA)


def pin_attempt(digits: str, source: Source = Source.KEYPAD) -> Attempt:
    return Attempt((PinEntry(digits),), source)


def code_attempt(digits: str, source: Source = Source.KEYPAD) -> Attempt:
    return Attempt((CodeEntry(digits),), source)


def key_attempt() -> Attempt:
    return Attempt((KeyTurn(),), Source.KEY_SENSOR)


def remote_attempt(user_id: str, authorised: bool, pin: str | None = None, device: str = "remote") -> Attempt:
    return Attempt((RemoteCommand(user_id, authorised, pin, device),), Source.REMOTE)


def keypad_entry(typed: str) -> Attempt:
    """Parse a raw keypad entry: `*` then digits is an offline code, digits alone a PIN."""
    text = typed.strip().rstrip("#")
    if text.startswith("*"):
        return code_attempt(text[1:])
    return pin_attempt(text)
