"""The values every attempt produces: `Decision` (and the enums it is made of).

A `Decision` is the single explanation of an outcome: what happened, why, who,
with which scores and how long each stage took.  Audit events are built from
it.  It never holds biometric data (no images, no embeddings).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"


class Reason(StrEnum):
    # recognition
    MATCHED = "matched"
    NO_MATCH = "no_match"
    NO_FACE = "no_face"
    LOW_QUALITY = "low_quality"
    UNKNOWN_USER = "unknown_user"
    NOT_ENROLLED = "not_enrolled"
    # presentation attack detection
    PAD_FAILED = "pad_failed"
    INSUFFICIENT_EVIDENCE = "insufficient_evidence"
    # access policy (Matter door-lock semantics)
    GRANTED = "granted"
    UNKNOWN_CREDENTIAL = "unknown_credential"
    DISABLED_USER = "disabled_user"
    OUTSIDE_SCHEDULE = "outside_schedule"
    LOCKED_OUT = "locked_out"
    SECOND_FACTOR_MISSING = "second_factor_missing"
    PIN_REQUIRED = "pin_required"
    FACE_FIRST = "face_first"            # a PIN/code alone from a person whose rule needs a face (or finger) too
    MODE_FORBIDS = "mode_forbids"
    REMOTE_ONLY_USER = "remote_only_user"  # a remote-only user's credential at the door: refused once checked
    CREDENTIAL_EXPIRED = "credential_expired"
    CREDENTIAL_EXHAUSTED = "credential_exhausted"
    CREDENTIAL_REVOKED = "credential_revoked"
    CODE_REPLAYED = "code_replayed"
    REMOTE_NOT_AUTHORISED = "remote_not_authorised"
    OWNER_REAUTH_REQUIRED = "owner_reauth_required"
    LOCKDOWN = "lockdown"
    DURESS = "duress"                    # forced user: opens, raises a silent alarm
    CODE_CLEARED = "code_cleared"        # a clear code revoked an offline code; the door stays shut
    VAULT_ERASED = "vault_erased"


class QualityGate(StrEnum):
    """Which quality gate refused a sample (see `thresholds.QUALITY_*`)."""

    NO_FACE = "no_face"
    SEVERAL_FACES = "several_faces"
    TOO_SMALL = "too_small"
    BLURRED = "blurred"
    UNDEREXPOSED = "underexposed"
    OVEREXPOSED = "overexposed"
    HEAD_TURNED = "head_turned"


class Assurance(StrEnum):
    """How much evidence PAD had: every unavailable cue lowers it, none passes by default."""

    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True)
class Decision:
    """The outcome of one attempt and everything that explains it.

    `score` and `threshold` are the deciding comparison (for faces a distance:
    lower is more alike, accepted when `score <= threshold`).  `scores` holds
    every other number that led here (PAD cues, second factors); `timings` the
    milliseconds each stage took.
    """

    outcome: Outcome
    reason: Reason
    user_id: str | None = None
    user_name: str | None = None
    credential_id: str | None = None
    score: float | None = None
    threshold: float | None = None
    quality_gate: QualityGate | None = None
    assurance: Assurance | None = None
    scores: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    detail: str = ""

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPT

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "reason": self.reason.value,
            "user_id": self.user_id,
            "user_name": self.user_name,
            "credential_id": self.credential_id,
            "score": self.score,
            "threshold": self.threshold,
            "quality_gate": self.quality_gate.value if self.quality_gate else None,
            "assurance": self.assurance.value if self.assurance else None,
            "scores": dict(self.scores),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "detail": self.detail,
        }


def reject(reason: Reason, **kwargs: Any) -> Decision:
    return Decision(Outcome.REJECT, reason, **kwargs)


def accept(reason: Reason, **kwargs: Any) -> Decision:
    return Decision(Outcome.ACCEPT, reason, **kwargs)
