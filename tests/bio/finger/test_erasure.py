"""Erasure of fingerprint references through the lock's runtime: on user removal, and on consent expiry
(retention) without touching a face whose consent still runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from limen import people
from limen.audit.event import EventKind
from limen.bio.finger import enrolment
from limen.bio.finger.extract import extract_file
from limen.bio.finger.image import load_image
from limen.bio.finger.references import open_references, references_folder
from limen.bio.templates import Modality
from limen.config import Settings
from limen.decision import Reason
from limen.runtime import open_runtime


def _enrol(settings: Settings, fvc: Path, at: datetime, retention_days: int) -> str:
    rt = open_runtime(settings)
    try:
        templates = [extract_file(fvc / f"101_{i}.tif") for i in (1, 2, 3)]
        refs = open_references(rt.conn, settings.data_dir)
        uid = enrolment.enrol(rt.conn, refs, rt.audit, "Ada", templates, people.Consent("door", retention_days),
                              "owner", at).user_id
        enrolment.enrol(rt.conn, refs, rt.audit, uid, templates[:2], people.Consent("door", retention_days),
                        "owner", at, finger=7)                       # a second finger: both must go
        assert refs.fingers(uid) == [0, 7]
        running = at + timedelta(days=retention_days) > datetime.now(UTC)
        found = rt.fingers().identify(load_image(fvc / "101_6.tif"))
        assert found.user_id == (uid if running else None)  # consent ran out: no match even before retention
    finally:
        rt.close()
    return uid


def test_removing_a_person_erases_every_finger(settings: Settings, fvc_db1: Path) -> None:
    uid = _enrol(settings, fvc_db1, datetime.now(UTC), 365)
    rt = open_runtime(settings)
    try:
        removed = rt.erase_templates(uid, "owner", datetime.now(UTC))
        assert removed == 2
        assert not list(references_folder(settings.data_dir).glob("*"))          # no sealed impression left
        assert open_references(rt.conn, settings.data_dir).enrolled() == []
        probe = load_image(fvc_db1 / "101_6.tif")
        found = rt.fingers().identify(probe)                   # the in-memory index is rebuilt from nothing
        assert found.user_id is None and not found.matched
        assert rt.fingers().verify(uid, probe).refusal in (Reason.NOT_ENROLLED, Reason.UNKNOWN_USER)
        erased = list(rt.audit.find(EventKind.PRIVACY))
        assert erased[-1].data["templates_erased"] == 2
    finally:
        rt.close()


def test_expired_fingerprint_consent_erases_the_fingers_and_keeps_the_face(settings: Settings,
                                                                           fvc_db1: Path) -> None:
    uid = _enrol(settings, fvc_db1, datetime.now(UTC) - timedelta(days=3), 1)
    face = np.random.default_rng(1).normal(size=128)
    rt = open_runtime(settings)
    try:                                                        # a face whose consent runs for a year
        person = people.find(rt.conn, uid)
        people.record_consent(rt.conn, person, Modality.FACE, people.Consent("door", 365), "owner",
                              datetime.now(UTC))
        people.record_enrolment(rt.conn, person, Modality.FACE, 1, "owner", datetime.now(UTC))
        rt.store.put(uid, Modality.FACE, face)
        rt.conn.commit()
    finally:
        rt.close()
    # the fingers were erased at the previous open already (retention runs at every start): check it all
    rt = open_runtime(settings)
    try:
        assert open_references(rt.conn, settings.data_dir).enrolled() == []
        assert rt.store.distance(uid, Modality.FACE, face) < 0.01       # the face is untouched
        events = [e for e in rt.audit.find(EventKind.PRIVACY) if "modality" in e.data]
        assert [e.data["modality"] for e in events] == ["fingerprint"]
        assert events[0].data["templates_erased"] == 2
    finally:
        rt.close()


def test_removed_and_replaced_fingers_leave_zeros_not_sealed_records(settings: Settings, fvc_db1: Path) -> None:
    # a hard link sees the inode the lock wrote: after a removal or a re-enrolment its old sealed records are
    # overwritten (review: they were only unlinked or renamed over, readable in free blocks to whoever later
    # holds the vault's keys)
    uid = _enrol(settings, fvc_db1, datetime.now(UTC), 365)
    folder = references_folder(settings.data_dir)
    old_first, old_second = folder / "old-first", folder / "old-second"      # positions 0 and 7
    old_first.hardlink_to(folder / f"{uid}.fmr")
    old_second.hardlink_to(folder / f"{uid}.7.fmr")
    assert any(old_first.read_bytes()) and any(old_second.read_bytes())
    rt = open_runtime(settings)
    try:
        refs = open_references(rt.conn, settings.data_dir)
        templates = [extract_file(fvc_db1 / f"101_{i}.tif") for i in (4, 5)]
        enrolment.enrol(rt.conn, refs, rt.audit, uid, templates, people.Consent("door", 365), "owner",
                        datetime.now(UTC), finger=7, replace=True)          # re-enrolled: the old file replaced
        replaced = old_second.read_bytes()
        assert replaced and not any(replaced)
        assert refs.delete(uid, 0) == 1                                     # one finger removed
        removed = old_first.read_bytes()
        assert removed and not any(removed)
        assert refs.fingers(uid) == [7]
    finally:
        rt.close()


def test_a_link_planted_as_a_reference_is_never_followed(settings: Settings, fvc_db1: Path, tmp_path: Path) -> None:
    uid = _enrol(settings, fvc_db1, datetime.now(UTC), 365)
    folder = references_folder(settings.data_dir)
    victim = tmp_path / "victim"
    victim.write_bytes(b"not the lock's")
    (folder / f"{uid}.7.fmr").unlink()
    (folder / f"{uid}.7.fmr").symlink_to(victim)     # someone with write access to the folder plants a link
    rt = open_runtime(settings)
    try:
        refs = open_references(rt.conn, settings.data_dir)
        templates = [extract_file(fvc_db1 / f"101_{i}.tif") for i in (4, 5)]
        enrolment.enrol(rt.conn, refs, rt.audit, uid, templates, people.Consent("door", 365), "owner",
                        datetime.now(UTC), finger=7, replace=True)     # replaced: the link, not its target
        assert not (folder / f"{uid}.7.fmr").is_symlink()
        assert victim.read_bytes() == b"not the lock's"
        (folder / f"{uid}.fmr").unlink()
        (folder / f"{uid}.fmr").symlink_to(victim)
        refs.delete(uid)                                   # erased: the link removed, its target untouched
        assert victim.read_bytes() == b"not the lock's" and not (folder / f"{uid}.fmr").is_symlink()
    finally:
        rt.close()
