"""`ReferenceIndex`: the door's 1:N finger index held in memory between attempts gives the answer a fresh
index over the sealed files gives (same person, same score), and never outlives what it was built from: a
finger enrolled, replaced or removed, a person erased (through this module or behind its back), a consent
that ran out, a crypto-erase, a new key, a tamper response's memory scrub."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from limen import people
from limen.bio.finger import enrolment
from limen.bio.finger.extract import extract_file
from limen.bio.finger.image import load_image
from limen.bio.finger.references import FingerReferences, ReferenceIndex, erase_references, open_references
from limen.bio.finger.template import FingerTemplate
from limen.bio.templates import Modality
from limen.config import Settings
from limen.decision import Reason
from limen.errors import InvalidSealedTemplate, VaultErased
from limen.privacy.retention import enforce_retention
from limen.runtime import Runtime, open_runtime
from limen.tamper import memory
from limen.vault.secrets import SecretBox

FINGERS = (101, 102, 103, 104, 105)


@pytest.fixture(scope="module")
def prints(fvc_db1: Path) -> dict[str, FingerTemplate]:
    """Impressions 1-3 of five DB1_B fingers (the gallery) and 4-6 (the probes), by FVC name."""
    return {f"{f}_{i}": extract_file(fvc_db1 / f"{f}_{i}.tif") for f in FINGERS for i in range(1, 7)}


class Box:
    """A secrets box whose key can be erased or changed (the vault's `SecretBox`, without the vault)."""

    def __init__(self) -> None:
        self.key: bytearray | None = bytearray(os.urandom(32))
        self.box = SecretBox(self.secrets_key)

    def secrets_key(self) -> bytearray:
        if self.key is None:
            raise VaultErased("erased")
        return self.key


def _gallery(refs: FingerReferences, prints: dict[str, FingerTemplate]) -> dict[int, str]:
    ids = {f: f"{f:016x}" for f in FINGERS}
    for f, uid in ids.items():
        refs.put(uid, [prints[f"{f}_{i}"] for i in (1, 2, 3)], position=2)
    return ids


def _agree(refs: FingerReferences, index: ReferenceIndex, probe: FingerTemplate) -> tuple[str | None, float]:
    cached = enrolment.identify(refs, probe, index)
    assert cached == enrolment.identify(refs, probe)          # the same person and the same score, bit for bit
    return cached


def test_the_held_index_answers_as_a_fresh_one(tmp_path: Path, prints: dict[str, FingerTemplate]) -> None:
    refs = FingerReferences(tmp_path / "fp", Box().box)
    ids = _gallery(refs, prints)
    index = ReferenceIndex()
    for f in FINGERS:
        for i in (4, 5, 6):
            uid, score = _agree(refs, index, prints[f"{f}_{i}"])
            assert uid == ids[f] and score > 0
    assert len(index) == 3 * len(FINGERS)
    held = index._index
    _agree(refs, index, prints["101_4"])
    assert index._index is held                                  # nothing changed: nothing rebuilt or unsealed


def test_enrolled_replaced_and_removed_fingers_reach_the_held_index(tmp_path: Path,
                                                                    prints: dict[str, FingerTemplate]) -> None:
    refs = FingerReferences(tmp_path / "fp", Box().box)
    ids = _gallery(refs, prints)
    index = ReferenceIndex()
    assert _agree(refs, index, prints["101_4"])[0] == ids[101]
    newcomer = "00000000000000aa"
    refs.put(newcomer, [prints[f"101_{i}"] for i in (4, 5, 6)])           # enrolled after the index was built
    assert _agree(refs, index, prints["101_4"])[0] == newcomer            # its own impression: found at once
    refs.put(newcomer, [prints[f"102_{i}"] for i in (4, 5, 6)])           # the finger replaced
    assert _agree(refs, index, prints["101_4"])[0] == ids[101]
    refs.delete(ids[102], 2)                                              # one finger removed
    assert _agree(refs, index, prints["102_5"])[0] != ids[102]
    assert len(index) == 3 * len(FINGERS)


def test_an_erased_person_is_never_matched(tmp_path: Path, prints: dict[str, FingerTemplate]) -> None:
    refs = FingerReferences(tmp_path / "fp", Box().box)
    ids = _gallery(refs, prints)
    index = ReferenceIndex()
    assert _agree(refs, index, prints["103_4"])[0] == ids[103]
    assert erase_references(refs.folder, ids[103]) == 1                  # the runtime's erasure (works w/o vault)
    assert _agree(refs, index, prints["103_4"])[0] != ids[103]
    assert _agree(refs, index, prints["104_4"])[0] == ids[104]
    (refs.folder / f"{ids[104]}.2.fmr").unlink()                          # behind this process's back
    assert _agree(refs, index, prints["104_4"])[0] != ids[104]
    assert all(not key.startswith((ids[103], ids[104])) for key in index._index._keys)  # type: ignore[union-attr]


def test_a_crypto_erase_or_a_new_key_drops_the_held_index(tmp_path: Path,
                                                          prints: dict[str, FingerTemplate]) -> None:
    box = Box()
    refs = FingerReferences(tmp_path / "fp", box.box)
    _gallery(refs, prints)
    index = ReferenceIndex()
    _agree(refs, index, prints["101_4"])
    held = next(iter(index._entries.values())).prepared[0].dist
    box.key = bytearray(os.urandom(32))                                   # re-keyed: the files no longer open
    with pytest.raises(InvalidSealedTemplate):
        enrolment.identify(refs, prints["101_4"], index)
    assert len(index) == 0 and not index._entries and not np.any(np.nan_to_num(held))   # zeroed, dropped
    box.key = None                                                        # crypto-erased
    with pytest.raises(VaultErased):
        enrolment.identify(refs, prints["101_4"], index)
    assert len(index) == 0


def test_the_door_path_refuses_after_a_zeroize_and_a_tamper_scrub_wipes_the_index(
        settings: Settings, fvc_db1: Path, prints: dict[str, FingerTemplate]) -> None:
    rt = open_runtime(settings)
    try:
        ids = _gallery(open_references(rt.conn, settings.data_dir), prints)
        now = datetime.now(UTC)
        for f, uid in ids.items():                      # the door names only people whose consent runs
            people.add_with_id(rt.conn, uid, f"P{f}", "test", now.isoformat())
            person = people.find(rt.conn, uid)
            people.record_consent(rt.conn, person, Modality.FINGERPRINT, people.Consent("door", 30), "test", now)
        fingers = rt.fingers()
        assert fingers.identify(load_image(fvc_db1 / "105_4.tif")).user_id == ids[105]
        assert len(rt.finger_index) == 3 * len(FINGERS)
        held = next(iter(rt.finger_index._entries.values())).prepared[0].xy
        memory.scrub(collect=False)                                       # a tamper response's scrub step
        assert len(rt.finger_index) == 0 and not rt.finger_index._entries and not np.any(held)
        assert fingers.identify(load_image(fvc_db1 / "105_4.tif")).user_id == ids[105]   # rebuilt from files
        rt.store.zeroize()
        evidence = fingers.identify(load_image(fvc_db1 / "105_4.tif"))
        assert evidence.refusal is Reason.VAULT_ERASED and not evidence.matched
        assert len(rt.finger_index) == 0
    finally:
        rt.close()


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = open_runtime(settings)
    yield runtime
    runtime.close()


def test_erasure_and_consent_expiry_through_the_runtime(rt: Runtime, fvc_db1: Path,
                                                        prints: dict[str, FingerTemplate]) -> None:
    refs = open_references(rt.conn, rt.settings.data_dir)
    now = datetime.now(UTC)
    ids: dict[int, str] = {}
    for f, days, given in ((101, 30, now), (102, 1, now - timedelta(days=3)), (103, 30, now)):
        person = people.new_person(rt.conn, f"P{f}", "test", given)
        people.record_consent(rt.conn, person, Modality.FINGERPRINT, people.Consent("door", days), "test", given)
        people.record_enrolment(rt.conn, person, Modality.FINGERPRINT, 3, "test", given)
        refs.put(person.id, [prints[f"{f}_{i}"] for i in (1, 2, 3)])
        ids[f] = person.id
    fingers = rt.fingers()
    probe = {f: load_image(fvc_db1 / f"{f}_4.tif") for f in ids}
    assert all(fingers.identify(probe[f]).user_id == ids[f] for f in (101, 103))    # the index is warm
    assert fingers.identify(probe[102]).user_id is None        # 102's consent ran out: no match before retention
    enforce_retention(rt.conn, rt.store, rt.audit, now, fingers=rt.erase_fingers)     # 102's consent ran out
    assert fingers.identify(probe[102]).user_id != ids[102]
    rt.erase_templates(ids[103], "owner", now)                                      # a person erased
    assert fingers.identify(probe[103]).user_id != ids[103]
    assert fingers.identify(probe[101]).user_id == ids[101]
    assert {k.split(":")[0] for k in rt.finger_index._index._keys} == {ids[101]}      # type: ignore[union-attr]



def test_a_wipe_during_a_search_is_no_answer_and_leaves_nothing(tmp_path: Path, prints: dict[str, FingerTemplate],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A tamper scrub does not wait for a search (a cold build takes seconds): the search it overtook refuses."""
    refs = FingerReferences(tmp_path / "fp", Box().box)
    ids = _gallery(refs, prints)
    index = ReferenceIndex()
    unseal = FingerReferences._impressions

    def wiped_meanwhile(self: FingerReferences, user_id: str, position: int) -> list[FingerTemplate]:
        index.wipe()                                                      # from the tamper thread, say
        return unseal(self, user_id, position)

    monkeypatch.setattr(FingerReferences, "_impressions", wiped_meanwhile)
    with pytest.raises(VaultErased):
        enrolment.identify(refs, prints["101_4"], index)
    assert len(index) == 0 and not index._entries
    monkeypatch.setattr(FingerReferences, "_impressions", unseal)
    assert _agree(refs, index, prints["101_4"])[0] == ids[101]
