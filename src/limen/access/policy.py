"""`evaluate(attempt, state, at) → Decision`: who may open the door, now.

Pure: no I/O, the time is passed in, the state is a value.  `judge` returns the
same `Decision` plus the `Update` (counters, uses, alarms) the store must
persist atomically; `evaluate` is `judge(...).decision`.

The rule table, checked in this order (first failing rule decides):

    1  mechanical key            always recorded as opening (it is physical);
                                 offline uses over the limit → alarm + owner re-auth;
                                 ends privacy mode (Matter)
    2  lockdown                  LOCKDOWN, except an owner command the link verified;
                                 the detail names the cause and what lifts it
    3  operating mode            MODE_FORBIDS (vacation/privacy: local; privacy/
                                 no-remote: remote); passage opens local attempts
    4  keypad lockout            LOCKED_OUT for PIN / code / RFID, even if valid
    5  each factor               UNKNOWN_CREDENTIAL, NO_MATCH, PAD_FAILED,
                                 REMOTE_NOT_AUTHORISED, PIN_REQUIRED (remote);
                                 a face that gave no evidence (NO_FACE,
                                 LOW_QUALITY, INSUFFICIENT_EVIDENCE, VAULT_ERASED)
                                 is refused without counting as a biometric failure;
                                 so is a fingerprint that gave none (LOW_QUALITY,
                                 UNKNOWN_USER, NOT_ENROLLED, VAULT_ERASED)
    6  face + finger fusion      a face and a finger of the same person in one
                                 attempt: a finger below its own threshold still
                                 counts when the FMR decades of both add up to
                                 FUSION_MIN_DECADES (each at its floor): `fusion`
    7  offline code              CODE_CLEARED, CREDENTIAL_REVOKED, CREDENTIAL_EXPIRED,
                                 CODE_REPLAYED, CREDENTIAL_EXHAUSTED
    8  user                      UNKNOWN_USER, DISABLED_USER (disabled, non-access),
                                 REMOTE_ONLY_USER (remote-only user at the door:
                                 a wrong code to the door, not the mode's refusal)
    9  schedule                  OUTSIDE_SCHEDULE
    10 credentials               CREDENTIAL_REVOKED, CREDENTIAL_EXPIRED (window,
                                 expiring after first use, PIN too old),
                                 CREDENTIAL_EXHAUSTED (max uses, backup offline uses)
    11 biometric failures        PIN_REQUIRED for a biometric-only attempt after
                                 `bio_failure_limit` failures, if the user has a PIN
                                 or tag to give (nobody is stranded)
       assurance                 SECOND_FACTOR_MISSING for a biometric below the
                                 `AssuranceRule` (face alone: HIGH, i.e. depth/IR;
                                 MEDIUM with `allow_face_alone_rgb`): it is a first
                                 factor, a PIN / code / tag / other biometric completes it
       credential rule           FACE_FIRST for a PIN / code / tag alone (a held face
                                 is volatile: a restart forgets it), else
                                 SECOND_FACTOR_MISSING (dual / tri rules)
    12 strong-auth age           PIN_REQUIRED when a biometric-only opening comes
                                 more than STRONG_AUTH_MAX_AGE_H after the PIN was used
    13 owner re-authorisation    OWNER_REAUTH_REQUIRED for anyone but an owner
    14 open                      DURESS for a forced user (silent alarm), else GRANTED

A keypad entry that matched but is refused counts as a wrong code: always when the
attempt is keypad entries only (FACE_FIRST, OUTSIDE_SCHEDULE, ... keep their guiding
message, and each spends a try), and for what the credential is (`_WRONG_AT_THE_KEYPAD`)
when a held face came with it.

Only a biometric factor whose PAD judged *attack*, or which was compared and did
not match, counts toward the biometric failure limit; only the former raises
the presentation-attack alarm (from the audit record).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from limen import thresholds as T
from limen.access import lockout, offline, pins
from limen.access.attempt import (
    Attempt,
    CodeEntry,
    FaceEvidence,
    Factor,
    FingerprintEvidence,
    KeyTurn,
    PinEntry,
    RemoteCommand,
    RfidEntry,
)
from limen.access.model import (
    BIOMETRIC_TYPES,
    AccessState,
    AccessUser,
    CodeUse,
    Credential,
    CredentialType,
    LockoutState,
    OperatingMode,
    PermissionLevel,
    UserStatus,
    UserType,
)
from limen.access.schedules import effective_mode, schedule_allows, zone
from limen.decision import Assurance, Decision, QualityGate, Reason, accept, reject
from limen.tamper.lockdown import LockdownCause

MECHANICAL_KEY_ID = "mechanical-key"


@dataclass(frozen=True)
class Update:
    """What the store persists after an attempt (all in one transaction)."""

    lockout: LockoutState | None = None
    credentials_used: tuple[str, ...] = ()
    pin_used_by: str | None = None
    code_use: CodeUse | None = None
    revoke_code: str | None = None
    key_offline_uses: int | None = None
    owner_reauth_required: bool | None = None
    mode: OperatingMode | None = None
    alarms: tuple[str, ...] = ()


_RANK = {Assurance.NONE: 0, Assurance.LOW: 1, Assurance.MEDIUM: 2, Assurance.HIGH: 3}


@dataclass(frozen=True)
class AssuranceRule:
    """The least assurance at which a biometric may open the door alone; below it, it is a first factor.

    Faces: HIGH (a depth or infrared cue judged bona fide).  An RGB camera
    cannot prove liveness well enough (docs/pad.md): the owner may accept
    MEDIUM faces alone with the `allow_face_alone_rgb` setting, at their risk.
    Fingerprints: HIGH, which a sensor reaches by reporting liveness itself.
    """

    face_alone: Assurance = Assurance.HIGH
    fingerprint_alone: Assurance = Assurance.HIGH

    @classmethod
    def from_settings(cls, allow_face_alone_rgb: bool) -> AssuranceRule:
        return cls(face_alone=Assurance.MEDIUM if allow_face_alone_rgb else Assurance.HIGH)

    def alone(self, factor: FaceEvidence | FingerprintEvidence) -> bool:
        """Whether `factor` (PAD passed, matched) may open by itself."""
        floor = self.face_alone if isinstance(factor, FaceEvidence) else self.fingerprint_alone
        have = factor.assurance or Assurance.NONE
        return _RANK[have] >= _RANK[floor]


@dataclass(frozen=True)
class Judgement:
    decision: Decision
    update: Update = field(default_factory=Update)


@dataclass(frozen=True)
class _Match:
    user_id: str
    credential: Credential
    grant: offline.OfflineGrant | None = None
    first_factor_only: bool = False   # a biometric below the AssuranceRule


@dataclass(frozen=True)
class _Failure:
    reason: Reason
    keypad: bool = False
    biometric: bool = False
    detail: str = ""


class _Context:
    """Scores and ids collected while judging, for the Decision."""

    def __init__(self, attempt: Attempt, state: AccessState, at: datetime, rule: AssuranceRule) -> None:
        self.attempt, self.state, self.at, self.rule = attempt, state, at, rule
        self.scores: dict[str, float] = {}
        self.timings: dict[str, float] = {}
        self.score: float | None = None
        self.threshold: float | None = None
        self.assurance: Assurance | None = None
        self.quality_gate: QualityGate | None = None
        for factor in attempt.factors:
            if isinstance(factor, FaceEvidence):
                self.scores.update(factor.scores)
                if factor.pad is not None:
                    self.scores.update({f"pad.{k}": float(v) for k, v in factor.pad.scores.items()})
                self.timings.update(factor.timings)
                self.score, self.threshold, self.assurance = factor.distance, factor.threshold, factor.assurance
                self.quality_gate = factor.quality_gate
            elif isinstance(factor, FingerprintEvidence):
                self.score, self.threshold, self.assurance = factor.score, factor.threshold, factor.assurance
                if factor.score is not None:
                    self.scores["finger.score"] = factor.score
        self.fused = fusion(attempt.factors)
        if self.fused is not None:
            self.scores["fusion.decades"] = self.fused.decades

    def decide(self, ok: bool, reason: Reason, user: AccessUser | None = None,
               credential_id: str | None = None, detail: str = "", lock: LockoutState | None = None) -> Decision:
        lock = lock or self.state.lockout
        scores = dict(self.scores)
        scores["wrong_code_count"] = float(lock.wrong_code_count)
        scores["bio_fail_count"] = float(lock.bio_fail_count)
        remaining = lockout.remaining_s(lock, self.at)
        if remaining:
            scores["lockout_remaining_s"] = remaining
        kwargs: dict[str, Any] = {
            "user_id": user.user_id if user else None,
            "user_name": user.name if user else None,
            "credential_id": credential_id,
            "score": self.score,
            "threshold": self.threshold,
            "assurance": self.assurance,
            "quality_gate": self.quality_gate,
            "scores": scores,
            "timings": dict(self.timings),
            "detail": detail,
        }
        return accept(reason, **kwargs) if ok else reject(reason, **kwargs)


def evaluate(attempt: Attempt, state: AccessState, at: datetime, rule: AssuranceRule | None = None) -> Decision:
    """Decide `attempt` against `state` at `at`; see the module's rule table."""
    return judge(attempt, state, at, rule).decision


