from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from limen import people
from limen.audit.event import EventKind, MemoryAuditSink
from limen.bio.templates import InMemoryTemplateStore, Modality
from limen.db import open_db, transaction
from limen.privacy.retention import enforce_retention, expired_references

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _enrol(conn, store, name: str, days_ago: int, retention: int) -> str:  # type: ignore[no-untyped-def]
    at = NOW - timedelta(days=days_ago)
    with transaction(conn):
        person = people.new_person(conn, name, "owner", at)
        people.record_consent(conn, person, Modality.FACE, people.Consent("door", retention), "owner", at)
        people.record_enrolment(conn, person, Modality.FACE, 3, "owner", at)
    store.put(person.id, Modality.FACE, np.full(128, len(name), float))
    return person.id


def test_expired_consent_erases_the_reference_and_is_audited(tmp_path: Path) -> None:
    conn, store, audit = open_db(tmp_path / "l.db"), InMemoryTemplateStore(), MemoryAuditSink()
    old = _enrol(conn, store, "Old", days_ago=40, retention=30)
    fresh = _enrol(conn, store, "Fresh", days_ago=40, retention=365)
    assert [e.user_id for e in expired_references(conn, NOW)] == [old]

    assert enforce_retention(conn, store, audit, NOW) == 1
    assert [c.user_id for c in store.search(Modality.FACE, np.zeros(128), top_k=5)] == [fresh]
    event = audit.events[-1]
    assert event.kind is EventKind.PRIVACY and event.subject == old and event.data["templates_erased"] == 1
    assert people.find(conn, "Old").id == old  # the person stays; only the biometric reference goes
    assert enforce_retention(conn, store, audit, NOW) == 0  # idempotent


def test_consent_ending_exactly_now_counts_as_expired(tmp_path: Path) -> None:
    conn, store = open_db(tmp_path / "l.db"), InMemoryTemplateStore()
    _enrol(conn, store, "Edge", days_ago=30, retention=30)
    assert len(expired_references(conn, NOW)) == 1
    assert expired_references(conn, NOW - timedelta(seconds=1)) == []
