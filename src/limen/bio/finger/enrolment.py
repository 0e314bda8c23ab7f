"""Enrol and verify fingerprints for people of the lock (consent, all-or-nothing, audited).

`enrol` takes the impressions of one finger (a bad capture — fewer than
FINGER_ENROL_MIN_MINUTIAE minutiae — refuses the whole enrolment: nothing is
stored), records consent and the enrolment, and seals the impressions with
`FingerReferences`; a new person is created if NAME is unknown, and removed
again if sealing fails.  `verify` compares a probe with a person's sealed
impressions at the operating point's threshold.  No minutiae, scores of
others, or images reach the audit trail: only counts and the outcome.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from limen import people, thresholds
from limen.access.attempt import FingerprintEvidence
from limen.audit.event import AuditSink, Event, EventKind
from limen.bio.finger import matcher
from limen.bio.finger.index import EdgeIndex
from limen.bio.finger.references import FingerReferences
from limen.bio.finger.template import FingerTemplate
from limen.bio.templates import Modality
from limen.db import transaction
from limen.errors import BadRequest, NotFound


@dataclass(frozen=True)
class FingerEnrolment:
    user_id: str
    name: str
    impressions: int
    new_person: bool


@dataclass(frozen=True)
class FingerVerification:
    user_id: str
    matched: bool
    score: float
    threshold: float


def enrol(conn: sqlite3.Connection, references: FingerReferences, audit: AuditSink, name: str,
          templates: Sequence[FingerTemplate], consent: people.Consent, actor: str, at: datetime) -> FingerEnrolment:
    """Enrol the impressions of one finger for NAME (a new person, or an existing one)."""
    consent = consent.validated()
    if len(templates) < thresholds.FINGER_ENROL_MIN_IMPRESSIONS:
        raise BadRequest("images", f"at least {thresholds.FINGER_ENROL_MIN_IMPRESSIONS} impressions of the finger")
    for k, t in enumerate(templates, 1):
        if len(t.minutiae) < thresholds.FINGER_ENROL_MIN_MINUTIAE:
            raise BadRequest("images", f"impression {k} has {len(t.minutiae)} reliable minutiae; enrolment needs "
                                       f"{thresholds.FINGER_ENROL_MIN_MINUTIAE}: capture it again")
    try:
        person, created = people.find(conn, name), False
    except NotFound:
        person, created = None, True
    with transaction(conn):
        if person is None:
            person = people.new_person(conn, name, actor, at)
        people.record_consent(conn, person, Modality.FINGERPRINT, consent, actor, at)
        people.record_enrolment(conn, person, Modality.FINGERPRINT, len(templates), actor, at)
    try:
        references.put(person.id, list(templates))
    except BaseException:
        if created:
            people.delete(conn, person)           # all or nothing: no new person without a reference
        raise
    audit.append(Event(EventKind.ENROLMENT, at, actor=actor, subject=person.id, outcome="enrolled",
                       source="fingerprint", data={"samples": len(templates), "purpose": consent.purpose,
                                                   "retention_days": consent.retention_days}))
    return FingerEnrolment(person.id, person.name, len(templates), created)


def verify(conn: sqlite3.Connection, references: FingerReferences, name: str, probe: FingerTemplate,
           threshold: float = thresholds.FINGER_MATCH_DEFAULT) -> FingerVerification:
    """Is `probe` the enrolled finger of NAME?  (1:1; the door path is the controller's.)"""
    person = people.find(conn, name)
    score = references.score(person.id, probe)
    return FingerVerification(person.id, score >= threshold, score, threshold)


def identify(references: FingerReferences, probe: FingerTemplate) -> tuple[str | None, float]:
    """1:N: (user id, score) of the best enrolled finger for `probe`, or (None, 0.0) when nobody is enrolled.
    Every reference is unsealed into an in-memory index for the call (never persisted)."""
    index = EdgeIndex()
    for user_id in references.enrolled():
        for k, template in enumerate(references.get(user_id)):
            index.add(f"{user_id}:{k}", matcher.prepare(template))
    hits = index.search(matcher.prepare(probe))
    if not hits:
        return None, 0.0
    return hits[0].key.rsplit(":", 1)[0], hits[0].score


def evidence(references: FingerReferences, probe: FingerTemplate, claimed_user: str | None, *, pad_passed: bool,
             sensor_liveness: bool = False) -> FingerprintEvidence:
    """`FingerprintEvidence` for the access policy: 1:1 against `claimed_user`, else 1:N.

    `pad_passed` and `sensor_liveness` come from the capture (the R30x family reports no liveness: the
    evidence is then MEDIUM assurance, a first factor only under the default policy)."""
    if claimed_user is not None:
        try:
            score = references.score(claimed_user, probe)
        except NotFound:
            score = 0.0
        user_id: str | None = claimed_user
    else:
        user_id, score = identify(references, probe)
    return FingerprintEvidence(user_id=user_id, score=score, threshold=thresholds.FINGER_MATCH_DEFAULT,
                               pad_passed=pad_passed, sensor_liveness=sensor_liveness)