def judge(attempt: Attempt, state: AccessState, at: datetime, rule: AssuranceRule | None = None) -> Judgement:
    """The Decision and the state Update it implies (pure); `rule` defaults to faces alone only at HIGH."""
    ctx = _Context(attempt, state, at, rule or AssuranceRule())
    if not attempt.factors:
        return Judgement(ctx.decide(False, Reason.UNKNOWN_CREDENTIAL, detail="no credential presented"))
    if any(isinstance(f, KeyTurn) for f in attempt.factors):
        return _mechanical_key(ctx)
    remote = [f for f in attempt.factors if isinstance(f, RemoteCommand)]
    local = [f for f in attempt.factors if not isinstance(f, RemoteCommand)]
    owner_recovery = bool(remote) and remote[0].link_verified and _owner_authorised(remote[0], state)
    if state.lockdown and not owner_recovery:
        return Judgement(ctx.decide(False, Reason.LOCKDOWN, detail=lockdown_detail(state, bool(remote))))
    refused = _mode_refusal(ctx, bool(remote), bool(local))
    if refused is not None:
        return refused
    keypad = [f for f in local if isinstance(f, PinEntry | CodeEntry | RfidEntry)]
    remote_pin = any(f.pin is not None for f in remote)  # a PIN guessed remotely is still a PIN guessed
    if (keypad or remote_pin) and lockout.is_locked_out(state.lockout, at):
        return Judgement(ctx.decide(False, Reason.LOCKED_OUT, detail="keypad disabled after wrong codes"))
    return _resolve(ctx)


