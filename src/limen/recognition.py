"""Face enrolment, and the face evidence of one capture for the door (1:1 or 1:N).

The recipe: capture → detect (once) → PAD → best frame's embedding →
template store → `FaceEvidence` (typed, with the PAD verdict).  Recognition
never decides and never writes the door attempt's audit record: the
`AccessController` judges the evidence and records the attempt once.
Enrolment (not a door attempt) is all-or-nothing and audited here: any
unreadable input, refused consent or spoof leaves no trace but its event.
References go only through the `TemplateStore` (the vault in production);
images and descriptors are never persisted here.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from limen import people, thresholds
from limen.access.attempt import FaceEvidence
from limen.audit.event import AuditSink, Event, EventKind
from limen.bio.face import FaceEngine, FaceSample, FaceTrack, QualityFailure, detect_burst
from limen.bio.face.burst import scene_change
from limen.bio.face.compare import fuse_reference
from limen.bio.face.detect import Box
from limen.bio.templates import Modality, OperatingPoint, TemplateStore
from limen.capture import Capture, Frame
from limen.clock import Clock, SystemClock
from limen.db import transaction
from limen.decision import QualityGate, Reason
from limen.errors import InputError, NotFound, VaultErased
from limen.pad.contract import Purpose
from limen.pad.fusion import PadVerdict

# (capture, purpose, face box per frame or None where unknown) -> verdict
PadCheck = Callable[[Capture, Purpose, Sequence[Box | None] | None], PadVerdict]


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
    pad: PadVerdict | None
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
    def enrol(self, name: str, captures: Sequence[Capture], consent: people.Consent, actor: str,
              person_id: str | None = None) -> Enrolment:
        """Enrol `name` from several images/videos; raise `EnrolmentRefused` or an input error.

        With `person_id`, the face goes to that existing person (replacing any face reference of theirs).
        """
        consent = consent.validated()
        existing = None
        if person_id is not None:
            existing = people.by_id(self.conn, person_id)
            if existing is None:
                raise NotFound(f"no user with id {person_id}")
            name = existing.name
        name = people.validate_name(name)
        if not captures:
            raise EnrolmentRefused(Reason.NO_FACE, "no images given to enrol")
        samples, rejected = self._enrolment_samples(name, captures, actor)
        reference = fuse_reference(np.array([s.embedding for s in samples]))
        at = self.clock.now()
        with transaction(self.conn):
            person = existing or people.new_person(self.conn, name, actor, at)
            consent_id = people.record_consent(self.conn, person, Modality.FACE, consent, actor, at)
            enrolment_id = people.record_enrolment(self.conn, person, Modality.FACE, len(samples), actor, at)
        try:
            self.store.put(person.id, Modality.FACE, reference)
        except BaseException:
            if existing is None:
                people.delete(self.conn, person)  # all or nothing: no person without a reference
            else:  # an existing person keeps their old face, and no consent for a face that was never stored
                people.withdraw_failed(self.conn, consent_id, enrolment_id)
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
            verdict = self._pad(capture, Purpose.ENROL)
            if verdict is not None and not verdict.passed:
                self._audit_refused_enrolment(actor, verdict)
                raise _pad_refusal(capture, verdict)
            if scene_change([f.rgb for f in capture.frames]) > thresholds.ENROL_BURST_MAX_SCENE_CHANGE:
                raise EnrolmentRefused(Reason.INSUFFICIENT_EVIDENCE, f"enrolment refused for {capture.source}: these "
                                       "frames are separate photos, not one capture; take a burst/video, not "
                                       "separate photos")
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

    def _audit_refused_enrolment(self, actor: str, verdict: PadVerdict) -> None:
        self.audit.append(Event(EventKind.ENROLMENT, self.clock.now(), actor=actor, outcome="refused",
                                reason=Reason.PAD_FAILED.value, source="face",
                                data={"pad": dict(verdict.scores), "assurance": verdict.assurance.value}))

    # ------------------------------------------------------------------ the door's evidence
    def verify(self, name: str, capture: Capture) -> FaceEvidence:
        """1:1: the evidence that the person in `capture` is the enrolled `name` (claimed user set)."""
        try:
            person = people.find(self.conn, name)
        except NotFound:  # the detail goes on the (forwarded) record: no name in it
            return FaceEvidence(None, None, None, None, refusal=Reason.UNKNOWN_USER, detail="no such person")
        probe = self._probe(capture)
        if _no_comparison(probe):
            return _evidence(probe, person.id)
        assert probe.sample is not None
        threshold = self.store.threshold(Modality.FACE, self.point)
        try:
            dist = self.store.distance(person.id, Modality.FACE, probe.sample.embedding)
        except NotFound:
            return _evidence(probe, person.id, refusal=Reason.NOT_ENROLLED, detail="no face enrolled for this person")
        except VaultErased:
            return _erased(probe)
        return _evidence(probe, person.id, distance=dist, threshold=threshold)

    def identify(self, capture: Capture) -> FaceEvidence:
        """1:N: the evidence of who, among the enrolled, is in `capture` (user None when nobody matches)."""
        probe = self._probe(capture)
        if _no_comparison(probe):
            return _evidence(probe, None)
        assert probe.sample is not None
        threshold = self.store.threshold(Modality.FACE, self.point)
        t0 = time.perf_counter()
        try:
            candidates = self.store.search(Modality.FACE, probe.sample.embedding, top_k=2)
        except VaultErased:
            return _erased(probe)
        probe.timings["search"] = (time.perf_counter() - t0) * 1000
        if not candidates or candidates[0].distance > threshold:
            closest = candidates[0].distance if candidates else None
            return _evidence(probe, None, distance=closest, threshold=threshold)
        best = candidates[0]
        runner_up = candidates[1].distance if len(candidates) > 1 else None
        if runner_up is not None and runner_up - best.distance < thresholds.FACE_IDENTIFY_MARGIN:
            return _evidence(probe, None, distance=best.distance, threshold=threshold, refusal=Reason.NO_MATCH,
                             detail="ambiguous: two enrolled people match")
        return _evidence(probe, best.user_id, distance=best.distance, threshold=threshold)

    # ------------------------------------------------------------------ stages
    def _pad(self, capture: Capture, purpose: Purpose, boxes: Sequence[Box | None] | None = None
             ) -> PadVerdict | None:
        return None if self.pad is None else self.pad(capture, purpose, boxes)

    def _probe(self, capture: Capture) -> _Probe:
        """Faces detected once, PAD on the capture (skipped when no frame shows a face), the best sample."""
        timings: dict[str, float] = {}
        frames = _spread(capture, thresholds.FACE_PROBE_MAX_FRAMES)
        found = _detect(frames, timings)
        if not any(found.values()):
            return _Probe(None, QualityFailure(QualityGate.NO_FACE), None, timings)  # no face: nothing to judge
        verdict = self._pad_stage(capture, found, timings)
        if verdict is not None and not verdict.passed:
            return _Probe(None, None, verdict, timings)
        best, failure = self._best_sample(frames, found, timings)
        return _Probe(best, failure if best is None else None, verdict, timings)

    def _pad_stage(self, capture: Capture, found: dict[int, FaceTrack | None], timings: dict[str, float]
                   ) -> PadVerdict | None:
        boxes = [track.box if (track := found.get(id(f))) else None for f in capture.frames]
        t0 = time.perf_counter()
        verdict = self._pad(capture, Purpose.VERIFY, boxes)
        if verdict is not None:
            timings["pad"] = (time.perf_counter() - t0) * 1000
        return verdict

    def _best_sample(self, frames: list[Frame], found: dict[int, FaceTrack | None], timings: dict[str, float]
                     ) -> tuple[FaceSample | None, QualityFailure | None]:
        """The sharpest usable sample of `frames` (only it is embedded), else the first quality failure."""
        out = self.engine.best_of_burst([f.rgb for f in frames], [found[id(f)] for f in frames])
        for stage, ms in out.timings.items():
            timings[stage] = timings.get(stage, 0.0) + ms
        return (out, None) if isinstance(out, FaceSample) else (None, out)


def _detect(frames: list[Frame], timings: dict[str, float]) -> dict[int, FaceTrack | None]:
    """The face of each frame (keyed by `id(frame)`): detected once and followed, shared by PAD and the embedding."""
    t0 = time.perf_counter()
    tracks = detect_burst([f.rgb for f in frames])
    timings["detect"] = (time.perf_counter() - t0) * 1000
    return {id(f): t for f, t in zip(frames, tracks, strict=True)}


def _no_comparison(probe: _Probe) -> bool:
    return probe.sample is None


def _evidence(probe: _Probe, user_id: str | None, *, distance: float | None = None, threshold: float | None = None,
              refusal: Reason | None = None, detail: str = "") -> FaceEvidence:
    """The typed evidence of a probe; a probe without a usable sample carries its quality gate."""
    gate: QualityGate | None = None
    if probe.sample is None and probe.failure is not None and (probe.pad is None or probe.pad.passed):
        gate = probe.failure.gate
        refusal = Reason.NO_FACE if gate is QualityGate.NO_FACE else Reason.LOW_QUALITY
    scores: dict[str, float] = {}
    if probe.sample is not None:
        scores.update({f"quality.{k}": v for k, v in probe.sample.quality.as_scores().items()})
    return FaceEvidence(user_id, distance, threshold, probe.pad, quality_gate=gate, refusal=refusal,
                        detail=detail, scores=scores, timings=dict(probe.timings))


def _erased(probe: _Probe) -> FaceEvidence:
    return _evidence(probe, None, refusal=Reason.VAULT_ERASED,
                     detail="templates were crypto-erased; the owner re-provisions")


def _pad_refusal(capture: Capture, verdict: PadVerdict) -> EnrolmentRefused:
    """Why enrolment was refused, in words for the person enrolling (never which cue fired)."""
    if verdict.reason == "attack":
        return EnrolmentRefused(Reason.PAD_FAILED, f"enrolment refused for {capture.source}: this does not look like "
                                "a live person in front of the camera; enrol the person in person")
    return EnrolmentRefused(Reason.INSUFFICIENT_EVIDENCE, f"enrolment refused for {capture.source}: not enough "
                            "evidence of a live person; enrol from a short video or a burst of frames of the person "
                            "facing the camera (a still photo cannot prove liveness)")


def _spread(capture: Capture, n: int) -> list[Frame]:
    """At most `n` frames spread evenly over the capture."""
    frames = capture.frames
    if len(frames) <= n:
        return list(frames)
    idx = np.linspace(0, len(frames) - 1, n).round().astype(int)
    return [frames[i] for i in idx]
