"""FingerRecognizer: the door's fingerprint evidence from real FVC2002 images and sealed references;
the references' finger positions and their erasure."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from limen import people, thresholds
from limen.audit.event import Event
from limen.bio.finger import enrolment
from limen.bio.finger.extract import extract_file
from limen.bio.finger.image import load_image
from limen.bio.finger.references import FingerReferences
from limen.db import open_db
from limen.decision import Assurance, Reason
from limen.errors import BadRequest, VaultErased
from limen.vault.secrets import SecretBox

AT = datetime(2026, 1, 1, tzinfo=UTC)


class Audit:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def append(self, event: Event) -> int:
        self.events.append(event)
        return len(self.events)


class Lock:
    """A person Ada with finger 101 of DB1_B enrolled, and the recognizer over it."""

    def __init__(self, tmp_path: Path, fvc: Path) -> None:
        key = bytearray(os.urandom(32))
        self.erased = False

        def secrets_key() -> bytearray:
            if self.erased:
                raise VaultErased("erased")
            return key

        self.fvc = fvc
        self.conn = open_db(tmp_path / "limen.db")
        self.refs = FingerReferences(tmp_path / "fp", SecretBox(secrets_key))
        templates = [extract_file(fvc / f"101_{i}.tif") for i in (1, 2, 3)]
        self.ada = enrolment.enrol(self.conn, self.refs, Audit(), "Ada", templates, people.Consent("door", 30),
                                   "owner", AT).user_id
        self.recognizer = enrolment.FingerRecognizer(self.conn, lambda: self.refs)

    def image(self, name: str) -> np.ndarray:
        return load_image(self.fvc / name)


@pytest.fixture
def lock(tmp_path: Path, fvc_db1: Path) -> Lock:
    return Lock(tmp_path, fvc_db1)


def test_genuine_and_impostor_evidence_1_to_1_and_1_to_n(lock: Lock) -> None:
    genuine = lock.recognizer.verify("Ada", lock.image("101_6.tif"))
    impostor = lock.recognizer.verify(lock.ada, lock.image("105_1.tif"))   # by id as well as by name
    assert genuine.user_id == impostor.user_id == lock.ada
    assert genuine.score is not None and impostor.score is not None and genuine.score > impostor.score
    assert not impostor.matched and impostor.threshold == thresholds.FINGER_MATCH_DEFAULT
    assert genuine.assurance is Assurance.MEDIUM and genuine.refusal is None   # the R30x reports no liveness
    found = lock.recognizer.identify(lock.image("101_6.tif"))
    assert found.user_id == lock.ada and found.score == pytest.approx(genuine.score)


def test_bad_captures_and_unknowns_are_refusals_not_errors(lock: Lock) -> None:
    blank = np.full((300, 300), 128, np.uint8)
    assert lock.recognizer.verify("Ada", blank).refusal is Reason.LOW_QUALITY
    assert lock.recognizer.identify(blank).refusal is Reason.LOW_QUALITY
    assert "place the finger" in lock.recognizer.identify(blank).detail
    assert lock.recognizer.verify("Nobody", lock.image("101_6.tif")).refusal is Reason.UNKNOWN_USER
    bob = people.new_person(lock.conn, "Bob", "owner", AT)
    assert lock.recognizer.verify("Bob", lock.image("101_6.tif")).refusal is Reason.NOT_ENROLLED
    assert bob.id not in lock.refs.enrolled()


def test_an_erased_vault_is_a_refusal(lock: Lock) -> None:
    lock.erased = True
    assert lock.recognizer.verify("Ada", lock.image("101_6.tif")).refusal is Reason.VAULT_ERASED
    assert lock.recognizer.identify(lock.image("101_6.tif")).refusal is Reason.VAULT_ERASED


def test_several_fingers_of_one_person_and_their_erasure(lock: Lock) -> None:
    second = [extract_file(lock.fvc / f"102_{i}.tif") for i in (1, 2, 3)]
    result = enrolment.enrol(lock.conn, lock.refs, Audit(), lock.ada, second, people.Consent("door", 30),
                             "owner", AT, finger=2)
    assert result.user_id == lock.ada and not result.new_person
    assert lock.refs.fingers(lock.ada) == [0, 2] and lock.refs.enrolled() == [lock.ada]
    assert len(lock.refs.get(lock.ada)) == 6                     # a probe meets every finger of the person
    assert lock.recognizer.identify(lock.image("102_6.tif")).user_id == lock.ada
    with pytest.raises(BadRequest):
        lock.refs.put(lock.ada, second, 11)
    assert lock.refs.delete(lock.ada) == 2
    assert lock.refs.enrolled() == [] and not list(lock.refs.folder.iterdir())
    assert lock.recognizer.verify("Ada", lock.image("101_6.tif")).refusal is Reason.NOT_ENROLLED