OWNER_LOCKDOWN = "owner lockdown"  # how a refusal in an owner's lockdown begins (the feed words it by this)
LOCKDOWN_DETAIL = {  # what the refusal says, by the lockdown's cause
    LockdownCause.COMMAND: f"{OWNER_LOCKDOWN} (an owner's or the app's command): an owner lifts it (limen access "
                           "lockdown off, or the console's Lock page); nothing was erased",
    LockdownCause.TAMPER: "tamper lockdown: faces and fingerprints were erased; an owner re-provisions the lock "
                          "(limen tamper clear) and everyone enrols again",
}
_REMOTE_IN_LOCKDOWN = "; only the owner's command signed on their paired device opens (not the web or an API token)"


def lockdown_detail(state: AccessState, remote: bool = False) -> str:
    """Why a lockdown refuses and what lifts it, by its cause (unknown: a tamper's, the strict way)."""
    text = LOCKDOWN_DETAIL[state.lockdown_cause or LockdownCause.TAMPER]
    return text + _REMOTE_IN_LOCKDOWN if remote else text


def _mechanical_key(ctx: _Context) -> Judgement:
    state = ctx.state
    # Matter: a manual unlock ends privacy mode.
    mode = OperatingMode.NORMAL if state.mode is OperatingMode.PRIVACY else None
    if state.online:
        return Judgement(ctx.decide(True, Reason.GRANTED, credential_id=MECHANICAL_KEY_ID, detail="mechanical key"),
                         Update(mode=mode))
    uses = state.key_offline_uses + 1
    over = uses >= state.config.mechanical_key_offline_limit
    update = Update(
        key_offline_uses=uses,
        owner_reauth_required=True if over else None,
        mode=mode,
        alarms=("mechanical_key_offline_limit",) if over else (),
    )
    detail = f"mechanical key while offline ({uses}/{state.config.mechanical_key_offline_limit})"
    return Judgement(ctx.decide(True, Reason.GRANTED, credential_id=MECHANICAL_KEY_ID, detail=detail), update)


def _owner_authorised(command: RemoteCommand, state: AccessState) -> bool:
    user = state.users.get(command.user_id)
    return command.authorised and user is not None and user.permission is PermissionLevel.OWNER


def _mode_refusal(ctx: _Context, remote: bool, local: bool) -> Judgement | None:
    mode = effective_mode(ctx.state.mode, ctx.state.holidays, ctx.at)
    if remote and mode in (OperatingMode.NO_REMOTE_LOCK_UNLOCK, OperatingMode.PRIVACY):
        return Judgement(ctx.decide(False, Reason.MODE_FORBIDS, detail=f"{mode.value} mode: no remote unlock"))
    if local and mode in (OperatingMode.VACATION, OperatingMode.PRIVACY):
        return Judgement(ctx.decide(False, Reason.MODE_FORBIDS, detail=f"{mode.value} mode: no local unlock"))
    if local and not remote and mode is OperatingMode.PASSAGE:
        return Judgement(ctx.decide(True, Reason.GRANTED, detail="passage mode"))
    return None


# ------------------------------------------------------------------ factors


def _resolve(ctx: _Context) -> Judgement:
    outcomes = [_resolve_factor(f, ctx) for f in ctx.attempt.factors]
    clears = [o for o in outcomes if isinstance(o, offline.ClearRequest)]
    if clears:
        return _cleared(ctx, clears[0])
    failures = [o for o in outcomes if isinstance(o, _Failure)]
    if failures:
        return _failed(ctx, failures)
    matches = [o for o in outcomes if isinstance(o, _Match)]
    users = {m.user_id for m in matches}
    if len(users) != 1:  # a held face and someone else's right PIN: a wrong code, or the count would tell
        return _refused(ctx, Reason.UNKNOWN_CREDENTIAL, None, "", "factors name different users")
    codes = [m for m in matches if m.grant is not None]
    if codes:
        refused = _code_refusal(ctx, codes[0])
        if refused is not None:
            return refused
    return _authorise(ctx, matches)


def _resolve_factor(factor: Factor, ctx: _Context) -> _Match | _Failure | offline.ClearRequest:
    if isinstance(factor, PinEntry):
        return _resolve_pin(factor.digits, ctx.state)
    if isinstance(factor, CodeEntry):
        return _resolve_code(factor.digits, ctx)
    if isinstance(factor, RfidEntry):
        return _resolve_rfid(factor.uid, ctx.state)
    if isinstance(factor, FaceEvidence):
        return _resolve_face(factor, ctx)
    if isinstance(factor, FingerprintEvidence):
        return _resolve_finger(factor, ctx)
    if isinstance(factor, RemoteCommand):
        return _resolve_remote(factor, ctx.state)
    return _Failure(Reason.UNKNOWN_CREDENTIAL)


