"""An attempt to open the door: one or more factors, as values (never images).

Every way in, a face, a fingerprint, a keypad PIN, an offline code, an RFID
tag, a remote command, the mechanical key, becomes an `Attempt` and goes
through the same `policy.evaluate`.  Several factors in one attempt serve dual
and tri credential rules (e.g. face + PIN).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from limen.decision import Assurance, QualityGate, Reason

if TYPE_CHECKING:  # the PAD package pulls in the face pipeline; the access engine only reads the verdict
    from limen.pad.fusion import PadVerdict


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
    """What the face pipeline saw in one capture: typed, no image, no embedding.

    `user_id` is the matched user (1:N) or the claimed one (1:1); None when
    nobody matched.  `distance`/`threshold`: lower is more alike, a match when
    `distance <= threshold`.  `pad` is PAD's verdict, None when PAD did not run
    (fails closed).  `refusal` says why no comparison was made (NO_FACE,
    LOW_QUALITY with `quality_gate`, UNKNOWN_USER, NOT_ENROLLED, VAULT_ERASED,
    INSUFFICIENT_EVIDENCE for a burst not looked at: no live challenge)
    or NO_MATCH for an ambiguous 1:N; `detail` says it in words.
    """

    user_id: str | None
    distance: float | None
    threshold: float | None
    pad: PadVerdict | None
    quality_gate: QualityGate | None = None
    refusal: Reason | None = None
    detail: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def matched(self) -> bool:
        return (self.refusal is None and self.user_id is not None and self.distance is not None
                and self.threshold is not None and self.distance <= self.threshold)

    @property
    def assurance(self) -> Assurance | None:
        """PAD's assurance (how much evidence of liveness); None when PAD did not run."""
        return None if self.pad is None else self.pad.assurance


@dataclass(frozen=True)
class FingerprintEvidence:
    """A fingerprint comparison (similarity: a match when `score >= threshold`).

    Assurance is MEDIUM unless the sensor itself reports liveness (HIGH).
    `refusal` says why no comparison was made (LOW_QUALITY: a capture with too
    few minutiae or a blank image; UNKNOWN_USER, NOT_ENROLLED, VAULT_ERASED);
    `detail` says it in words (never minutiae or scores of others).
    """

    user_id: str | None
    score: float | None
    threshold: float | None          # similarity: accepted when score >= threshold
    pad_passed: bool
    sensor_liveness: bool = False
    refusal: Reason | None = None
    detail: str = ""

    @property
    def matched(self) -> bool:
        return (self.refusal is None and self.pad_passed and self.user_id is not None and self.score is not None
                and self.threshold is not None and self.score >= self.threshold)

    @property
    def assurance(self) -> Assurance:
        return Assurance.HIGH if self.sensor_liveness else Assurance.MEDIUM


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
    authorised: bool                  # signature valid, fresh, not replayed (or the owner logged in)
    pin: str | None = field(default=None, repr=False)
    device: str = "remote"
    link_verified: bool = False       # the link verified the owner's signature on it: only this lifts a lockdown


@dataclass(frozen=True)
class KeyTurn:
    """The key-inserted sensor saw the mechanical key."""


Factor = FaceEvidence | FingerprintEvidence | PinEntry | CodeEntry | RfidEntry | RemoteCommand | KeyTurn


@dataclass(frozen=True)
class Attempt:
    factors: tuple[Factor, ...]
    source: Source = Source.KEYPAD


def face_attempt(evidence: FaceEvidence, *extra: Factor, source: Source = Source.CAMERA) -> Attempt:
    """A face (+ e.g. a PinEntry held as the second factor) as one attempt."""
    return Attempt((evidence, *extra), source)


def finger_attempt(evidence: FingerprintEvidence, *extra: Factor, source: Source = Source.FINGERPRINT_SENSOR
                   ) -> Attempt:
    """A fingerprint (+ e.g. a held face or a PinEntry as the other factor) as one attempt."""
    return Attempt((evidence, *extra), source)


def pin_attempt(digits: str, source: Source = Source.KEYPAD) -> Attempt:
    return Attempt((PinEntry(digits),), source)


def code_attempt(digits: str, source: Source = Source.KEYPAD) -> Attempt:
    return Attempt((CodeEntry(digits),), source)


def key_attempt() -> Attempt:
    return Attempt((KeyTurn(),), Source.KEY_SENSOR)


def remote_attempt(user_id: str, authorised: bool, pin: str | None = None, device: str = "remote",
                   link_verified: bool = False) -> Attempt:
    return Attempt((RemoteCommand(user_id, authorised, pin, device, link_verified),), Source.REMOTE)


def keypad_entry(typed: str) -> Attempt:
    """Parse a raw keypad entry: `*` then digits is an offline code, digits alone a PIN."""
    text = typed.strip().rstrip("#")
    if text.startswith("*"):
        return code_attempt(text[1:])
    return pin_attempt(text)
