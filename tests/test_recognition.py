"""Enrol, verify and identify on real faces through the TemplateStore interface."""

from pathlib import Path

import numpy as np
import pytest

from limen.audit.event import EventKind, MemoryAuditSink
from limen.bio.templates import InMemoryTemplateStore, Modality
from limen.capture import Capture, load_capture
from limen.db import open_db
from limen.decision import Assurance, QualityGate, Reason
from limen.errors import BadImage, BadRequest, Conflict, ConsentRequired
from limen.pad.contract import Purpose
from limen.pad.fusion import ATTACK, BONA_FIDE, PadVerdict
from limen.people import Consent, list_people
from limen.recognition import EnrolmentRefused, FaceRecognizer
from tests.conftest import shared

CONSENT = Consent("open the front door", 365)


def verdict(reason: str, purpose: Purpose, texture: float) -> PadVerdict:
    return PadVerdict(reason == BONA_FIDE, reason, Assurance.MEDIUM, purpose, scores={"texture": texture})


class FakePad:
    """Says 'attack' for any capture whose source contains 'spoof'."""

    def __init__(self) -> None:
        self.calls: list[Purpose] = []

    def __call__(self, capture: Capture, purpose: Purpose, boxes: object = None) -> PadVerdict:
        self.calls.append(purpose)
        self.boxes = boxes
        if "spoof" in capture.source:
            return verdict(ATTACK, purpose, 0.1)
        return verdict(BONA_FIDE, purpose, 0.9)


def lfw(name: str, *numbers: int) -> list[Capture]:
    return [load_capture(shared("lfw-subset", name, f"{name}_{n:04d}.jpg")) for n in numbers]


@pytest.fixture
def rec(tmp_path: Path) -> FaceRecognizer:
    return FaceRecognizer(open_db(tmp_path / "l.db"), InMemoryTemplateStore(), MemoryAuditSink(), pad=FakePad())


def test_enrol_then_verify_same_and_other_person(rec: FaceRecognizer) -> None:
    # five-sample references, as recommended (README: FRR at the door threshold); probes are images
    # that the protocol's score file shows as clear genuine matches, so the test is about mechanics
    result = rec.enrol("Colin", lfw("Colin_Powell", 1, 2, 3, 4, 5), CONSENT, actor="owner")
    assert result.samples == 5 and result.warnings == []
    same = rec.verify("Colin", lfw("Colin_Powell", 7)[0])
    other = rec.verify("Colin", lfw("Tony_Blair", 1)[0])
    assert same.matched and same.refusal is None and same.distance is not None
    assert same.user_id == result.user_id and same.distance <= same.threshold  # type: ignore[operator]
    assert not other.matched and other.distance > other.threshold  # type: ignore[operator]
    assert "embed" in same.timings and same.assurance is Assurance.MEDIUM
    assert same.pad is not None and same.pad.scores == {"texture": 0.9}


def test_identify_picks_the_right_person(rec: FaceRecognizer) -> None:
    rec.enrol("Colin", lfw("Colin_Powell", 1, 2, 3, 4, 5), CONSENT, actor="owner")
    tony = rec.enrol("Tony", lfw("Tony_Blair", 1, 2, 3, 4, 5), CONSENT, actor="owner").user_id
    hit = rec.identify(lfw("Tony_Blair", 9)[0])
    miss = rec.identify(lfw("Jacques_Chirac", 1)[0])
    assert hit.matched and hit.user_id == tony
    assert not miss.matched and miss.user_id is None


def test_enrolment_records_consent_and_audit_without_biometrics(rec: FaceRecognizer) -> None:
    rec.enrol("Colin", lfw("Colin_Powell", 1), CONSENT, actor="owner")
    rows = list_people(rec.conn)
    assert rows[0]["purpose"] == CONSENT.purpose and rows[0]["retention_days"] == 365
    events = rec.audit.events  # type: ignore[attr-defined]
    assert events[-1].kind is EventKind.ENROLMENT and events[-1].actor == "owner"
    flat = repr(events)
    assert "embedding" not in flat and "array" not in flat


def test_consent_is_required(rec: FaceRecognizer) -> None:
    with pytest.raises(ConsentRequired):
        rec.enrol("Colin", lfw("Colin_Powell", 1), Consent("", 30), actor="owner")
    with pytest.raises(ConsentRequired):
        rec.enrol("Colin", lfw("Colin_Powell", 1), Consent("door", 0), actor="owner")
    assert list_people(rec.conn) == []