def _active(state: AccessState, ctype: CredentialType) -> list[Credential]:
    return [c for c in state.credentials if c.type is ctype]


def find_pin(digits: str, state: AccessState, user_id: str | None = None, *, exact: bool = False
             ) -> Credential | None:
    """The stored PIN credential `digits` contains (anti-peep windows; `exact`: equals), or None.

    Checks every candidate window against every stored PIN of its length
    (per-credential salts: `pins.PinMatcher`), all of them even after a match: a right PIN, a disabled or
    expired one and a wrong one cost the same hashing, so the time of the answer tells a guesser nothing.
    The first match (candidates in order, then credentials) is the one returned.
    """
    stored = [c for c in _active(state, CredentialType.PIN) if user_id is None or c.user_id == user_id]
    if not digits.isascii() or not digits.isdigit() or not stored:
        return None
    matcher = (state.pin_hasher or pins.PinHasher(pins.NO_PEPPER, state.pin_salt)).matcher()
    candidates = [digits] if exact else pins.entry_candidates(digits, {c.pin_length or 0 for c in stored})
    pairs = [(candidate, cred.secret) for candidate in candidates for cred in stored
             if cred.pin_length == len(candidate)]
    matcher.prefetch(pairs)
    found: Credential | None = None
    for candidate in candidates:
        for cred in stored:
            if cred.pin_length == len(candidate) and matcher.matches(candidate, cred.secret) and found is None:
                found = cred
    return found


def _resolve_pin(digits: str, state: AccessState, user_id: str | None = None, *, exact: bool = False
                 ) -> _Match | _Failure:
    found = find_pin(digits, state, user_id, exact=exact)
    if found is None:
        return _Failure(Reason.UNKNOWN_CREDENTIAL, keypad=True, detail="wrong PIN")
    return _Match(found.user_id, found)


def _resolve_code(digits: str, ctx: _Context) -> _Match | _Failure | offline.ClearRequest:
    for cred in _active(ctx.state, CredentialType.OFFLINE_CODE):
        result = offline.verify(cred.secret, digits, ctx.at)
        if isinstance(result, offline.ClearRequest):
            return result
        if result is not None:
            return _Match(cred.user_id, cred, result)
    return _Failure(Reason.UNKNOWN_CREDENTIAL, keypad=True, detail="wrong code")


def rfid_digest(uid: str, salt: bytes) -> bytes:
    """What is stored for an RFID tag: HMAC-SHA256 of its normalised UID under the lock's salt."""
    return hmac.new(salt, uid.strip().lower().encode("utf-8"), hashlib.sha256).digest()


def _resolve_rfid(uid: str, state: AccessState) -> _Match | _Failure:
    digest = rfid_digest(uid, state.pin_salt)
    found = [c for c in _active(state, CredentialType.RFID) if hmac.compare_digest(digest, c.secret)]
    if not found:
        return _Failure(Reason.UNKNOWN_CREDENTIAL, keypad=True, detail="unknown tag")
    return _Match(found[0].user_id, found[0])


_NO_FACE_DETAIL = {
    QualityGate.NO_FACE: "no face seen: face the camera, or uncover it",
    QualityGate.SEVERAL_FACES: "several faces seen: one person at a time",
    QualityGate.TOO_SMALL: "face too far away: come closer",
    QualityGate.BLURRED: "face blurred: hold still",
    QualityGate.UNDEREXPOSED: "too dark: uncover the camera or add light",
    QualityGate.OVEREXPOSED: "too bright: step out of the glare",
    QualityGate.HEAD_TURNED: "face the camera",
}


_NOT_LIVE = "not enough evidence of a live face: come closer, face the camera, uncover it"


def _resolve_face(face: FaceEvidence, ctx: _Context) -> _Match | _Failure:
    """No face is not an attack: only an attack verdict or a failed comparison counts as a biometric failure."""
    if face.refusal is Reason.VAULT_ERASED:
        return _Failure(Reason.VAULT_ERASED, detail=face.detail or "templates were crypto-erased")
    if face.pad is not None and face.pad.decision_reason is Reason.PAD_FAILED:
        return _Failure(Reason.PAD_FAILED, biometric=True, detail="face: presentation attack suspected")
    if face.refusal in (Reason.NO_FACE, Reason.LOW_QUALITY):
        gate = face.quality_gate or QualityGate.NO_FACE
        return _Failure(face.refusal, detail=_NO_FACE_DETAIL[gate])
    if face.refusal is Reason.INSUFFICIENT_EVIDENCE:  # not looked at (e.g. no live challenge): not counted
        return _Failure(Reason.INSUFFICIENT_EVIDENCE, detail=face.detail or _NOT_LIVE)
    if face.pad is None or not face.pad.passed:
        return _Failure(Reason.INSUFFICIENT_EVIDENCE, detail=_NOT_LIVE)
    if face.refusal in (Reason.UNKNOWN_USER, Reason.NOT_ENROLLED):
        return _Failure(face.refusal, detail=face.detail)
    return _resolve_biometric(CredentialType.FACE, face.user_id, True, face.matched, ctx.state,
                              weak=not ctx.rule.alone(face))


