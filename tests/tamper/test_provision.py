"""Re-provisioning (`limen tamper clear`): the people whose faces and fingerprints went with the old keys show as
not enrolled afterwards (review: the console and `users list` still said "face … can open the door"), and an
owner's lockdown is not lifted this way (it erased every face)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from limen import people
from limen.access.attempt import keypad_entry
from limen.access.model import CredentialType, PermissionLevel
from limen.access.store import BOOTSTRAP_ACTOR, AccessStore
from limen.bio.templates import Modality
from limen.config import Settings
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
    erased_fingers: list[str] = []
    result = reprovision(conn, lock.store, lock.audit, lock.responder.journal, olga, T0,
                         fingers=lambda uid: erased_fingers.append(uid) or 1)
    assert result["re_enrol"] == [dora] and not is_locked_down(conn)
    assert erased_fingers == [dora]  # sealed under the old keys, a finger file left behind fails every search
    assert people.enrolled_ids(conn) == set() and people.enrolments_of(conn, dora) == []
    row = next(r for r in people.list_people(conn) if r["id"] == dora)
    assert not row["modalities"]                                 # `limen users list`: "-"
    assert not [c for c in access.credentials(dora) if c.type is CredentialType.FINGERPRINT]
    cleared = [r for r in lock.audit.tail(20) if r["reason"] == "lockdown_cleared"]
    assert cleared[-1]["data"]["re_enrol"] == [dora] and cleared[-1]["data"]["finger_files_erased"] == 1
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


def test_a_finger_enrolled_after_reprovisioning_opens(settings: Settings) -> None:
    """Fingerprint files sealed under the old keys are erased with their enrolments: one left behind made every
    finger search at the door fail (the old file no longer opens), new enrolments included."""
    from limen.bio.finger.extract import extract_file
    from limen.bio.finger.image import load_image
    from limen.bio.finger.references import open_references
    from limen.runtime import open_runtime
    from limen.tamper import journal_dir
    from limen.tamper.journal import IntentJournal
    from tests.conftest import shared

    db1 = shared("fvc2002", "DB1_B")
    rt = open_runtime(settings)
    journal = IntentJournal(journal_dir(settings))
    try:
        olga = rt.access().add_user("Olga", BOOTSTRAP_ACTOR, T0, pin=OWNER_PIN, permission=PermissionLevel.OWNER)

        def enrol_finger(name: str, finger: int) -> str:
            person = people.new_person(rt.conn, name, olga.user_id, T0)
            people.record_consent(rt.conn, person, Modality.FINGERPRINT, people.Consent("door", 30), "test",
                                  datetime.now(UTC))  # a consent that runs: the door names only those
            people.record_enrolment(rt.conn, person, Modality.FINGERPRINT, 3, "test", T0)
            rt.conn.commit()
            open_references(rt.conn, settings.data_dir).put(
                person.id, [extract_file(db1 / f"{finger}_{i}.tif") for i in (1, 2, 3)], position=2)
            return person.id

        enrol_finger("Dora", 101)
        rt.store.zeroize()
        enter_lockdown(rt.conn, "inc-1", "case: held", T0)
        reprovision(rt.conn, rt.store, rt.audit, journal, olga.user_id, T0, fingers=rt.erase_fingers)
        max_id = enrol_finger("Max", 105)
        evidence = rt.fingers().identify(load_image(db1 / "105_4.tif"))
        assert evidence.refusal is None and evidence.user_id == max_id, evidence
    finally:
        journal.close()
        rt.close()
