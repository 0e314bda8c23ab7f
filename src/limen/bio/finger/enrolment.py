"""Enrol and verify fingerprints for people of the lock (consent, all-or-nothing, audited).

`enrol` takes the impressions of one finger (a bad capture — fewer than
FINGER_ENROL_MIN_MINUTIAE minutiae — refuses the whole enrolment: nothing is
stored), records consent and the enrolment, and seals the impressions with
`FingerReferences`; a new person is created if NAME is unknown, and removed
again if sealing fails.  `verify` compares a probe with a person's sealed
impressions at the operating point's threshold.  No minutiae, scores of
others, or images reach the audit trail: only counts and the outcome.

`FingerRecognizer` is the door's side (the controller's `FingerSource`): a
sensor image → minutiae → the sealed references → typed `FingerprintEvidence`;
a bad capture, an unknown person or an unreadable vault is evidence with a
refusal, never an exception, and it never decides or writes the attempt's
audit record.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations

import numpy as np

from limen import people, thresholds
from limen.access.attempt import FingerprintEvidence
from limen.audit.event import AuditSink, Event, EventKind
from limen.bio.finger import matcher
from limen.bio.finger.extract import extract
from limen.bio.finger.index import EdgeIndex
from limen.bio.finger.references import FINGER_NAMES, FingerReferences, ReferenceIndex
from limen.bio.finger.template import FingerTemplate
from limen.bio.templates import Modality
from limen.db import transaction
from limen.decision import Reason
from limen.errors import BadImage, BadRequest, ConfigError, NotFound, VaultError


@dataclass(frozen=True)
class FingerEnrolment:
    user_id: str
    name: str
    impressions: int
    new_person: bool
    finger: int = 0


@dataclass(frozen=True)
class FingerVerification:
    user_id: str
    matched: bool
    score: float
    threshold: float


def enrol(conn: sqlite3.Connection, references: FingerReferences, audit: AuditSink, name: str,
          templates: Sequence[FingerTemplate], consent: people.Consent, actor: str, at: datetime,
          finger: int = 0, replace: bool = False) -> FingerEnrolment:
    """Enrol the impressions of one finger (ISO position `finger`, 0 = unknown) for NAME (a new person, or an
    existing one by name or id); other fingers are kept.  The impressions must be distinct captures of one
    finger (`check_one_finger`).  A position that already has a finger is refused unless `replace`: then its
    earlier impressions are replaced."""
    consent = consent.validated()
    if not 0 <= finger < len(FINGER_NAMES):
        raise BadRequest("finger", f"a finger position 0-{len(FINGER_NAMES) - 1} (ISO/IEC 19794-2)")
    if len(templates) < thresholds.FINGER_ENROL_MIN_IMPRESSIONS:
        raise BadRequest("images", f"at least {thresholds.FINGER_ENROL_MIN_IMPRESSIONS} impressions of the finger")
    for k, t in enumerate(templates, 1):
        if len(t.minutiae) < thresholds.FINGER_ENROL_MIN_MINUTIAE:
            raise BadRequest("images", f"impression {k} has {len(t.minutiae)} reliable minutiae; enrolment needs "
                                       f"{thresholds.FINGER_ENROL_MIN_MINUTIAE}: capture it again")
    check_one_finger(templates)
    try:
        person, created = people.find(conn, name), False
    except NotFound:
        person, created = None, True
    if person is not None and not replace and finger in references.fingers(person.id):
        raise BadRequest("finger", f"{person.name} already has {FINGER_NAMES[finger]} (position {finger}) "
                                   "enrolled: remove it first, or replace it (--replace)")
    with transaction(conn):
        if person is None:
            person = people.new_person(conn, name, actor, at)
        people.record_consent(conn, person, Modality.FINGERPRINT, consent, actor, at)
        people.record_enrolment(conn, person, Modality.FINGERPRINT, len(templates), actor, at)
    try:
        references.put(person.id, list(templates), finger)
    except BaseException:
        if created:
            people.delete(conn, person)           # all or nothing: no new person without a reference
        raise
    audit.append(Event(EventKind.ENROLMENT, at, actor=actor, subject=person.id, outcome="enrolled",
                       source="fingerprint", data={"samples": len(templates), "purpose": consent.purpose,
                                                   "retention_days": consent.retention_days, "finger": finger}))
    return FingerEnrolment(person.id, person.name, len(templates), created, finger)


def check_one_finger(templates: Sequence[FingerTemplate]) -> None:
    """`BadRequest` naming the impression unless the impressions are distinct captures of one finger: no two
    the same impression (FINGER_ENROL_SAME_* — the same image given twice, or re-encoded), and every impression
    linked to the others by comparisons scoring ≥ FINGER_ENROL_CONSISTENT (the match graph is connected), so
    impressions of two or three fingers cannot enrol as one."""
    for i, j in combinations(range(len(templates)), 2):
        if same_impression(templates[i], templates[j]):
            raise BadRequest("images", f"impressions {i + 1} and {j + 1} are the same impression twice: lift the "
                                       "finger and place it again for each capture")
    prepared = [matcher.prepare(t) for t in templates]
    group = list(range(len(templates)))             # union-find over "these two impressions match"
    for i, j in combinations(range(len(templates)), 2):
        if group[i] != group[j] and matcher.similarity(prepared[i], prepared[j]) >= \
                thresholds.FINGER_ENROL_CONSISTENT:
            old, new = group[j], group[i]
            group = [new if g == old else g for g in group]
    sizes = Counter(group)
    if len(sizes) > 1:
        largest, count = sizes.most_common(1)[0]
        if count == 1:
            raise BadRequest("images", "the impressions do not match one another: they must all be the same "
                                       "finger; capture it again")
        odd = ", ".join(str(k + 1) for k, g in enumerate(group) if g != largest)
        raise BadRequest("images", f"impression {odd} does not match the others (another finger?): every "
                                   "impression must be the same finger; capture it again")


def same_impression(a: FingerTemplate, b: FingerTemplate) -> bool:
    """Are `a` and `b` one capture (the same image, or a copy of it) rather than two placements of the finger?
    Two placements never put ≥ FINGER_ENROL_SAME_FRACTION of their minutiae within FINGER_ENROL_SAME_PX and
    FINGER_MATCH_ALIGN_ANGLE of each other *without* any alignment."""
    if (a.width, a.height) != (b.width, b.height) or not a.minutiae or not b.minutiae:
        return False
    pa = np.array([(m.x, m.y, m.angle) for m in a.minutiae])
    pb = np.array([(m.x, m.y, m.angle) for m in b.minutiae])
    dist = np.hypot(pa[:, None, 0] - pb[None, :, 0], pa[:, None, 1] - pb[None, :, 1])
    turn = np.abs(np.angle(np.exp(1j * (pa[:, None, 2] - pb[None, :, 2]))))
    close = (dist <= thresholds.FINGER_ENROL_SAME_PX) & (turn <= thresholds.FINGER_MATCH_ALIGN_ANGLE)
    shared = min(int(close.any(axis=1).sum()), int(close.any(axis=0).sum()))
    return shared >= thresholds.FINGER_ENROL_SAME_FRACTION * min(len(pa), len(pb))


def verify(conn: sqlite3.Connection, references: FingerReferences, name: str, probe: FingerTemplate,
           threshold: float = thresholds.FINGER_MATCH_DEFAULT) -> FingerVerification:
    """Is `probe` the enrolled finger of NAME?  (1:1; the door path is the controller's.)"""
    person = people.find(conn, name)
    score = references.score(person.id, probe)
    return FingerVerification(person.id, score >= threshold, score, threshold)


def identify(references: FingerReferences, probe: FingerTemplate,
             index: ReferenceIndex | None = None) -> tuple[str | None, float]:
    """1:N: (user id, score) of the best enrolled finger for `probe`, or (None, 0.0) when nobody is enrolled.
    With `index` (the door's), the references are searched through the index it holds in memory, brought up
    to date with the sealed files first; without, every reference is unsealed into an index for the call.
    Either way the same rows in the same order: the same answer (never persisted)."""
    prepared = matcher.prepare(probe)
    if index is not None:
        hits = index.search(references, prepared)
    else:
        fresh = EdgeIndex()
        for user_id in references.enrolled():
            for k, template in enumerate(references.get(user_id)):
                fresh.add(f"{user_id}:{k}", matcher.prepare(template))
        hits = fresh.search(prepared)
    if not hits:
        return None, 0.0
    return hits[0].key.rsplit(":", 1)[0], hits[0].score


class FingerRecognizer:
    """The door's fingerprint evidence (the controller's `FingerSource`; see the module docstring).

    `references` is called at each comparison, so a vault that was erased or never opened is a refusal then.
    `index`: the 1:N index kept between attempts (the runtime's, which a tamper response wipes); by default
    one of this recognizer's own.
    `sensor_liveness`: whether the lock's sensor reports liveness itself (HIGH assurance); the R30x/R503/
    AS608 family does not (MEDIUM: a first factor under the default policy).  No fingerprint PAD runs on the
    host, so `pad_passed` means "no attack reported".  Not thread-safe (one per controller).
    """

    def __init__(self, conn: sqlite3.Connection, references: Callable[[], FingerReferences], *,
                 sensor_liveness: bool = False, threshold: float = thresholds.FINGER_MATCH_DEFAULT,
                 index: ReferenceIndex | None = None) -> None:
        self.conn, self._references = conn, references
        self.index = ReferenceIndex() if index is None else index
        self.sensor_liveness, self.threshold = sensor_liveness, threshold

    def verify(self, name: str, image: np.ndarray) -> FingerprintEvidence:
        """1:1: is the finger in `image` an enrolled finger of `name` (a name or a user id)?"""
        try:
            person = people.find(self.conn, name)
        except NotFound:
            return self._refused(None, Reason.UNKNOWN_USER, "no such person")
        probe = self._probe(image)
        if isinstance(probe, FingerprintEvidence):
            return FingerprintEvidence(person.id, None, None, True, refusal=probe.refusal, detail=probe.detail)
        try:
            score = self._references().score(person.id, probe)
        except NotFound:
            return self._refused(person.id, Reason.NOT_ENROLLED, "no finger enrolled for this person")
        except (VaultError, ConfigError):
            return self._erased(person.id)
        return self._evidence(person.id, score)

    def identify(self, image: np.ndarray) -> FingerprintEvidence:
        """1:N: whose enrolled finger is in `image` (the best candidate; the policy compares its score)."""
        probe = self._probe(image)
        if isinstance(probe, FingerprintEvidence):
            return probe
        try:
            user_id, score = identify(self._references(), probe, self.index)
        except (VaultError, ConfigError):
            return self._erased(None)
        return self._evidence(user_id, score)

    def _probe(self, image: np.ndarray) -> FingerTemplate | FingerprintEvidence:
        try:
            return extract(image, source="sensor")
        except BadImage as exc:
            return self._refused(None, Reason.LOW_QUALITY, f"fingerprint unreadable ({exc.reason}): "
                                                           "place the finger flat on the sensor again")

    def _evidence(self, user_id: str | None, score: float) -> FingerprintEvidence:
        return FingerprintEvidence(user_id, score, self.threshold, True, self.sensor_liveness)

    def _refused(self, user_id: str | None, reason: Reason, detail: str) -> FingerprintEvidence:
        return FingerprintEvidence(user_id, None, None, True, self.sensor_liveness, refusal=reason, detail=detail)

    def _erased(self, user_id: str | None) -> FingerprintEvidence:
        return self._refused(user_id, Reason.VAULT_ERASED,
                             "fingerprint references cannot be opened (vault erased or not open): the owner "
                             "re-provisions")