def _resolve_finger(finger: FingerprintEvidence, ctx: _Context) -> _Match | _Failure:
    """No usable print is not an attack; a finger below its threshold counts only through fusion with a face."""
    if finger.refusal is not None:
        return _Failure(finger.refusal, detail=finger.detail or "fingerprint: no comparison made")
    fused = ctx.fused is not None and ctx.fused.accepted
    return _resolve_biometric(CredentialType.FINGERPRINT, finger.user_id, finger.pad_passed,
                              finger.matched or fused, ctx.state, weak=not ctx.rule.alone(finger))


@dataclass(frozen=True)
class Fusion:
    """Face + finger of one attempt at score level: FMR decades of each, their sum, and whether it suffices."""

    face_decades: float
    finger_decades: float

    @property
    def decades(self) -> float:
        return self.face_decades + self.finger_decades

    @property
    def accepted(self) -> bool:
        return (self.decades >= T.FUSION_MIN_DECADES and self.face_decades >= T.FUSION_FLOOR_DECADES
                and self.finger_decades >= T.FUSION_FLOOR_DECADES)


def finger_decades(score: float) -> float:
    """−log10 FMR of a finger similarity, interpolated between the calibrated points (0 below the first)."""
    points = T.FUSION_FINGER_DECADES
    if score < points[0][0]:
        return 0.0
    for (s0, d0), (s1, d1) in zip(points, points[1:], strict=False):
        if score < s1:
            return d0 + (d1 - d0) * (score - s0) / (s1 - s0)
    return min(points[-1][1], T.FUSION_FINGER_MAX_DECADES)


def fusion(factors: tuple[Factor, ...]) -> Fusion | None:
    """Score-level fusion of the attempt's face and finger, when both are present, usable and name one person.

    Only a face matched at its operating point contributes (FUSION_FACE_MATCHED_DECADES); the finger adds its
    decades.  None when there is nothing to fuse (one modality, a refusal, a PAD failure, two people).
    """
    faces = [f for f in factors if isinstance(f, FaceEvidence)]
    fingers = [f for f in factors if isinstance(f, FingerprintEvidence)]
    if len(faces) != 1 or len(fingers) != 1:
        return None
    face, finger = faces[0], fingers[0]
    if (finger.refusal is not None or not finger.pad_passed or finger.score is None or finger.user_id is None
            or finger.user_id != face.user_id or face.pad is None or not face.pad.passed):
        return None
    face_part = T.FUSION_FACE_MATCHED_DECADES if face.matched else 0.0
    return Fusion(face_part, finger_decades(finger.score))


def _resolve_biometric(ctype: CredentialType, user_id: str | None, pad_passed: bool, matched: bool,
                       state: AccessState, *, weak: bool) -> _Match | _Failure:
    if not pad_passed:
        return _Failure(Reason.PAD_FAILED, biometric=True, detail=f"{ctype.value}: presentation attack suspected")
    if user_id is None or not matched:
        return _Failure(Reason.NO_MATCH, biometric=True, detail=f"{ctype.value}: not recognised")
    explicit = state.credentials_of(user_id, ctype)
    cred = explicit[0] if explicit else Credential(id=f"{ctype.value}:{user_id}", user_id=user_id, type=ctype, index=0)
    return _Match(user_id, cred, first_factor_only=weak)


def _resolve_remote(command: RemoteCommand, state: AccessState) -> _Match | _Failure:
    if not _owner_authorised(command, state):
        return _Failure(Reason.REMOTE_NOT_AUTHORISED, detail="remote unlock needs an owner's signed command")
    remote_cred = Credential(id=f"remote:{command.device}", user_id=command.user_id,
                             type=CredentialType.PIN, index=0)
    if not state.config.require_pin_for_remote:
        return _Match(command.user_id, remote_cred)
    if command.pin is None:
        return _Failure(Reason.PIN_REQUIRED, detail="remote unlock requires the owner's PIN")
    return _resolve_pin(command.pin, state, user_id=command.user_id, exact=True)  # no decoys from afar


