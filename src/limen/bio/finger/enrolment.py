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
from limen.audit.event import AuditSink, Event, EventKind
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
