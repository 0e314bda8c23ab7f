"""Retention: a biometric reference is kept no longer than the consent that allowed it.

`expired_references(conn, at)` lists the people whose latest consent for a
modality has run out; `enforce_retention(...)` erases those references from
the template store and records each erasure in the audit trail.  The person
stays known to the lock (PINs and codes keep working); only the biometric
reference goes, and a new enrolment needs new consent.  Each modality's
references are erased by their own store: faces by the template store,
fingerprints by `fingers` (the sealed references' eraser); without an eraser
for a modality its enrolment stays on record, so the next run erases it.
With match on sensor, `sensor` deletes the person's pages on the fingerprint module too (its counts go into
the record; a page the module refused is counted in `sensor_pages_failed`, never hidden).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from limen import people
from limen.audit.event import AuditSink, Event, EventKind
from limen.bio.templates import Modality, TemplateStore
from limen.errors import VaultErased
from limen.privacy.scrub import forget_deleted


@dataclass(frozen=True)
class Expired:
    user_id: str
    modality: str
    given_at: str
    retention_days: int


def expired_references(conn: sqlite3.Connection, at: datetime) -> list[Expired]:
    """People whose latest consent per modality ended before `at` and who still have an enrolment."""
    found = []
    for c in people.latest_consents_of_enrolled(conn):
        if datetime.fromisoformat(c.given_at) + timedelta(days=c.retention_days) <= at:
            found.append(Expired(c.user_id, c.modality, c.given_at, c.retention_days))
    return found


def enforce_retention(conn: sqlite3.Connection, store: TemplateStore, audit: AuditSink, at: datetime,
                      fingers: Callable[[str], int] | None = None,
                      sensor: Callable[[str, datetime], dict[str, int]] | None = None) -> int:
    """Erase every reference whose consent has expired; return how many people were affected."""
    expired = [e for e in expired_references(conn, at) if e.modality != Modality.FINGERPRINT or fingers is not None]
    for item in expired:
        on_sensor: dict[str, int] = {}
        if item.modality == Modality.FINGERPRINT and fingers is not None:
            removed = fingers(item.user_id)  # a face whose consent still runs is kept
            on_sensor = {} if sensor is None else sensor(item.user_id, at)
        else:
            try:
                removed = store.delete(item.user_id)
            except VaultErased:
                removed = 0  # the vault was crypto-erased: nothing is left to erase
        people.forget_enrolment(conn, item.user_id, item.modality)
        audit.append(Event(EventKind.PRIVACY, at, actor="system", subject=item.user_id,
                           reason="retention expired: biometric reference erased", source="retention",
                           data={"modality": item.modality, "templates_erased": removed,
                                 "consent_given_at": item.given_at, "retention_days": item.retention_days,
                                 **on_sensor}))
    if expired:
        forget_deleted(conn)  # the erased references' rows leave the database's write-ahead log too
    return len(expired)