def remote_step_up(attempt: Attempt, state: AccessState, at: datetime) -> Judgement:
    """The owner's PIN a remote action that makes a way in (a new person's PIN, an offline code) needs, judged as
    a remote unlock's (`remote_attempt`): a PIN on a locked-out keypad is LOCKED_OUT (rule 4); `_resolve_remote`
    (rule 5) gives REMOTE_NOT_AUTHORISED, PIN_REQUIRED while `require_pin_for_remote` is on and none came, or a
    wrong PIN (UNKNOWN_CREDENTIAL) counted toward the keypad lockout; then the unlock's checks of who gave it and
    of the PIN itself (`_step_up_refusal`: a disabled or non-access owner, a revoked, out-of-window, used-up or
    too old PIN), a refusal counted as a wrong code as at the door (`_WRONG_AT_THE_KEYPAD`) when a PIN was
    checked, and the PIN not recorded as used.  Accepted: GRANTED, or DURESS with the silent "duress" alarm for a
    forced owner (as `_granted`; `attempts.step_up` audits it).  The door's other rules (lockdown, mode,
    schedule, ...) are the unlock's alone: nothing opens here."""
    ctx = _Context(attempt, state, at, AssuranceRule())
    commands = [f for f in attempt.factors if isinstance(f, RemoteCommand)]
    if len(commands) != 1 or len(attempt.factors) != 1:
        return Judgement(ctx.decide(False, Reason.REMOTE_NOT_AUTHORISED, detail="one owner's remote command"))
    command = commands[0]
    if command.pin is not None and lockout.is_locked_out(state.lockout, at):
        return Judgement(ctx.decide(False, Reason.LOCKED_OUT, detail="keypad disabled after wrong codes"))
    resolved = _resolve_remote(command, state)
    if isinstance(resolved, _Failure):
        return _failed(ctx, [resolved])
    user = state.users[resolved.user_id]
    checked = command.pin is not None and state.config.require_pin_for_remote
    refusal = _step_up_refusal(state, user, resolved.credential, at)
    if refusal is not None:
        reason, detail = refusal
        lock = lockout.after_wrong_code(state.lockout, state.config, at) if checked else None
        return Judgement(ctx.decide(False, reason, user, resolved.credential.id, detail, lock=lock),
                         Update(lockout=lock))
    duress = user.user_type is UserType.FORCED  # as `_granted`: the action goes on, the alarm is silent
    return Judgement(ctx.decide(True, Reason.DURESS if duress else Reason.GRANTED, user, resolved.credential.id),
                     Update(pin_used_by=user.user_id if checked else None, alarms=("duress",) if duress else ()))


def _step_up_refusal(state: AccessState, user: AccessUser, credential: Credential, at: datetime
                     ) -> tuple[Reason, str] | None:
    """The remote unlock's checks (`_user_refusal`, `_credential_refusal`) a step-up's owner and PIN must pass too:
    each refusal one of `_WRONG_AT_THE_KEYPAD`'s; an owner who may program (`_resolve_remote` asked for one)."""
    if user.status is not UserStatus.ENABLED:
        return Reason.DISABLED_USER, f"user is {user.status.value}"
    if user.user_type is UserType.NON_ACCESS:
        return Reason.DISABLED_USER, "non-access user"
    if not user.permission.programs:
        return Reason.DISABLED_USER, "not an owner or administrator"
    return _stored_credential_refusal(state, user, credential, at)


def _failed(ctx: _Context, failures: list[_Failure]) -> Judgement:
    first = failures[0]
    lock = ctx.state.lockout
    if any(f.keypad for f in failures):
        lock = lockout.after_wrong_code(lock, ctx.state.config, ctx.at)
    if any(f.biometric for f in failures):
        lock = lockout.after_bio_failure(lock)
    return Judgement(ctx.decide(False, first.reason, detail=first.detail, lock=lock), Update(lockout=lock))


# ------------------------------------------------------------------ offline codes


def _code_refusal(ctx: _Context, match: _Match) -> Judgement | None:
    grant = match.grant
    assert grant is not None
    state, at = ctx.state, ctx.at
    cid = f"code:{grant.code_id}"
    if match.credential.revoked:
        return _refused(ctx, Reason.CREDENTIAL_REVOKED, None, cid, "the issuer's code secret is revoked")
    if grant.code_id in state.revoked_codes:
        return _refused(ctx, Reason.CREDENTIAL_REVOKED, None, cid, "code revoked")
    if not grant.start <= at < grant.end:
        return _refused(ctx, Reason.CREDENTIAL_EXPIRED, None, cid, "outside code window")
    uses = [u for u in state.code_uses if u.code_id == grant.code_id]
    if grant.kind is offline.CodeKind.SINGLE_USE and uses:
        return _refused(ctx, Reason.CODE_REPLAYED, None, cid, "code already used")
    if grant.uses_per_day is not None:
        today = [u for u in uses if u.at.date() == at.date()]
        if len(today) >= grant.uses_per_day:
            return _refused(ctx, Reason.CREDENTIAL_EXHAUSTED, None, cid, "daily quota used")
    return None


# A keypad credential refused for what it is (revoked, expired, used up, its user disabled or remote-only,
# someone else's than the held face's) counts as a wrong code, and the door says the same as for one (the audit
# keeps the reason): a guesser learns nothing from it.
_WRONG_AT_THE_KEYPAD = frozenset({Reason.CREDENTIAL_REVOKED, Reason.CREDENTIAL_EXPIRED, Reason.CREDENTIAL_EXHAUSTED,
                                  Reason.CODE_REPLAYED, Reason.DISABLED_USER, Reason.REMOTE_ONLY_USER,
                                  Reason.UNKNOWN_USER, Reason.UNKNOWN_CREDENTIAL})
_KEYPAD = PinEntry | CodeEntry | RfidEntry


