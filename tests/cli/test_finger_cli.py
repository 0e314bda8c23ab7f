"""`limen finger …` as a user types it: enrol from images, verify, list, refusals; pairing a simulated sensor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from limen.bio.finger.simulator import SimulatedR30x
from tests.cli.test_cli import limen
from tests.conftest import shared


def test_finger_flow_end_to_end(tmp_path: Path) -> None:
    db = shared("fvc2002", "DB1_B")
    data = tmp_path / "data"
    refused = limen(data, "finger", "enroll", "Ada", "--image", str(db / "101_1.tif"), "--image", str(db / "101_2.tif"))
    assert refused.returncode == 1 and "consent" in refused.stderr
    enrolled = limen(data, "--json", "finger", "enroll", "Ada", "--consent", "--purpose", "door",
                     "--retention-days", "30", "--image", str(db / "101_1.tif"), "--image", str(db / "101_2.tif"),
                     "--image", str(db / "101_3.tif"))
    assert enrolled.returncode == 0, enrolled.stderr
    assert json.loads(enrolled.stdout)["impressions"] == 3
    assert list((data / "fingerprints").glob("*.fmr"))
    same = limen(data, "--json", "finger", "verify", "Ada", "--image", str(db / "101_6.tif"))
    other = limen(data, "--json", "finger", "verify", "Ada", "--image", str(db / "107_1.tif"))
    assert json.loads(other.stdout)["matched"] is False and other.returncode == 1
    assert json.loads(same.stdout)["score"] > json.loads(other.stdout)["score"]
    listed = limen(data, "--json", "finger", "list")
    assert [r["name"] for r in json.loads(listed.stdout)] == ["Ada"]


def test_a_bad_image_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "101_1.tif"
    bad.write_bytes(b"garbage")
    out = limen(tmp_path / "d", "finger", "enroll", "Ada", "--consent", "--purpose", "door", "--retention-days", "30",
                "--image", str(bad), "--image", str(bad))
    assert out.returncode == 1 and "not a decodable image" in out.stderr and "Traceback" not in out.stderr


def test_pairing_a_sensor_needs_its_current_password_and_records_it(tmp_path: Path) -> None:
    with SimulatedR30x() as module:
        missing = limen(tmp_path, "finger", "pair", module.port)
        assert missing.returncode != 0 and "current-password" in (missing.stderr + missing.stdout)
        paired = limen(tmp_path, "--json", "finger", "pair", module.port, "--current-password", "00000000")
        assert paired.returncode == 0, paired.stderr
        assert json.loads(paired.stdout)["identity"].startswith("r30x:")
        assert module.password != 0
        saved = tmp_path / "finger-sensor.json"
        assert saved.stat().st_mode & 0o077 == 0
        assert f"{module.password:08x}" not in saved.read_text()     # sealed under the vault, not in the clear
        module.present(np.full((300, 300), 255, np.uint8))           # a blank capture: refused, nothing enrolled
        blank = limen(tmp_path, "finger", "verify", "Ada", "--sensor", module.port)
        assert blank.returncode == 1 and "blank" in blank.stderr
        module.swap_module()
        swapped = limen(tmp_path, "finger", "verify", "Ada", "--sensor", module.port)
        assert swapped.returncode == 1 and "not the paired one" in swapped.stderr


def test_limen_enrol_and_verify_with_a_finger_go_through_the_lock(tmp_path: Path) -> None:
    db = shared("fvc2002", "DB1_B")
    data = tmp_path / "data"
    images = [a for i in (1, 2, 3) for a in ("--finger", str(db / f"102_{i}.tif"))]
    enrolled = limen(data, "--json", "enrol", "Bo", "--consent", "--purpose", "door", "--retention-days", "30",
                     *images)
    assert enrolled.returncode == 0, enrolled.stderr
    assert json.loads(enrolled.stdout)["impressions"] == 3
    genuine = limen(data, "--json", "verify", "Bo", "--finger", str(db / "102_6.tif"))
    decision = json.loads(genuine.stdout)
    # a finger from a sensor without liveness is a first factor: recognised, the door asks for a second one
    assert genuine.returncode == 3 and decision["reason"] == "second_factor_missing", genuine.stdout
    assert "fingerprint recognised" in decision["detail"]
    impostor = limen(data, "--json", "verify", "Bo", "--finger", str(db / "105_1.tif"))
    assert impostor.returncode == 3 and json.loads(impostor.stdout)["reason"] == "no_match"
    tail = limen(data, "--json", "audit", "tail", "-n", "5")
    attempts = [r for r in json.loads(tail.stdout) if r["kind"] == "unlock_attempt"]
    assert [r["data"]["method"] for r in attempts] == ["fingerprint", "fingerprint"]
    assert "102_6" not in tail.stdout and "minutiae" not in tail.stdout
    neither = limen(data, "verify", "Bo")
    assert neither.returncode == 1 and "--finger" in neither.stderr and "Traceback" not in neither.stderr


def test_limen_verify_reads_the_finger_from_the_paired_sensor(tmp_path: Path) -> None:
    db = shared("fvc2002", "DB1_B")
    data = tmp_path / "data"
    images = [a for i in (1, 2, 3) for a in ("--finger", str(db / f"103_{i}.tif"))]
    assert limen(data, "enrol", "Cy", "--consent", "--purpose", "door", "--retention-days", "30",
                 *images).returncode == 0
    with SimulatedR30x() as module:
        assert limen(data, "finger", "pair", module.port, "--current-password", "00000000").returncode == 0
        module.present(db / "103_6.tif")
        out = limen(data, "--json", "verify", "Cy", "--sensor", module.port)
        assert out.returncode == 3 and json.loads(out.stdout)["reason"] == "second_factor_missing", out.stdout
        silent = limen(data, "verify", "Cy", "--sensor", module.port)          # nothing on the sensor
        assert silent.returncode == 1 and "no finger" in silent.stderr and "Traceback" not in silent.stderr


def test_finger_verify_on_an_owned_lock_is_the_owners_and_recorded_without_the_score(tmp_path: Path) -> None:
    from tests.cli.test_access_cli import OWNER_PIN, subprocess_limen

    db = shared("fvc2002", "DB1_B")
    data = tmp_path / "data"
    owner = subprocess_limen(data, "users", "add", "Olga", LIMEN_NEW_PIN=OWNER_PIN)
    assert owner.returncode == 0, owner.stderr
    images = [a for i in (1, 2, 3) for a in ("--image", str(db / f"101_{i}.tif"))]
    enrolled = subprocess_limen(data, "finger", "enrol", "Ada", "--consent", "--purpose", "door", "--retention-days",
                                "30", "--as", "Olga", *images, LIMEN_ACTOR_PIN=OWNER_PIN)
    assert enrolled.returncode == 0, enrolled.stderr
    probe = ("finger", "verify", "Ada", "--image", str(db / "101_6.tif"))
    anyone = subprocess_limen(data, "--json", *probe)
    assert anyone.returncode == 1 and "--as" in anyone.stdout and "score" not in anyone.stdout  # --json: errors too
    wrong = subprocess_limen(data, "--json", *probe, "--as", "Olga", LIMEN_ACTOR_PIN="999999")
    assert wrong.returncode == 1 and "score" not in wrong.stdout
    checked = subprocess_limen(data, "--json", *probe, "--as", "Olga", LIMEN_ACTOR_PIN=OWNER_PIN)
    assert checked.returncode == 0 and json.loads(checked.stdout)["matched"] is True
    tail = json.loads(subprocess_limen(data, "--json", "audit", "tail", "-n", "50").stdout)
    (record,) = [r for r in tail if r["reason"] == "finger checked 1:1"]
    assert record["outcome"] == "match" and record["actor"] != "cli"
    assert "score" not in json.dumps(record)


def test_a_finger_is_enrolled_from_iso_records_and_a_bad_record_is_one_clear_line(tmp_path: Path) -> None:
    from limen.bio.finger import iso
    from limen.bio.finger.extract import extract_file

    db = shared("fvc2002", "DB1_B")
    data = tmp_path / "data"
    records = []
    for i in (1, 2, 3):                                     # as another system would export them
        path = tmp_path / f"ada_{i}.fmr"
        path.write_bytes(iso.encode(extract_file(db / f"101_{i}.tif"), finger_position=2))
        records += ["--image", str(path)]
    consent = ("--consent", "--purpose", "door", "--retention-days", "30")
    broken = tmp_path / "broken.fmr"
    broken.write_bytes((tmp_path / "ada_1.fmr").read_bytes()[:40])   # cut short
    refused = limen(data, "finger", "enroll", "Ada", *consent, "--image", str(broken), *records[2:])
    assert refused.returncode == 1 and "ISO/IEC 19794-2" in refused.stderr and "Traceback" not in refused.stderr
    assert json.loads(limen(data, "--json", "finger", "list").stdout) == []          # nothing enrolled
    enrolled = limen(data, "--json", "finger", "enroll", "Ada", *consent, *records)
    assert enrolled.returncode == 0, enrolled.stderr
    assert json.loads(enrolled.stdout)["impressions"] == 3
    same = json.loads(limen(data, "--json", "finger", "verify", "Ada", "--image", str(db / "101_6.tif")).stdout)
    other = json.loads(limen(data, "--json", "finger", "verify", "Ada", "--image", str(db / "107_1.tif")).stdout)
    assert same["matched"] is True and other["matched"] is False


def test_lab_finger_protected_prints_each_protected_code(tmp_path: Path) -> None:
    db = shared("fvc2002", "DB1_B")
    folder = tmp_path / "DB1_B"
    folder.mkdir()
    for f in (101, 102, 103):
        for i in (1, 2, 3):
            (folder / f"{f}_{i}.tif").symlink_to(db / f"{f}_{i}.tif")
    out = limen(tmp_path / "d", "lab", "finger", str(folder), "--protected", "--out", str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr
    # the user sees the protected cylinder code's figures, not only the JSON file (it was missing from the text)
    line = next(x for x in out.stdout.splitlines() if "cylinder code" in x)
    assert "→ protected" in line and "D↔sys" in line and "inversion:" in line
    saved = json.loads((tmp_path / "out" / "finger-protection.json").read_text())
    assert saved["spectral_code"][0]["cylinder_code"]["eer_protected_mean"] >= 0
