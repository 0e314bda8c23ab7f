"""Fingerprint enrolment and verification for people of the lock, references sealed under the vault."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from limen import people
from limen.audit.event import Event
from limen.bio.finger import enrolment
from limen.bio.finger.extract import extract_file
from limen.bio.finger.references import FingerReferences
from limen.db import open_db
from limen.errors import BadRequest, ConsentRequired, InvalidSealedTemplate, NotFound
from limen.vault.secrets import SecretBox

AT = datetime(2026, 1, 1, tzinfo=UTC)


class Audit:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def append(self, event: Event) -> int:
        self.events.append(event)
        return len(self.events)


@pytest.fixture
def box() -> SecretBox:
    key = bytearray(os.urandom(32))
    return SecretBox(lambda: key)


def test_references_are_sealed_at_rest_and_round_trip(tmp_path: Path, box: SecretBox, fvc_db1: Path) -> None:
    refs = FingerReferences(tmp_path / "fp", box)
    templates = [extract_file(fvc_db1 / f"101_{i}.tif") for i in (1, 2)]
    refs.put("abc123", templates)
    blob = (tmp_path / "fp" / "abc123.fmr").read_bytes()
    assert b"FMR\x00" not in blob                                 # no plaintext ISO record on disk
    assert (tmp_path / "fp" / "abc123.fmr").stat().st_mode & 0o077 == 0
    back = refs.get("abc123")
    assert [len(t.minutiae) for t in back] == [len(t.minutiae) for t in templates]
    other = FingerReferences(tmp_path / "fp", SecretBox(lambda: bytearray(os.urandom(32))))
    with pytest.raises(InvalidSealedTemplate):                    # another vault (or an erased one) cannot read it
        other.get("abc123")
    (tmp_path / "fp" / "abc123.fmr").rename(tmp_path / "fp" / "def456.fmr")
    with pytest.raises(InvalidSealedTemplate):                    # a file moved to another person does not open
        refs.get("def456")
    with pytest.raises(BadRequest):
        refs.get("../etc/passwd")


def test_enrol_then_verify_genuine_and_impostor(tmp_path: Path, box: SecretBox, fvc_db1: Path) -> None:
    conn = open_db(tmp_path / "limen.db")
    refs = FingerReferences(tmp_path / "fp", box)
    audit = Audit()
    templates = [extract_file(fvc_db1 / f"101_{i}.tif") for i in (1, 2, 3)]
    result = enrolment.enrol(conn, refs, audit, "Ada", templates, people.Consent("door", 30), "owner", AT)
    assert result.new_person and result.impressions == 3 and refs.enrolled() == [result.user_id]
    assert audit.events[-1].data["samples"] == 3 and "minutiae" not in str(audit.events[-1].data)
    genuine = enrolment.verify(conn, refs, "Ada", extract_file(fvc_db1 / "101_5.tif"))
    impostor = enrolment.verify(conn, refs, "Ada", extract_file(fvc_db1 / "104_1.tif"))
    assert genuine.score > impostor.score and not impostor.matched
    with pytest.raises(NotFound):
        enrolment.verify(conn, refs, "Nobody", templates[0])


def test_enrolment_needs_consent_and_two_impressions(tmp_path: Path, box: SecretBox, fvc_db1: Path) -> None:
    conn = open_db(tmp_path / "limen.db")
    refs = FingerReferences(tmp_path / "fp", box)
    one = [extract_file(fvc_db1 / "101_1.tif")]
    with pytest.raises(ConsentRequired):
        enrolment.enrol(conn, refs, Audit(), "Ada", one * 2, people.Consent("", 30), "owner", AT)
    with pytest.raises(BadRequest, match="impressions"):
        enrolment.enrol(conn, refs, Audit(), "Ada", one, people.Consent("door", 30), "owner", AT)
    assert refs.enrolled() == []
    with pytest.raises(NotFound):
        people.find(conn, "Ada")


def test_an_impression_with_too_few_minutiae_refuses_the_enrolment(tmp_path: Path, box: SecretBox,
                                                                   fvc_db1: Path) -> None:
    from limen.bio.finger.template import FingerTemplate

    conn = open_db(tmp_path / "limen.db")
    refs = FingerReferences(tmp_path / "fp", box)
    good = extract_file(fvc_db1 / "101_1.tif")
    poor = FingerTemplate(good.width, good.height, good.dpi, good.minutiae[:6])   # a probe may have 6, a reference not
    with pytest.raises(BadRequest, match="impression 2 has 6"):
        enrolment.enrol(conn, refs, Audit(), "Ada", [good, poor], people.Consent("door", 30), "owner", AT)
    assert refs.enrolled() == []


def test_identify_and_policy_evidence(tmp_path: Path, box: SecretBox, fvc_db1: Path) -> None:
    from limen.bio.finger.image import load_image
    from limen.decision import Assurance, Reason

    conn = open_db(tmp_path / "limen.db")
    refs = FingerReferences(tmp_path / "fp", box)
    ids = {}
    for f in (101, 102, 103):
        templates = [extract_file(fvc_db1 / f"{f}_{i}.tif") for i in (1, 2)]
        ids[f] = enrolment.enrol(conn, refs, Audit(), f"P{f}", templates, people.Consent("door", 30), "owner",
                                 AT).user_id
    probe = extract_file(fvc_db1 / "102_4.tif")
    assert enrolment.identify(refs, probe)[0] == ids[102]
    door = enrolment.FingerRecognizer(conn, lambda: refs)
    one = door.verify(ids[102], load_image(fvc_db1 / "102_4.tif"))
    assert one.user_id == ids[102] and one.score is not None and one.threshold is not None
    assert one.assurance is Assurance.MEDIUM                       # no liveness from an R30x: a first factor only
    unknown = door.verify("feedbeef", load_image(fvc_db1 / "102_4.tif"))
    assert unknown.refusal is Reason.UNKNOWN_USER and unknown.score is None   # a refusal, not a failed comparison
    assert enrolment.identify(FingerReferences(tmp_path / "empty", box), probe) == (None, 0.0)


def _refused_and_nothing_stored(conn: object, refs: FingerReferences, templates: list, match: str,
                                name: str = "Gus") -> None:
    with pytest.raises(BadRequest, match=match):
        enrolment.enrol(conn, refs, Audit(), name, templates, people.Consent("door", 30), "owner", AT)  # type: ignore[arg-type]
    assert refs.enrolled() == []
    with pytest.raises(NotFound):
        people.find(conn, name)  # type: ignore[arg-type]


def test_impressions_of_different_fingers_are_refused(tmp_path: Path, box: SecretBox, fvc_db1: Path) -> None:
    conn = open_db(tmp_path / "limen.db")
    refs = FingerReferences(tmp_path / "fp", box)
    three = [extract_file(fvc_db1 / f"{f}_1.tif") for f in (107, 108, 109)]
    _refused_and_nothing_stored(conn, refs, three, "do not match one another")
    two_and_one = [extract_file(fvc_db1 / f) for f in ("107_1.tif", "107_2.tif", "108_1.tif")]
    _refused_and_nothing_stored(conn, refs, two_and_one, "impression 3 does not match the others")
    two_and_two = [extract_file(fvc_db1 / f) for f in ("107_1.tif", "107_2.tif", "108_1.tif", "108_2.tif")]
    _refused_and_nothing_stored(conn, refs, two_and_two, "impression 3, 4 does not match")


def test_the_same_impression_twice_is_refused(tmp_path: Path, box: SecretBox, fvc_db1: Path) -> None:
    import cv2
    import numpy as np

    from limen.bio.finger.extract import extract
    from limen.bio.finger.image import load_image

    conn = open_db(tmp_path / "limen.db")
    refs = FingerReferences(tmp_path / "fp", box)
    a, b = extract_file(fvc_db1 / "101_1.tif"), extract_file(fvc_db1 / "101_2.tif")
    _refused_and_nothing_stored(conn, refs, [a, b, a], "impressions 1 and 3 are the same impression twice")
    image = load_image(fvc_db1 / "101_2.tif")                          # the same image, re-encoded and noisier
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 70])
    noisy = cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE).astype(np.int16)
    noisy = np.clip(noisy + np.random.default_rng(0).integers(-6, 7, noisy.shape), 0, 255).astype(np.uint8)
    copy = extract(noisy)
    assert ok and copy != b
    _refused_and_nothing_stored(conn, refs, [a, b, copy], "impressions 2 and 3 are the same impression twice")


def test_a_finger_already_enrolled_is_replaced_only_when_asked(tmp_path: Path, box: SecretBox,
                                                                fvc_db1: Path) -> None:
    conn = open_db(tmp_path / "limen.db")
    refs = FingerReferences(tmp_path / "fp", box)
    consent = people.Consent("door", 30)
    first = [extract_file(fvc_db1 / f"101_{i}.tif") for i in (1, 2, 3)]
    other = [extract_file(fvc_db1 / f"102_{i}.tif") for i in (1, 2, 3)]
    uid = enrolment.enrol(conn, refs, Audit(), "Gus", first, consent, "owner", AT, finger=2).user_id
    with pytest.raises(BadRequest, match="already has right index"):
        enrolment.enrol(conn, refs, Audit(), "Gus", other, consent, "owner", AT, finger=2)
    assert enrolment.verify(conn, refs, "Gus", extract_file(fvc_db1 / "101_5.tif")).matched   # the old finger kept
    assert not enrolment.verify(conn, refs, "Gus", extract_file(fvc_db1 / "102_5.tif")).matched
    enrolment.enrol(conn, refs, Audit(), uid, other, consent, "owner", AT, finger=2, replace=True)
    assert refs.fingers(uid) == [2]
    assert enrolment.verify(conn, refs, "Gus", extract_file(fvc_db1 / "102_5.tif")).matched
    enrolment.enrol(conn, refs, Audit(), uid, first, consent, "owner", AT, finger=3)    # another position: no flag
    assert refs.fingers(uid) == [2, 3]