def remote_reply(reason: Reason) -> str:
    """What a remote command's sender is told of the door's decision: a duress opening is "granted" (the coercer
    may hold the phone that sent it), and a refusal of a PIN that matched (revoked, expired, used up, a disabled
    or remote-only person: `_WRONG_AT_THE_KEYPAD`) is a wrong PIN, "unknown_credential", as the door's screen
    says; the audit keeps the real reason.  Any other reason as it is."""
    if reason is Reason.DURESS:
        return Reason.GRANTED.value
    return Reason.UNKNOWN_CREDENTIAL.value if reason in _WRONG_AT_THE_KEYPAD else reason.value


def _refused(ctx: _Context, reason: Reason, user: AccessUser | None, cred_id: str, detail: str = "") -> Judgement:
    """A refusal after a credential matched; it counts toward the keypad lockout like a wrong code when it is
    of a keypad credential (`_WRONG_AT_THE_KEYPAD`) or when the attempt was keypad entries only.

    The second: a right PIN / code / tag refused for who or when (FACE_FIRST, SECOND_FACTOR_MISSING,
    OUTSIDE_SCHEDULE, OWNER_REAUTH_REQUIRED, ...) keeps its guiding message for the person it belongs to
    ("show your face first", "not allowed at this time"), and so tells a guesser the entry was right: each
    such answer spends a try, so the lockout bounds what a guesser learns as it bounds what they open.
    A held face completed by the PIN is not keypad-only: that attempt costs nothing.
    A remote command whose PIN was checked (`require_pin_for_remote`) counts as keypad-only, as its step-up
    (`remote_step_up`) does: else a stolen phone would try PINs against the revoked ones for free.
    """
    keypad = [f for f in ctx.attempt.factors if isinstance(f, _KEYPAD)]
    keypad_only = bool(keypad) and len(keypad) == len(ctx.attempt.factors)
    keypad_only = keypad_only or (ctx.state.config.require_pin_for_remote and any(
        isinstance(f, RemoteCommand) and f.pin is not None for f in ctx.attempt.factors))
    if keypad_only or (keypad and reason in _WRONG_AT_THE_KEYPAD):
        lock = lockout.after_wrong_code(ctx.state.lockout, ctx.state.config, ctx.at)
        return Judgement(ctx.decide(False, reason, user, cred_id or None, detail, lock=lock), Update(lockout=lock))
    return Judgement(ctx.decide(False, reason, user, cred_id or None, detail))


def _cleared(ctx: _Context, request: offline.ClearRequest) -> Judgement:
    update = Update(revoke_code=request.target_id)
    return Judgement(ctx.decide(False, Reason.CODE_CLEARED, credential_id=f"code:{request.target_id}",
                                detail="offline code revoked"), update)


# ------------------------------------------------------------------ the user and their credentials


def _authorise(ctx: _Context, matches: list[_Match]) -> Judgement:
    state = ctx.state
    user = state.users.get(matches[0].user_id)
    cred_id = "+".join(m.credential.id if m.grant is None else f"code:{m.grant.code_id}" for m in matches)
    if user is None:
        return _refused(ctx, Reason.UNKNOWN_USER, None, cred_id)
    refusal = _user_refusal(ctx, user, matches)
    if refusal is None:
        refusal = _credential_refusal(ctx, user, matches)
    if refusal is not None:
        reason, detail = refusal
        return _refused(ctx, reason, user, cred_id, detail)
    return _granted(ctx, user, matches, cred_id)


def _user_refusal(ctx: _Context, user: AccessUser, matches: list[_Match]) -> tuple[Reason, str] | None:
    state, at = ctx.state, ctx.at
    remote = any(isinstance(f, RemoteCommand) for f in ctx.attempt.factors)
    if user.status is not UserStatus.ENABLED:
        return Reason.DISABLED_USER, f"user is {user.status.value}"
    if user.user_type is UserType.NON_ACCESS:
        return Reason.DISABLED_USER, "non-access user"
    if user.user_type is UserType.REMOTE_ONLY and not remote:
        return Reason.REMOTE_ONLY_USER, "remote-only user"
    if any(m.grant is not None for m in matches) and not user.permission.programs:
        return Reason.DISABLED_USER, "code issuer no longer programs this lock"
    week = [s for s in state.week_days if s.user_id == user.user_id]
    year = [s for s in state.year_days if s.user_id == user.user_id]
    if not schedule_allows(user, week, year, at, zone(state.config.timezone)):
        return Reason.OUTSIDE_SCHEDULE, ""
    return None


