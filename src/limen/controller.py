"""`AccessController`: every attempt, from its input to one Decision, one audit record and the door.

Every way in becomes an `Attempt` and takes the same path:

    evidence (face: the recognizer on the Capture; finger: the finger source on
              the sensor's image; keypad: the typed entry; remote: the signed command)
      → a pending tamper response?  finish it and refuse (fail closed)
      → policy.judge (pure, in one DB transaction with the counters it changes)
      → exactly one UNLOCK_ATTEMPT audit record (+ an alarm only the controller knows of)
      → door.unlock() only if accepted and the record is durable

If the audit sink fails the door stays shut (fail closed); the counters are
already saved, so a failing sink never resets a lockout.

Each attempt's stage times (evidence and the recognizer's own stages, decide,
audit, door) go to `limen.trace` (`limen serve --trace FILE`): names and
milliseconds only.

A face recognised below the assurance that may open alone (an RGB camera:
see `AssuranceRule`) is a first factor: the controller holds it, bound to the
kiosk session it came from, for `SECOND_FACTOR_WINDOW_S`; that session's next
keypad entry is judged together with it (face + PIN is one attempt).  Nothing
the client sends can stand in for the held face.

A fingerprint takes the same path.  These optical sensors report no liveness,
so a finger is MEDIUM assurance: alone it is a first factor, held like a face.
A held face is completed by a finger of the same person (compared 1:1 with
that person, never 1:N) and a held finger by a face: face + finger is two
factors, judged as one attempt with score-level fusion (`policy.fusion`).
`face_and_finger` judges both captured at once (the finger names the person,
the face is compared with that person).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from limen import thresholds as T
from limen import trace
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
    Source,
    face_attempt,
    finger_attempt,
    key_attempt,
    keypad_entry,
    remote_attempt,
)
from limen.access.policy import AssuranceRule
from limen.access.store import AccessStore
from limen.audit.event import AuditSink, Event, EventKind, attempt_event
from limen.clock import Clock, SystemClock
from limen.decision import Decision, Reason, reject
from limen.door.actuator import LockActuator, LockState
from limen.pad.challenge import CAPTURE_META_KEY

if TYPE_CHECKING:
    from limen.capture import Capture
    from limen.fingerprint import FingerProbe


class FaceSource(Protocol):
    """What the controller needs of the recognizer: typed evidence of one capture (1:1 or 1:N)."""

    def verify(self, name: str, capture: Capture) -> FaceEvidence: ...

    def identify(self, capture: Capture) -> FaceEvidence: ...


class FingerSource(Protocol):
    """What the controller needs of the fingerprint side: typed evidence of one probe (1:1 or 1:N) — the
    sensor's image (matched on the host) or the module's own search (`limen.fingerprint.SensorMatch`).

    `name` is a person's name or id; a bad capture is evidence with a refusal, never an exception."""

    def verify(self, name: str, image: FingerProbe) -> FingerprintEvidence: ...

    def identify(self, image: FingerProbe) -> FingerprintEvidence: ...


class TamperIntent(Protocol):
    """The tamper intent journal as the door path sees it (see `limen.tamper.gate.IntentCheck`)."""

    def pending(self) -> bool: ...

    def finish(self) -> None: ...


Biometric = FaceEvidence | FingerprintEvidence


@dataclass(frozen=True)
class _Held:
    factor: Biometric
    until: float


