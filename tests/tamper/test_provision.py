"""Re-provisioning (`limen tamper clear`): the people whose faces and fingerprints went with the old keys show as
not enrolled afterwards (review: the console and `users list` still said "face … can open the door"), and an
owner's lockdown is not lifted this way (it erased every face)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from limen import people
from limen.access.attempt import keypad_entry
from limen.access.model import CredentialType, PermissionLevel
from limen.access.store import BOOTSTRAP_ACTOR, AccessStore
from limen.bio.templates import Modality
from limen.db import open_db
from limen.decision import Reason
from limen.errors import Conflict
from limen.tamper.lockdown import LockdownCause, enter_lockdown, is_locked_down, lockdown_cause
from limen.tamper.provision import reprovision

from .conftest import T0, Lock, embedding

OWNER_PIN = "482913"


@pytest.fixture
def conn(lock: Lock) -> Iterator[sqlite3.Connection]:
    c = open_db(lock.settings.db_path)
    yield c
    c.close()


def _household(conn: sqlite3.Connection, lock: Lock) -> tuple[AccessStore, str, str]:
    """Olga (owner, PIN) and Dora (a face, a fingerprint credential), both in the vault."""
    access = AccessStore(conn, lock.audit)
    olga = access.add_user("Olga", BOOTSTRAP_ACTOR, T0, pin=OWNER_PIN, permission=PermissionLevel.OWNER)
    dora = people.new_person(conn, "Dora", olga.user_id, T0)
    consent = people.Consent("door access", 365).validated()
    people.record_consent(conn, dora, Modality.FACE, consent, olga.user_id, T0)
    people.record_enrolment(conn, dora, Modality.FACE, 3, olga.user_id, T0)
    people.record_enrolment(conn, dora, Modality.FINGERPRINT, 2, olga.user_id, T0)
    conn.commit()
    lock.store.put(dora.id, Modality.FACE, embedding(7))
    access.add_credential(dora.id, CredentialType.FINGERPRINT, olga.user_id, T0)
    return access, olga.user_id, dora.id


def test_reprovisioning_forgets_the_erased_enrolments_and_names_who_enrols_again(lock: Lock,
                                                                                 conn: sqlite3.Connection) -> None:
    access, olga, dora = _household(conn, lock)
    assert dora in people.enrolled_ids(conn)
    enter_lockdown(conn, "inc-1", "case: held", T0)
    result = reprovision(conn, lock.store, lock.audit, lock.responder.journal, olga, T0)
    assert result["re_enrol"] == [dora] and not is_locked_down(conn)
    assert people.enrolled_ids(conn) == set() and people.enrolments_of(conn, dora) == []
    row = next(r for r in people.list_people(conn) if r["id"] == dora)
    assert not row["modalities"]                                 # `limen users list`: "-"
    assert not [c for c in access.credentials(dora) if c.type is CredentialType.FINGERPRINT]
    cleared = [r for r in lock.audit.tail(20) if r["reason"] == "lockdown_cleared"]
    assert cleared[-1]["data"]["re_enrol"] == [dora]
    assert lock.store.status().records == 0


def test_reprovisioning_refuses_an_owners_lockdown_and_erases_nothing(lock: Lock, conn: sqlite3.Connection) -> None:
    access, olga, dora = _household(conn, lock)
    before = lock.store.status().records
    access.set_lockdown(True, "cloud", T0)
    with pytest.raises(Conflict, match="limen access lockdown off"):
        reprovision(conn, lock.store, lock.audit, lock.responder.journal, olga, T0)
    assert lock.store.status().records == before and dora in people.enrolled_ids(conn)
    assert lockdown_cause(conn) is LockdownCause.COMMAND
    assert access.set_lockdown(False, olga, T0) is None           # an owner lifts it: nothing erased
    assert lock.store.status().records == before
    assert access.decide(keypad_entry(OWNER_PIN), T0).decision.reason is Reason.GRANTED