def _credential_refusal(ctx: _Context, user: AccessUser, matches: list[_Match]) -> tuple[Reason, str] | None:
    state, at = ctx.state, ctx.at
    for m in matches:
        stored = None if m.grant is not None else _stored_credential_refusal(state, user, m.credential, at)
        if stored is not None:
            return stored
    types = {m.credential.type for m in matches}
    biometric_only = types <= BIOMETRIC_TYPES
    if biometric_only and lockout.pin_required_by_failures(state.lockout, state.config) \
            and _has_second_factor(state, user):
        return Reason.PIN_REQUIRED, "too many biometric failures: enter your PIN as well"
    if len(types) < 2 and any(m.first_factor_only for m in matches):
        what = "face" if CredentialType.FACE in types else "fingerprint"
        if _has_second_factor(state, user):
            return Reason.SECOND_FACTOR_MISSING, f"{what} recognised; enter your PIN/code to complete"
        return Reason.SECOND_FACTOR_MISSING, (f"{what} recognised, but this sensor cannot open alone and the user "
                                              "has no PIN/code: the owner adds one")
    if len(types) < user.credential_rule.factors and not types & BIOMETRIC_TYPES \
            and not any(isinstance(f, RemoteCommand) for f in ctx.attempt.factors):
        # a face held for the PIN is volatile (a restart forgets it): say so, never "wrong code"
        return Reason.FACE_FIRST, f"{user.credential_rule.value} rule: show your face (or finger) first, then the PIN"
    if len(types) < user.credential_rule.factors:
        return Reason.SECOND_FACTOR_MISSING, f"{user.credential_rule.value} rule needs {user.credential_rule.factors}"
    if types <= BIOMETRIC_TYPES and _strong_auth_stale(state, user, at):
        return Reason.PIN_REQUIRED, f"PIN not used for {state.config.strong_auth_max_age_h} h"
    if state.owner_reauth_required and user.permission is not PermissionLevel.OWNER:
        return Reason.OWNER_REAUTH_REQUIRED, "mechanical key alarm: an owner must open once"
    return None


def _stored_credential_refusal(state: AccessState, user: AccessUser, c: Credential, at: datetime
                               ) -> tuple[Reason, str] | None:
    """Whether the credential itself may be used now: revoked, outside its window, used up, a PIN too old."""
    if c.revoked:
        return Reason.CREDENTIAL_REVOKED, f"{c.type.value} revoked"
    if (c.valid_from and at < c.valid_from) or (c.valid_until and at >= c.valid_until):
        return Reason.CREDENTIAL_EXPIRED, f"{c.type.value} outside its validity window"
    if c.expire_after_first_use_s is not None and c.first_used_at is not None \
            and at >= c.first_used_at + timedelta(seconds=c.expire_after_first_use_s):
        return Reason.CREDENTIAL_EXPIRED, f"{c.type.value} expired after first use"
    if c.max_uses is not None and c.uses >= c.max_uses:
        return Reason.CREDENTIAL_EXHAUSTED, f"{c.type.value} used {c.uses} of {c.max_uses} times"
    if c.backup and not state.online and c.offline_max_uses is not None and c.offline_uses >= c.offline_max_uses:
        return Reason.CREDENTIAL_EXHAUSTED, "backup PIN: offline uses exhausted"
    if c.type is CredentialType.PIN and user.pin_max_age_days is not None and c.created_at is not None \
            and at >= c.created_at + timedelta(days=user.pin_max_age_days):
        return Reason.CREDENTIAL_EXPIRED, "PIN too old: the owner requires a new one"
    return None


def _has_second_factor(state: AccessState, user: AccessUser) -> bool:
    """Whether the user has a non-biometric credential to give (PIN or tag), so asking for it strands nobody."""
    return any(c.type in (CredentialType.PIN, CredentialType.RFID) and not c.revoked
               for c in state.credentials_of(user.user_id))


def _strong_auth_stale(state: AccessState, user: AccessUser, at: datetime) -> bool:
    user_pins = state.credentials_of(user.user_id, CredentialType.PIN)
    if not user_pins:
        return False
    created = [c.created_at for c in user_pins if c.created_at is not None]
    last = user.last_pin_at or (max(created) if created else None)
    if last is None:
        return True
    return at - last > timedelta(hours=state.config.strong_auth_max_age_h)


def _granted(ctx: _Context, user: AccessUser, matches: list[_Match], cred_id: str) -> Judgement:
    state, at = ctx.state, ctx.at
    lock = state.lockout
    types = {m.credential.type for m in matches}
    if any(isinstance(f, PinEntry | CodeEntry | RfidEntry) for f in ctx.attempt.factors):
        lock = lockout.after_keypad_success(lock)
    if types & BIOMETRIC_TYPES:
        lock = lockout.after_bio_success(lock)
    pin_used = any(isinstance(f, PinEntry) for f in ctx.attempt.factors) or any(
        isinstance(f, RemoteCommand) and f.pin for f in ctx.attempt.factors
    )
    stored = tuple(m.credential.id for m in matches if m.grant is None and m.credential.index > 0)
    grant = next((m.grant for m in matches if m.grant is not None), None)
    duress = user.user_type is UserType.FORCED
    reauth_cleared = state.owner_reauth_required and user.permission is PermissionLevel.OWNER
    update = Update(
        lockout=lock,
        credentials_used=stored,
        pin_used_by=user.user_id if pin_used else None,
        code_use=CodeUse(grant.code_id, at) if grant else None,
        owner_reauth_required=False if reauth_cleared else None,
        key_offline_uses=0 if reauth_cleared else None,
        alarms=("duress",) if duress else (),
    )
    reason = Reason.DURESS if duress else Reason.GRANTED
    return Judgement(ctx.decide(True, reason, user, cred_id, lock=lock), update)

