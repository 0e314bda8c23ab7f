"""`limen finger export`: an enrolled finger as an ISO/IEC 19794-2:2005 record — the owner's, audited without the
template, 0600, refused when the templates live on the module; a fresh lock enrols the same finger from it."""

from __future__ import annotations

import json
from pathlib import Path

from limen.bio.finger import iso
from tests.cli.test_access_cli import OWNER_PIN, subprocess_limen
from tests.cli.test_cli import limen
from tests.conftest import shared

_ENROL = ("--consent", "--purpose", "door", "--retention-days", "30")


def test_an_exported_finger_enrols_on_a_fresh_lock_and_matches_the_same_finger(tmp_path: Path) -> None:
    db = shared("fvc2002", "DB1_B")
    first, fresh = tmp_path / "first", tmp_path / "fresh"
    images = [a for i in (1, 2, 3) for a in ("--image", str(db / f"104_{i}.tif"))]
    assert limen(first, "finger", "enrol", "Ada", *_ENROL, "--position", "2", *images).returncode == 0
    out = tmp_path / "ada.fmr"
    exported = limen(first, "--json", "finger", "export", "Ada", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["impressions"] == 3 and json.loads(exported.stdout)["finger"] == 2
    assert out.stat().st_mode & 0o777 == 0o600
    views = iso.decode_views(out.read_bytes())
    assert len(views) == 3 and all(len(v.minutiae) >= 12 for v in views)
    enrolled = limen(fresh, "--json", "finger", "enroll", "Other", *_ENROL, "--image", str(out))
    assert enrolled.returncode == 0, enrolled.stderr
    assert json.loads(enrolled.stdout)["impressions"] == 3
    same = limen(fresh, "--json", "finger", "verify", "Other", "--image", str(db / "104_7.tif"))
    other = limen(fresh, "--json", "finger", "verify", "Other", "--image", str(db / "108_7.tif"))
    assert same.returncode == 0 and json.loads(same.stdout)["matched"] is True, same.stdout
    assert other.returncode == 1 and json.loads(other.stdout)["matched"] is False


def test_export_on_an_owned_lock_is_the_owners_and_audited_without_the_template(tmp_path: Path) -> None:
    db = shared("fvc2002", "DB1_B")
    data = tmp_path / "data"
    assert subprocess_limen(data, "users", "add", "Olga", LIMEN_NEW_PIN=OWNER_PIN).returncode == 0
    images = [a for i in (1, 2, 3) for a in ("--image", str(db / f"105_{i}.tif"))]
    enrolled = subprocess_limen(data, "finger", "enrol", "Ada", *_ENROL, "--as", "Olga", *images,
                                LIMEN_ACTOR_PIN=OWNER_PIN)
    assert enrolled.returncode == 0, enrolled.stderr
    out = tmp_path / "ada.fmr"
    anyone = subprocess_limen(data, "finger", "export", "Ada", "--out", str(out))
    wrong = subprocess_limen(data, "finger", "export", "Ada", "--out", str(out), "--as", "Olga",
                             LIMEN_ACTOR_PIN="999999")
    assert anyone.returncode == 1 and wrong.returncode == 1 and not out.exists()
    ok = subprocess_limen(data, "finger", "export", "Ada", "--out", str(out), "--as", "Olga",
                          LIMEN_ACTOR_PIN=OWNER_PIN)
    assert ok.returncode == 0, ok.stderr
    missing = subprocess_limen(data, "finger", "export", "Ada", "--position", "3", "--out", str(tmp_path / "x.fmr"),
                               "--as", "Olga", LIMEN_ACTOR_PIN=OWNER_PIN)
    assert missing.returncode == 1 and not (tmp_path / "x.fmr").exists()
    tail = json.loads(subprocess_limen(data, "--json", "audit", "tail", "-n", "50").stdout)
    (record,) = [r for r in tail if str(r.get("reason", "")).startswith("finger exported")]
    assert record["actor"] not in ("cli", "") and record["outcome"] == "written"
    record_bytes = out.read_bytes()
    assert record_bytes[24:40].hex() not in json.dumps(tail) and "minutiae" not in json.dumps(record)


def test_export_is_refused_when_fingers_are_matched_on_the_sensor(tmp_path: Path) -> None:
    out = tmp_path / "x.fmr"
    refused = subprocess_limen(tmp_path / "data", "finger", "export", "Ada", "--out", str(out),
                               LIMEN_FINGER_MATCHING="sensor")
    assert refused.returncode == 1 and "on the module" in refused.stderr and not out.exists()
