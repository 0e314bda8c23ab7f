"""Opt-in template backups: real faces (LFW) and fingers (FVC2002 DB1_B) match again after a tamper erase and a
restore onto a replacement lock; without the opt-in nothing biometric is in the backup ("enrol again")."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from limen.audit.event import Event, EventKind
from limen.bio.finger import enrolment
from limen.bio.finger.extract import extract_file
from limen.bio.finger.references import open_references
from limen.bio.finger.template import FingerTemplate
from limen.capture import Capture, load_capture
from limen.errors import BadRequest
from limen.link.backup import Restored, open_backup, unwrap_key
from limen.people import Consent
from limen.recognition import FaceRecognizer
from tests.conftest import shared
from tests.link.test_backup import NEW_OWNER_PIN, Lock, open_lock, restore_command
from tests.link.test_backup import cheap_argon2 as cheap_argon2  # noqa: F401 - the autouse fixture applies here
from tests.test_recognition import FakePad

YEAR, MONTH = Consent("open the front door", 365), Consent("open the front door", 30)


def lfw(name: str, *numbers: int) -> list[Capture]:
    return [load_capture(shared("lfw-subset", name, f"{name}_{n:04d}.jpg")) for n in numbers]


def faces(lock: Lock) -> FaceRecognizer:
    """The lock's face recognizer over its vault (PAD stubbed to bona fide: this is about the templates)."""
    return FaceRecognizer(lock.rt.conn, lock.rt.store, lock.rt.audit, engine=lock.rt.engine, pad=FakePad())


def fvc(*numbers: int) -> list[FingerTemplate]:
    return [extract_file(shared("fvc2002", "DB1_B", f"101_{n}.tif")) for n in numbers]


def finger_matches(lock: Lock, name: str) -> bool:
    refs = open_references(lock.rt.conn, lock.rt.settings.data_dir)
    return enrolment.verify(lock.rt.conn, refs, name, fvc(6)[0]).matched