class AccessController:
    """Ties recognition, the access engine, the door and the audit trail.  One per lock; not thread-safe."""

    def __init__(self, store: AccessStore, door: LockActuator, audit: AuditSink, clock: Clock | None = None, *,
                 faces: FaceSource | None = None, rule: AssuranceRule | None = None,
                 tamper: TamperIntent | None = None, fingers: FingerSource | None = None) -> None:
        self.store = store
        self.door = door
        self.audit = audit
        self.clock = clock or SystemClock()
        self.faces = faces
        self.fingers = fingers
        self.rule = rule or AssuranceRule()
        self.tamper = tamper
        self._held: dict[str, _Held] = {}
        self._last_bolt: str | None = None
        self._last_door: str | None = None
        self._last_key: bool | None = None

    # ------------------------------------------------------------------ the ways in
    def face(self, capture: Capture, *, claim: str | None = None, session: str | None = None,
             source: Source = Source.CAMERA, challenged: bool = False) -> Decision:
        """A face at the door: evidence (1:N, or 1:1 against `claim`) → policy → audit → door.

        A face recognised as a first factor is held for `session` (the kiosk it came from).  A finger
        held for `session` is completed: the face is compared with that finger's person, both judged at once.
        `challenged`: the burst must answer a live head-move challenge (the moves in the capture's meta,
        put there by whoever issued it); without one the burst is not looked at: it is refused for
        insufficient evidence (recorded, never counted), and what `session` holds is left alone.
        """
        if self.faces is None:
            raise RuntimeError("this controller has no face recognizer")  # a wiring error, not an input error
        if challenged and not capture.meta.get(CAPTURE_META_KEY):
            return self.attempt(face_attempt(_UNCHALLENGED, source=source))
        entry = self._take(session)
        finger = entry.factor if entry is not None and isinstance(entry.factor, FingerprintEvidence) else None
        claim = finger.user_id if finger is not None and finger.user_id is not None else claim
        t0 = time.perf_counter()
        evidence = self.faces.identify(capture) if claim is None else self.faces.verify(claim, capture)
        extra = () if finger is None else (finger,)
        decision = self._decide(face_attempt(evidence, *extra, source=source), _evidence_ms(t0, evidence))
        if finger is None:
            self._hold(session, evidence, decision)
        elif evidence.refusal in (Reason.NO_FACE, Reason.LOW_QUALITY):
            self._keep(session, entry)  # no face seen: the finger still waits, within its window
        return decision

    def finger(self, image: FingerProbe, *, claim: str | None = None, session: str | None = None,
               source: Source = Source.FINGERPRINT_SENSOR) -> Decision:
        """A finger at the door: evidence (1:N, or 1:1 against `claim`) → policy → audit → door.

        `image` is the sensor's grey image, or what the module's own search found (`finger_matching =
        "sensor"`); every entry point reads it with `limen.fingerprint.read`.  A face held for `session` is
        completed: the finger is compared with that face's person (1:1) and both are judged as one attempt
        (fused).  A finger recognised as a first factor (no sensor liveness: MEDIUM) is held for `session`, for a
        PIN, code or face.
        """
        if self.fingers is None:
            raise RuntimeError("this controller has no fingerprint source")  # a wiring error, not an input error
        entry = self._take(session)
        face = entry.factor if entry is not None and isinstance(entry.factor, FaceEvidence) else None
        claim = face.user_id if face is not None and face.user_id is not None else claim
        t0 = time.perf_counter()
        evidence = self.fingers.identify(image) if claim is None else self.fingers.verify(claim, image)
        extra = () if face is None else (face,)
        decision = self._decide(finger_attempt(evidence, *extra, source=source), _evidence_ms(t0))
        if face is None:
            self._hold(session, evidence, decision)
        elif evidence.refusal is Reason.LOW_QUALITY:
            self._keep(session, entry)  # an unreadable print: the face still waits, within its window
        return decision

    def face_and_finger(self, capture: Capture, image: np.ndarray, *, claim: str | None = None,
                        source: Source = Source.CAMERA) -> Decision:
        """Face and finger captured together: one attempt, two factors, fused at score level.

        Without `claim` the finger names the person (1:N) and the face is compared with that person (1:1),
        so the two factors can only ever speak of one person.
        """
        if self.faces is None or self.fingers is None:
            raise RuntimeError("this controller lacks a face recognizer or a fingerprint source")
        t0 = time.perf_counter()
        finger = self.fingers.identify(image) if claim is None else self.fingers.verify(claim, image)
        who = claim or finger.user_id
        face = self.faces.identify(capture) if who is None else self.faces.verify(who, capture)
        return self._decide(Attempt((face, finger), source), _evidence_ms(t0, face))

    def keypad(self, typed: str, *, session: str | None = None) -> Decision:
        """A raw keypad entry (digits: a PIN, decoys allowed; `*` + digits: an offline code).

        Within the window after a first-factor face at the same `session`, the
        entry completes that face: both are judged as one attempt.
        """
        attempt = keypad_entry(typed)
        held = self._take_held(session)
        if held is not None:
            attempt = Attempt((held, *attempt.factors), Source.KEYPAD)
        return self.attempt(attempt)

    def remote(self, user_id: str, authorised: bool, pin: str | None = None, device: str = "remote",
               link_verified: bool = False) -> Decision:
        """A remote unlock whose owner signature (or owner login) the caller checked (`authorised`); only one whose
        signature the link verified (`link_verified`) opens during a lockdown."""
        return self.attempt(remote_attempt(user_id, authorised, pin, device, link_verified))

    def key_turned(self) -> Decision:
        """The key-inserted sensor fired: record the mechanical key (the door is not driven)."""
        return self.attempt(key_attempt())

    def attempt(self, attempt: Attempt) -> Decision:
        """Decide, record once, and open the door if accepted; return the Decision."""
        return self._decide(attempt, {})

    def _decide(self, attempt: Attempt, stages: dict[str, float]) -> Decision:
        """`attempt` with the evidence's timings so far in `stages`; each stage's time goes to `trace`."""
        at = self.clock.now()
        lap = _Lap(stages)
        physical = any(isinstance(f, KeyTurn) for f in attempt.factors)
        try:
            if not physical and self.tamper is not None and self.tamper.pending():
                self.tamper.finish()  # an interrupted tamper response completes before any door work
                decision = reject(Reason.LOCKDOWN, detail="a tamper response was pending: finished, lock secured")
                self.door.secure()  # before the record: a failing audit sink must not leave the door open
                self.audit.append(_attempt_event(attempt, decision, at))
                return decision
            judgement = self.store.decide(attempt, at, self.rule)
            decision = judgement.decision
            lap("decide")
            self.audit.append(_attempt_event(attempt, decision, at))
            if "mechanical_key_offline_limit" in judgement.update.alarms:
                self.audit.raise_alarm("mechanical_key", "critical", _KEY_LIMIT_TEXT, subject="door", at=at)
            lap("audit")
            if decision.accepted and not physical:
                self.door.unlock()
            lap("door")
            self.tick()
            return decision
        finally:
            trace.emit(trace.ATTEMPT, lambda: lap.record(_methods(attempt)))

    def holding_face(self, session: str) -> bool:
        """Whether a first-factor face waits for `session`'s PIN/code/finger (for the kiosk's prompt)."""
        return self.holding(session) == "face"

    def holding(self, session: str) -> str | None:
        """Which first factor ("face", "fingerprint") waits for `session`'s second one, if any."""
        held = self._held.get(_key(session))
        if held is None or self.clock.monotonic() >= held.until:
            return None
        return "face" if isinstance(held.factor, FaceEvidence) else "fingerprint"

    def _hold(self, session: str | None, evidence: Biometric, decision: Decision) -> None:
        """Keep a recognised first factor for `session`'s next input (or forget what the session held)."""
        if session is None:
            return
        self._held.pop(_key(session), None)
        if decision.reason in _ASKS_FOR_PIN and evidence.matched:
            self._held[_key(session)] = _Held(evidence, self.clock.monotonic() + T.SECOND_FACTOR_WINDOW_S)

    def _keep(self, session: str | None, entry: _Held | None) -> None:
        if session is not None and entry is not None:
            self._held[_key(session)] = entry

    def _take(self, session: str | None) -> _Held | None:
        """Remove and return what `session` holds, if still within its window (expired ones are forgotten)."""
        if session is None:
            return None
        held = self._held.pop(_key(session), None)
        now = self.clock.monotonic()
        for k in [k for k, h in self._held.items() if now >= h.until]:  # forget expired factors
            del self._held[k]
        return held if held is not None and now < held.until else None

    def _take_held(self, session: str | None) -> Biometric | None:
        entry = self._take(session)
        return entry.factor if entry is not None else None

    # ------------------------------------------------------------------ the door
    def lock(self, actor: str | None = None, source: str = "api") -> LockState:
        """Drive the bolt to locked; a request by `actor` (an owner's lock from `source`) is recorded first."""
        if actor is not None:
            self.audit.append(Event(EventKind.LOCK_STATE, self.clock.now(), actor=actor, subject="lock",
                                    reason="lock requested", source=source, data={"state": "locking"}))
        self.door.lock()
        return self.tick()

    def secure(self) -> LockState:
        """Drive to locked at once (tamper response); never raises."""
        state = self.door.secure()
        with contextlib.suppress(Exception):  # securing must not fail because the audit sink did
            self.tick()
        return state

    def tick(self) -> LockState:
        """Poll the door (auto-relock, jam detection) and record bolt and door changes; call periodically.

        A jam is recorded as a LOCK_STATE "jammed" event, from which the audit's anomaly rules raise the alarm.
        The door's key switch closing (a key inserted since the last poll) is the mechanical key: it is judged
        and recorded as an attempt (`key_turned`), so the offline key limit counts real key uses.
        """
        state = self.door.poll()
        bolt = "jammed" if self.door.is_jammed else ("locked" if self.door.is_locked else "unlocked")
        moving = self.door.is_locking or self.door.is_unlocking
        door = "open" if self.door.is_open else "closed"
        at = self.clock.now()
        if bolt != self._last_bolt and (not moving or bolt == "jammed"):
            self.audit.append(Event(EventKind.LOCK_STATE, at, actor="system", subject="lock", reason=bolt,
                                    source="door", data={"state": bolt}))
            self._last_bolt = bolt
        if door != self._last_door:
            if self._last_door is not None or door == "open":
                self.audit.append(Event(EventKind.DOOR_STATE, at, actor="system", subject="door", reason=door,
                                        source="door", data={"state": door}))
            self._last_door = door
        key = self.door.key_inserted
        turned = key and self._last_key is False  # an edge seen while polling; a key in at start is not one
        self._last_key = key
        if turned:
            self.key_turned()
        return state


