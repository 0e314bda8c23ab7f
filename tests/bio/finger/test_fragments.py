"""Fingerprint references go through the vault's fragments as faces do: with `fragments_n=3, k=2` and fragment
folders configured, a finger is three AONT-RS shares (one per folder), none of them the sealed reference, and
`fingerprints/` keeps only their index; any two still match (through the door's held index too), one is a
refusal, never a crash; erasing the person or the vault removes every share."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from limen import fingerprint, people
from limen.bio.finger import versions
from limen.bio.finger.extract import extract_file
from limen.bio.finger.image import load_image
from limen.bio.finger.references import references_folder
from limen.config import Settings, load_settings
from limen.decision import Reason
from limen.runtime import Runtime, open_runtime

N, K = 3, 2


@pytest.fixture
def dirs(tmp_path: Path) -> list[Path]:
    return [tmp_path / f"module{i}" for i in range(N)]


@pytest.fixture
def rt(data_dir: Path, dirs: list[Path]) -> Iterator[Runtime]:
    runtime = open_runtime(load_settings(data_dir, fragments_n=N, fragments_k=K, fragment_dirs=dirs))
    yield runtime
    runtime.close()


def _enrol(rt: Runtime, db: Path) -> dict[str, str]:
    for name, finger in (("Ada", 101), ("Bo", 102)):
        templates = [extract_file(db / f"{finger}_{i}.tif") for i in (1, 2, 3)]
        fingerprint.enrol(rt, rt.access(), name, people.Consent("door", 30), "test", datetime.now(UTC),
                          templates=templates, finger=2)
    return {name: people.find(rt.conn, name).id for name in ("Ada", "Bo")}


def _shares(folder: Path) -> list[Path]:
    return sorted((folder / "fingerprints").glob("*.frag"))


def _share_of(rt: Runtime, folder: Path, user_id: str) -> Path:
    index = json.loads(references_folder(rt.settings.data_dir).joinpath(f"{user_id}.2.fmr").read_bytes()[5:])
    return folder / "fingerprints" / f"{index['name']}.frag"


def test_a_finger_is_shares_in_the_modules_and_any_k_match(rt: Runtime, dirs: list[Path], fvc_db1: Path) -> None:
    ids = _enrol(rt, fvc_db1)
    folder = references_folder(rt.settings.data_dir)
    files = sorted(folder.glob("*.fmr"))
    assert [f.name for f in files] == sorted(f"{uid}.2.fmr" for uid in ids.values())
    for f in files:                                  # beside each, its extractor marker: the version, nothing else
        assert versions.marker_path(f).read_bytes() == f"{versions.EXTRACTOR_VERSION}\n".encode()
    assert len(list(folder.iterdir())) == 2 * len(files)
    for f in files:                                  # only the shares' index: no sealed reference in the folder
        raw = f.read_bytes()
        assert raw.startswith(b"LFS1\n") and set(json.loads(raw[5:])) == {"name", "k", "n", "sha256"}
    assert all(len(_shares(d)) == 2 for d in dirs)   # one share per person in each module
    fingers = rt.fingers()
    probe_ada, probe_bo = load_image(fvc_db1 / "101_6.tif"), load_image(fvc_db1 / "102_6.tif")
    assert fingers.identify(probe_ada).matched and fingers.identify(probe_ada).user_id == ids["Ada"]
    assert fingers.verify("Ada", probe_ada).matched

    _share_of(rt, dirs[0], ids["Ada"]).unlink()      # a module gone (another process): k of n remain
    assert fingers.identify(probe_ada).user_id == ids["Ada"] and fingers.identify(probe_ada).matched
    assert fingers.verify("Ada", probe_ada).matched

    _share_of(rt, dirs[1], ids["Ada"]).write_bytes(b"\x00" * 64)   # one more corrupt: below k
    for evidence in (fingers.identify(probe_ada), fingers.identify(probe_bo), fingers.verify("Ada", probe_ada)):
        assert not evidence.matched and evidence.refusal is Reason.VAULT_ERASED   # refused, the held index too
    assert fingers.verify("Bo", probe_bo).matched    # 1:1 of another person opens only that person's shares


def test_erasing_the_person_or_the_vault_removes_every_share(rt: Runtime, dirs: list[Path], fvc_db1: Path) -> None:
    ids = _enrol(rt, fvc_db1)
    fingers = rt.fingers()
    assert fingers.identify(load_image(fvc_db1 / "101_6.tif")).user_id == ids["Ada"]   # the held index has Ada
    bo_shares = [_share_of(rt, d, ids["Bo"]) for d in dirs]
    rt.erase_templates(ids["Ada"], "test", datetime.now(UTC))
    assert [_shares(d) for d in dirs] == [[s] for s in bo_shares]   # Ada's shares gone, Bo's kept
    assert not fingers.identify(load_image(fvc_db1 / "101_6.tif")).matched
    assert fingers.identify(load_image(fvc_db1 / "102_6.tif")).user_id == ids["Bo"]

    rt.store.zeroize()                               # the crypto-erase (a tamper response's) empties the modules
    assert all(_shares(d) == [] for d in dirs)
    evidence = fingers.identify(load_image(fvc_db1 / "102_6.tif"))
    assert not evidence.matched and evidence.refusal is Reason.VAULT_ERASED


def test_a_replaced_finger_leaves_one_generation(rt: Runtime, dirs: list[Path], fvc_db1: Path) -> None:
    ids = _enrol(rt, fvc_db1)
    templates = [extract_file(fvc_db1 / f"101_{i}.tif") for i in (2, 3, 4)]
    fingerprint.enrol(rt, rt.access(), "Ada", people.Consent("door", 30), "test", datetime.now(UTC),
                      templates=templates, finger=2, replace=True)
    assert all(len(_shares(d)) == 2 for d in dirs)   # the earlier generation was shredded
    assert rt.fingers().identify(load_image(fvc_db1 / "101_6.tif")).user_id == ids["Ada"]


def test_without_fragments_a_finger_stays_one_sealed_file(settings: Settings, fvc_db1: Path) -> None:
    runtime = open_runtime(settings)
    try:
        ids = _enrol(runtime, fvc_db1)
        raw = references_folder(settings.data_dir).joinpath(f"{ids['Ada']}.2.fmr").read_bytes()
        assert raw[0] == 1                           # a SecretBox blob, as before
        assert runtime.fingers().identify(load_image(fvc_db1 / "101_6.tif")).user_id == ids["Ada"]
    finally:
        runtime.close()