def test_spoof_is_not_enrolled_and_nothing_is_written(rec: FaceRecognizer) -> None:
    captures = lfw("Colin_Powell", 1, 2)
    spoof = Capture(captures[1].frames, source="spoof-print")
    with pytest.raises(EnrolmentRefused) as err:
        rec.enrol("Colin", [captures[0], spoof], CONSENT, actor="owner")
    assert err.value.reason is Reason.PAD_FAILED
    assert list_people(rec.conn) == [] and rec.store.search(Modality.FACE, np.zeros(128)) == []
    assert rec.audit.events[-1].outcome == "refused"  # type: ignore[attr-defined]


def test_verification_runs_pad_first(rec: FaceRecognizer) -> None:
    rec.enrol("Colin", lfw("Colin_Powell", 1, 2), CONSENT, actor="owner")
    spoof = Capture(lfw("Colin_Powell", 3)[0].frames, source="spoof-screen")
    d = rec.verify("Colin", spoof)
    assert not d.matched and d.pad is not None and d.pad.reason == ATTACK and d.distance is None
    assert rec.pad.calls[-1] is Purpose.VERIFY  # type: ignore[union-attr]
    boxes = rec.pad.boxes  # type: ignore[union-attr]
    assert len(boxes) == 1 and boxes[0] is not None and boxes[0].width > 50  # PAD reuses the pipeline's face box


def test_no_face_and_unknown_user(rec: FaceRecognizer) -> None:
    rec.enrol("Colin", lfw("Colin_Powell", 1), CONSENT, actor="owner")
    blank = Capture.single(np.full((240, 320, 3), 90, np.uint8), "blank")
    calls = len(rec.pad.calls)  # type: ignore[union-attr]
    none = rec.verify("Colin", blank)
    assert none.refusal is Reason.NO_FACE and none.quality_gate is QualityGate.NO_FACE and none.pad is None
    assert len(rec.pad.calls) == calls  # type: ignore[union-attr]  # no face: PAD is not asked (no alarm)
    assert rec.verify("Nobody", lfw("Colin_Powell", 2)[0]).refusal is Reason.UNKNOWN_USER


def test_no_usable_face_refuses_enrolment(rec: FaceRecognizer) -> None:
    blank = Capture.single(np.full((240, 320, 3), 90, np.uint8), "blank")
    with pytest.raises(EnrolmentRefused) as err:
        rec.enrol("Nobody", [blank], CONSENT, actor="owner")
    assert err.value.reason is Reason.LOW_QUALITY and list_people(rec.conn) == []


def test_bad_file_in_enrolment_writes_nothing(rec: FaceRecognizer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(BadImage, match="bad.jpg"):
        rec.enrol("Colin", lfw("Colin_Powell", 1) + [load_capture(bad)], CONSENT, actor="owner")
    assert list_people(rec.conn) == []


class FailingStore(InMemoryTemplateStore):
    def put(self, user_id: str, modality: Modality, reference: np.ndarray) -> None:
        raise OSError("disk full")


def test_store_failure_rolls_back_the_person(tmp_path: Path) -> None:
    rec = FaceRecognizer(open_db(tmp_path / "l.db"), FailingStore(), MemoryAuditSink(), pad=FakePad())
    with pytest.raises(OSError):
        rec.enrol("Colin", lfw("Colin_Powell", 1), CONSENT, actor="owner")
    assert list_people(rec.conn) == []


def test_duplicate_and_hostile_names(rec: FaceRecognizer) -> None:
    rec.enrol("Colin", lfw("Colin_Powell", 1), CONSENT, actor="owner")
    with pytest.raises(Conflict):
        rec.enrol("Colin", lfw("Colin_Powell", 2), CONSENT, actor="owner")
    with pytest.raises(BadRequest):
        rec.enrol("Evil\x1b[2J", lfw("Colin_Powell", 2), CONSENT, actor="owner")


class ErasedStore(InMemoryTemplateStore):
    def distance(self, user_id: str, modality: Modality, probe: np.ndarray) -> float:
        from limen.errors import VaultErased

        raise VaultErased("erased")

    def search(self, modality: Modality, probe: np.ndarray, top_k: int = 5) -> list:  # type: ignore[type-arg]
        from limen.errors import VaultErased

        raise VaultErased("erased")


def test_after_a_crypto_erase_attempts_are_refused_decisions(tmp_path: Path) -> None:
    store = ErasedStore()
    rec = FaceRecognizer(open_db(tmp_path / "l.db"), store, MemoryAuditSink(), pad=FakePad())
    rec.enrol("Colin", lfw("Colin_Powell", 1), CONSENT, actor="owner")
    events = len(rec.audit.events)  # type: ignore[attr-defined]
    assert rec.verify("Colin", lfw("Colin_Powell", 2)[0]).refusal is Reason.VAULT_ERASED
    assert rec.identify(lfw("Colin_Powell", 2)[0]).refusal is Reason.VAULT_ERASED
    assert len(rec.audit.events) == events  # type: ignore[attr-defined]  # the controller records attempts