_ASKS_FOR_PIN = (Reason.SECOND_FACTOR_MISSING, Reason.PIN_REQUIRED)  # a recognised face the PIN completes
_UNCHALLENGED = FaceEvidence(None, None, None, None, refusal=Reason.INSUFFICIENT_EVIDENCE,
                             detail="no live head-move challenge for this burst")
_KEY_LIMIT_TEXT = "mechanical key used repeatedly while offline: owner must re-authorise"
_METHOD: dict[type[Any], str] = {
    FaceEvidence: "face", FingerprintEvidence: "fingerprint", PinEntry: "pin", CodeEntry: "code",
    RfidEntry: "nfc", RemoteCommand: "remote", KeyTurn: "key",
}


def _key(session: str) -> str:
    """Sessions are held by digest: a kiosk cookie never sits in memory as a dict key."""
    return hashlib.sha256(session.encode("utf-8", "surrogatepass")).hexdigest()


def _pad_label(factors: tuple[Factor, ...]) -> str | None:
    """What PAD said about the attempt's biometrics: attack > insufficient_evidence > bona_fide."""
    labels = []
    for f in factors:
        if isinstance(f, FaceEvidence) and f.pad is not None:
            labels.append(f.pad.reason)
        elif isinstance(f, FingerprintEvidence) and f.refusal is None:  # no liveness report: not judged
            labels.append("attack" if not f.pad_passed else "bona_fide" if f.sensor_liveness else "")
    for label in ("attack", "insufficient_evidence", "bona_fide"):
        if label in labels:
            return label
    return None