@pytest.fixture
def lock(tmp_path: Path) -> Iterator[Lock]:
    """Front door with Colin (face + right index finger, consent a year) and Tony (face, consent a month)."""
    lk = open_lock(tmp_path / "front", "front-door", Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
    at = datetime.now(UTC)
    rec = faces(lk)
    rec.enrol("Colin", lfw("Colin_Powell", 1, 2, 3, 4, 5), YEAR, actor=lk.owner)
    rec.enrol("Tony", lfw("Tony_Blair", 1, 2, 3, 4, 5), MONTH, actor=lk.owner)
    refs = open_references(lk.rt.conn, lk.rt.settings.data_dir)
    enrolment.enrol(lk.rt.conn, refs, lk.rt.audit, "Colin", fvc(1, 2, 3), YEAR, lk.owner, at, finger=2)
    yield lk
    lk.close()


def replacement(lock: Lock, root: Path) -> Lock:
    return open_lock(root, "front-door-2", lock.phone, lock.phone_x, owner_pin=NEW_OWNER_PIN)


def restore(new: Lock, old: Lock, blob: bytes, at: datetime | None = None) -> Restored:
    _, content_key = unwrap_key(blob, old.phone_x)
    return new.backups.restore(blob, content_key, at or datetime.now(UTC), from_lock="front-door",
                               lock_keys={old.rt.audit.key.key_id: old.rt.audit.key.public})


def payload(lock: Lock, blob: bytes) -> bytes:
    _, content_key = unwrap_key(blob, lock.phone_x)
    return open_backup(blob, content_key)[1]


def biometric_strings(lock: Lock) -> list[bytes]:
    """The base64 of every piece of template material the old lock holds (as a backup payload would carry it)."""
    material = lock.rt.store.export_for_backup()
    refs = open_references(lock.rt.conn, lock.rt.settings.data_dir).export_for_backup()
    try:
        pieces = [bytes(material.transform), *(bytes(p) for _, _, p in material.records),
                  *(bytes(p) for _, _, p in refs)]
        return [base64.b64encode(p) for p in pieces]
    finally:
        material.wipe()


def test_opted_in_faces_and_fingers_match_again_on_a_replacement_lock(lock: Lock, tmp_path: Path) -> None:
    assert not lock.backups.templates_opted_in()  # off by default
    lock.backups.set_templates(True, lock.owner, datetime.now(UTC), lock.rt.audit)
    change = lock.rt.audit.tail(1)[0]
    assert (change["kind"], change["reason"], change["actor"]) == (EventKind.CONFIG_CHANGE.value,
                                                                   "template backup on", lock.owner)
    needles = biometric_strings(lock)
    _, blob = lock.backups.make(datetime.now(UTC))
    inside = payload(lock, blob)
    assert all(n in inside for n in needles) and not any(n in blob for n in needles)  # only inside the envelope
    lock.rt.store.zeroize()  # the old lock was smashed: tamper erase

    new = replacement(lock, tmp_path / "replacement")
    try:
        restored = restore(new, lock, blob)
        assert restored.templates_restored == 3, restored.templates  # 2 faces + 1 finger
        new.rt.audit.append(Event(EventKind.PRIVACY, datetime.now(UTC), actor="recovery-key", subject="lock",
                                  outcome="restored", reason="backup restored", source="cli",
                                  data=restored.to_dict()))  # as `limen link restore` records it
        rec = faces(new)
        colin = rec.verify("Colin", lfw("Colin_Powell", 7)[0])
        assert colin.matched and colin.distance is not None and colin.distance <= colin.threshold
        assert not rec.verify("Colin", lfw("Tony_Blair", 6)[0]).matched
        assert rec.verify("Tony", lfw("Tony_Blair", 6)[0]).matched
        assert finger_matches(new, "Colin")
        new_root = new.rt.settings.keys_dir / "vault-root.key"
        old_root = lock.rt.settings.keys_dir / "vault-root.key"
        assert not old_root.exists() or old_root.read_bytes() != new_root.read_bytes()  # sealed under new keys
        kinds = {r[0] for r in new.rt.conn.execute("SELECT modality FROM enrolments")}
        assert kinds == {"face", "fingerprint"}  # retention and privacy export see the restored references
    finally:
        new.close()


def test_without_the_opt_in_nothing_biometric_is_backed_up_and_people_enrol_again(lock: Lock, tmp_path: Path) -> None:
    needles = biometric_strings(lock)
    _, blob = lock.backups.make(datetime.now(UTC))
    inside = payload(lock, blob)
    assert json.loads(inside)["templates"] is False
    assert not any(n in inside for n in needles)  # the decrypted payload holds no template, finger or transform
    lock.rt.store.zeroize()

    new = replacement(lock, tmp_path / "replacement")
    try:
        restored = restore(new, lock, blob)
        assert restored.templates_restored == 0 and "enrol faces and fingers again" in restored.templates
        assert restored.to_dict()["references"] == restored.templates  # what the CLI prints and audits
        assert new.users() == ["Colin", "Olga", "Tony"]  # the people are back, their references are not
        assert not faces(new).verify("Colin", lfw("Colin_Powell", 7)[0]).matched
        assert new.rt.store.vault.records.count() == 0
        assert open_references(new.rt.conn, new.rt.settings.data_dir).enrolled() == []
    finally:
        new.close()


def test_an_erased_person_or_an_expired_consent_gets_no_template_back(lock: Lock, tmp_path: Path) -> None:
    lock.backups.set_templates(True, lock.owner, datetime.now(UTC), lock.rt.audit)
    _, blob = lock.backups.make(datetime.now(UTC))
    tony = lock.rt.conn.execute("SELECT id FROM users WHERE name = 'Tony'").fetchone()[0]

    later = replacement(lock, tmp_path / "replacement")  # restored two months on: Tony's 30-day consent has run out
    try:
        restored = restore(later, lock, blob, at=datetime.now(UTC) + timedelta(days=60))
        assert restored.templates_restored == 2, restored.templates  # Colin's face and finger only
        assert tony not in {u for u, _, _ in later.rt.store.vault.records.items()}
        assert not faces(later).verify("Tony", lfw("Tony_Blair", 6)[0]).matched
        assert faces(later).verify("Colin", lfw("Colin_Powell", 7)[0]).matched
    finally:
        later.close()

    assert lock.link.eraser is not None
    lock.link.eraser.erase_person(tony, lock.owner, datetime.now(UTC))  # "delete me", after the backup was made
    lock.rt.store.zeroize()  # then the lock is tampered with, re-provisioned, and restored from the older backup
    lock.rt.store.reprovision()
    restored = restore(lock, lock, blob)
    assert "Tony" not in lock.users()
    assert restored.templates_restored == 2, restored.templates
    colin = lock.rt.conn.execute("SELECT id FROM users WHERE name = 'Colin'").fetchone()[0]
    assert {u for u, _, _ in lock.rt.store.vault.records.items()} == {colin}
    assert open_references(lock.rt.conn, lock.rt.settings.data_dir).enrolled() == [colin]
    assert faces(lock).verify("Colin", lfw("Colin_Powell", 7)[0]).matched and finger_matches(lock, "Colin")


def test_a_backup_of_another_lock_or_a_wrong_key_restores_nothing(lock: Lock, tmp_path: Path) -> None:
    lock.backups.set_templates(True, lock.owner, datetime.now(UTC), lock.rt.audit)
    _, blob = lock.backups.make(datetime.now(UTC))
    new = replacement(lock, tmp_path / "replacement")
    pinned = {lock.rt.audit.key.key_id: lock.rt.audit.key.public}
    try:
        _, content_key = unwrap_key(blob, lock.phone_x)
        with pytest.raises(BadRequest, match="another lock"):
            new.backups.restore(blob, content_key, datetime.now(UTC), from_lock="back-door", lock_keys=pinned)
        with pytest.raises(BadRequest, match="altered, truncated or a wrong key"):
            new.backups.restore(blob, bytes(32), datetime.now(UTC), from_lock="front-door", lock_keys=pinned)
        with pytest.raises(BadRequest, match="signature|not signed"):  # the owner pinned another lock's key
            new.backups.restore(blob, content_key, datetime.now(UTC), from_lock="front-door",
                                lock_keys={new.rt.audit.key.key_id: new.rt.audit.key.public})
        with pytest.raises(BadRequest, match="not encrypted to this key"):
            unwrap_key(blob, X25519PrivateKey.generate())
        assert new.rt.store.vault.records.count() == 0 and new.users() == ["Olga"]
        assert open_references(new.rt.conn, new.rt.settings.data_dir).enrolled() == []
        outcome = new.send(restore_command(new, blob, from_lock="front-door", phone_x=lock.phone_x, origin=lock))
        assert outcome.executed, outcome  # the owner-signed path restores the templates too
        assert faces(new).verify("Colin", lfw("Colin_Powell", 7)[0]).matched
    finally:
        new.close()
