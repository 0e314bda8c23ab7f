"""Face enrolment, verification (1:1) and identification (1:N), each returning a value.

The recipe: capture → PAD → face pipeline → template store → `Decision`,
with an audit event for every attempt.  References go only through the
`TemplateStore` (the vault in production); images and descriptors are never
persisted here.  Enrolment is all-or-nothing: any unreadable input, refused
consent or spoof leaves no trace but the audit event.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from limen import people, thresholds
from limen.audit.event import AuditSink, Event, EventKind, attempt_event
from limen.bio.face import FaceEngine, FaceSample, QualityFailure, detect
from limen.bio.face.compare import fuse_reference
from limen.bio.face.detect import Box
from limen.bio.templates import Modality, OperatingPoint, TemplateStore
from limen.capture import Capture
from limen.clock import Clock, SystemClock
from limen.db import transaction
from limen.decision import Assurance, Decision, QualityGate, Reason, accept, reject
from limen.errors import InputError, NotFound, VaultErased


class PadVerdictLike(Protocol):
    passed: bool
    assurance: Assurance
    scores: dict[str, float]
    reason: str


# (capture, "enrol" | "verify", face box per frame or None where unknown) -> verdict
PadCheck = Callable[[Capture, str, Sequence["Box | None"] | None], PadVerdictLike]


class EnrolmentRefused(InputError):
    """Enrolment did not happen (spoof suspected, no usable face); nothing was stored."""

    def __init__(self, reason: Reason, message: str, gate: QualityGate | None = None) -> None:
        self.reason, self.gate = reason, gate
        super().__init__(message)


@dataclass(frozen=True)
class Enrolment:
    user_id: str
    name: str
    samples: int
    rejected: dict[str, int]
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Probe:
    sample: FaceSample | None
    failure: QualityFailure | None
    pad: PadVerdictLike | None
    timings: dict[str, float]


class FaceRecognizer:
    """Enrol, verify and identify faces against one `TemplateStore`.

    Thread-safety: one instance per thread (the SQLite connection is shared
    only if the caller serialises access).
    """

    def __init__(self, conn: sqlite3.Connection, store: TemplateStore, audit: AuditSink, *,
                 engine: FaceEngine | None = None, pad: PadCheck | None = None,
                 clock: Clock | None = None, point: OperatingPoint = OperatingPoint.DEFAULT) -> None:
        self.conn, self.store, self.audit = conn, store, audit
        self.engine = engine or FaceEngine()
        self.pad = pad
        self.clock = clock or SystemClock()
        self.point = point

    # ------------------------------------------------------------------ enrol
    def enrol(self, name: str, captures: Sequence[Capture], consent: people.Consent, actor: str) -> Enrolment:
        """Enrol `name` from several images/videos; raise `EnrolmentRefused` or an input error."""
        consent = consent.validated()
        name = people.validate_name(name)
        if not captures:
            raise EnrolmentRefused(Reason.NO_FACE, "no images given to enrol")
        samples, rejected = self._enrolment_samples(name, captures, actor)
        reference = fuse_reference(np.array([s.embedding for s in samples]))
        at = self.clock.now()
        with transaction(self.conn):
            person = people.new_person(self.conn, name, actor, at)
            people.record_consent(self.conn, person, Modality.FACE, consent, actor, at)
            people.record_enrolment(self.conn, person, Modality.FACE, len(samples), actor, at)
        try:
            self.store.put(person.id, Modality.FACE, reference)
        except BaseException:
            people.delete(self.conn, person)  # all or nothing: no person without a reference
            raise
        finally:
            reference.fill(0.0)
        self.audit.append(Event(EventKind.ENROLMENT, at, actor=actor, subject=person.id, outcome="enrolled",
                                source="face", data={"samples": len(samples), "rejected": rejected,
                                                     "purpose": consent.purpose,
                                                     "retention_days": consent.retention_days}))
        warnings = []
        if len(samples) < thresholds.FACE_ENROL_RECOMMENDED_SAMPLES:
            warnings.append(f"only {len(samples)} usable sample(s); {thresholds.FACE_ENROL_RECOMMENDED_SAMPLES}"
                            " or more give a more reliable reference")
        return Enrolment(person.id, person.name, len(samples), rejected, warnings)

    def _enrolment_samples(self, name: str, captures: Sequence[Capture], actor: str
                           ) -> tuple[list[FaceSample], dict[str, int]]:
        samples: list[FaceSample] = []
        rejected: dict[str, int] = {}
        for capture in captures:
            verdict = self._pad(capture, "enrol")
            if verdict is not None and not verdict.passed:
                self._audit_refused_enrolment(actor, verdict)
                raise _pad_refusal(capture, verdict)
            for frame in _spread(capture, thresholds.FACE_ENROL_MAX_FRAMES):
                out = self.engine.extract(frame.rgb)
                if isinstance(out, FaceSample):
                    samples.append(out)
                else:
                    rejected[out.gate.value] = rejected.get(out.gate.value, 0) + 1
        if len(samples) < thresholds.FACE_ENROL_MIN_SAMPLES:
            worst = max(rejected, key=lambda k: rejected[k]) if rejected else QualityGate.NO_FACE.value
            raise EnrolmentRefused(Reason.LOW_QUALITY, f"no usable face to enrol {name!r} "
                                   f"(rejected samples: {rejected or 'none'})", QualityGate(worst))
        return samples, rejected

    def _audit_refused_enrolment(self, actor: str, verdict: PadVerdictLike) -> None:
        self.audit.append(Event(EventKind.ENROLMENT, self.clock.now(), actor=actor, outcome="refused",
                                reason=Reason.PAD_FAILED.value, source="face",
                                data={"pad": dict(verdict.scores), "assurance": verdict.assurance.value}))

    # ------------------------------------------------------------------ verify / identify
    def verify(self, name: str, capture: Capture, source: str = "cli", *, record: bool = True) -> Decision:
        """1:1: is the person in `capture` the enrolled `name`?

        `record=False` leaves the audit event to the caller (the access controller
        records the final decision of an unlock, so an attempt is audited once).
        """
        try:
            decision = self._verify(name, capture)
        except VaultErased:
            decision = reject(Reason.VAULT_ERASED, detail="templates were crypto-erased; the owner re-provisions")
        return self.record(decision, "verify", source) if record else decision

    def identify(self, capture: Capture, source: str = "cli", *, record: bool = True) -> Decision:
        """1:N: who, among the enrolled, is in `capture`?  (`record` as for `verify`.)"""
        try:
            decision = self._identify(capture)
        except VaultErased:
            decision = reject(Reason.VAULT_ERASED, detail="templates were crypto-erased; the owner re-provisions")
        return self.record(decision, "identify", source) if record else decision

    def _verify(self, name: str, capture: Capture) -> Decision:
        try:
            person = people.find(self.conn, name)
        except NotFound:
            return reject(Reason.UNKNOWN_USER, detail=f"no user named {name!r}")
        probe = self._probe(capture)
        early = self._early_decision(probe)
        if early is not None:
            return _with(early, user_id=person.id, user_name=person.name)
        assert probe.sample is not None
        threshold = self.store.threshold(Modality.FACE, self.point)
        try:
            dist = self.store.distance(person.id, Modality.FACE, probe.sample.embedding)
        except NotFound:
            return reject(Reason.NOT_ENROLLED, user_id=person.id, user_name=person.name, timings=probe.timings)
        verdict = accept if dist <= threshold else reject
        reason = Reason.MATCHED if dist <= threshold else Reason.NO_MATCH
        return verdict(reason, user_id=person.id, user_name=person.name, score=dist, threshold=threshold,
                       **_evidence(probe))

    def _identify(self, capture: Capture) -> Decision:
        probe = self._probe(capture)
        early = self._early_decision(probe)
        if early is not None:
            return early
        assert probe.sample is not None
        threshold = self.store.threshold(Modality.FACE, self.point)
        t0 = time.perf_counter()
        candidates = self.store.search(Modality.FACE, probe.sample.embedding, top_k=2)
        probe.timings["search"] = (time.perf_counter() - t0) * 1000
        if not candidates or candidates[0].distance > threshold:
            closest = candidates[0].distance if candidates else None
            return reject(Reason.NO_MATCH, score=closest, threshold=threshold, **_evidence(probe))
        best = candidates[0]
        runner_up = candidates[1].distance if len(candidates) > 1 else None
        if runner_up is not None and runner_up - best.distance < thresholds.FACE_IDENTIFY_MARGIN:
            return reject(Reason.NO_MATCH, score=best.distance, threshold=threshold,
                          detail="ambiguous: two enrolled people match", **_evidence(probe))
        person = people.by_id(self.conn, best.user_id)
        return accept(Reason.MATCHED, user_id=best.user_id, user_name=person.name if person else None,
                      score=best.distance, threshold=threshold, **_evidence(probe))

    # ------------------------------------------------------------------ stages
    def _pad(self, capture: Capture, purpose: str, boxes: Sequence[Box | None] | None = None
             ) -> PadVerdictLike | None:
        return None if self.pad is None else self.pad(capture, purpose, boxes)

    def _probe(self, capture: Capture) -> _Probe:
        """PAD over the capture, then the best of up to N frames; faces are detected once for both."""
        timings: dict[str, float] = {}
        frames = _spread(capture, thresholds.FACE_PROBE_MAX_FRAMES)
        t0 = time.perf_counter()
        found = {id(f): detect.detect_faces(f.rgb) for f in frames}
        timings["detect"] = (time.perf_counter() - t0) * 1000
        boxes = [found[id(f)][0].box if found.get(id(f)) else None for f in capture.frames]
        t0 = time.perf_counter()
        verdict = self._pad(capture, "verify", boxes)
        if self.pad is not None:
            timings["pad"] = (time.perf_counter() - t0) * 1000
        if verdict is not None and not verdict.passed:
            return _Probe(None, None, verdict, timings)
        best: FaceSample | None = None
        failure: QualityFailure | None = None
        for frame in frames:
            out = self.engine.extract(frame.rgb, found[id(frame)])
            for stage, ms in out.timings.items():
                timings[stage] = timings.get(stage, 0.0) + ms
            if isinstance(out, FaceSample):
                if best is None or out.quality.sharpness > best.quality.sharpness:
                    best = out
            elif failure is None:
                failure = out
        return _Probe(best, failure if best is None else None, verdict, timings)

    def _early_decision(self, probe: _Probe) -> Decision | None:
        """A refusal before matching: PAD, no face, or a quality gate."""
        if probe.pad is not None and not probe.pad.passed:
            reason = Reason.PAD_FAILED if probe.pad.reason == "attack" else Reason.INSUFFICIENT_EVIDENCE
            return reject(reason, **_evidence(probe))
        if probe.sample is None:
            gate = probe.failure.gate if probe.failure else QualityGate.NO_FACE
            reason = Reason.NO_FACE if gate is QualityGate.NO_FACE else Reason.LOW_QUALITY
            return reject(reason, quality_gate=gate, **_evidence(probe))
        return None

    def record(self, decision: Decision, mode: str, source: str) -> Decision:
        """Append the audit event of a recognition attempt (ids, scores and reasons only)."""
        pad = None if decision.assurance is None else ("passed" if decision.reason not in _PAD_REASONS else "failed")
        self.audit.append(attempt_event(decision, self.clock.now(), "face", source, pad=pad, mode=mode))
        return decision


_PAD_REASONS = (Reason.PAD_FAILED, Reason.INSUFFICIENT_EVIDENCE)


def _pad_refusal(capture: Capture, verdict: PadVerdictLike) -> EnrolmentRefused:
    """Why enrolment was refused, in words for the person enrolling (never which cue fired)."""
    if verdict.reason == "attack":
        return EnrolmentRefused(Reason.PAD_FAILED, f"enrolment refused for {capture.source}: this does not look like "
                                "a live person in front of the camera; enrol the person in person")
    return EnrolmentRefused(Reason.INSUFFICIENT_EVIDENCE, f"enrolment refused for {capture.source}: not enough "
                            "evidence of a live person; enrol from a short video or a burst of frames of the person "
                            "facing the camera (a still photo cannot prove liveness)")


def _spread(capture: Capture, n: int) -> list[Any]:
    """At most `n` frames spread evenly over the capture."""
    frames = capture.frames
    if len(frames) <= n:
        return list(frames)
    idx = np.linspace(0, len(frames) - 1, n).round().astype(int)
    return [frames[i] for i in idx]


def _evidence(probe: _Probe) -> dict[str, Any]:
    scores: dict[str, float] = {}
    assurance = None
    if probe.pad is not None:
        scores.update({f"pad.{k}": float(v) for k, v in probe.pad.scores.items()})
        assurance = probe.pad.assurance
    if probe.sample is not None:
        scores.update({f"quality.{k}": v for k, v in probe.sample.quality.as_scores().items()})
    return {"scores": scores, "timings": dict(probe.timings), "assurance": assurance}


def _with(decision: Decision, **changes: Any) -> Decision:
    from dataclasses import replace

    return replace(decision, **changes)