class _Lap:
    """Milliseconds per stage of one attempt, for `trace` (names and numbers only)."""

    def __init__(self, stages: dict[str, float]) -> None:
        self.stages = stages
        self.start = self.last = time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages[stage] = (now - self.last) * 1000
        self.last = now

    def record(self, methods: list[str]) -> dict[str, Any]:
        total = self.stages.get("evidence", 0.0) + (time.perf_counter() - self.start) * 1000
        return {"method": "+".join(methods), "stages_ms": {k: round(v, 2) for k, v in self.stages.items()},
                "total_ms": round(total, 2)}


def _evidence_ms(t0: float, face: FaceEvidence | None = None) -> dict[str, float]:
    """The evidence stage's time since `t0`, with the face pipeline's own stages (`evidence.detect`, …)."""
    stages = {"evidence": (time.perf_counter() - t0) * 1000}
    if face is not None:
        stages.update({f"evidence.{k}": v for k, v in face.timings.items()})
    return stages


def _methods(attempt: Attempt) -> list[str]:
    return [_METHOD[type(f)] for f in attempt.factors]


def _attempt_event(attempt: Attempt, decision: Decision, at: datetime) -> Event:
    """The UNLOCK_ATTEMPT event in the audit package's conventions (method, pad, duress, device)."""
    methods = _methods(attempt)
    extra: dict[str, Any] = {"factors": methods, "detail": decision.detail}
    if decision.reason is Reason.DURESS:
        extra["duress"] = True
    remote = [f for f in attempt.factors if isinstance(f, RemoteCommand)]
    if remote:
        extra["device"] = remote[0].device
    return attempt_event(decision, at, methods[0] if methods else "unknown", attempt.source.value,
                         pad=_pad_label(attempt.factors), **extra)


__all__ = ["AccessController", "FaceSource", "FingerSource", "TamperIntent"]
