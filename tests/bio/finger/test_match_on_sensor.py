"""Match on sensor (`finger_matching = "sensor"`) through the lock, with the simulated module on a pty:
enrol on a page of the module's library, a door attempt searches it, erasing a person deletes their page."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from limen.bio.finger.protocol import SensorRefused
from limen.bio.finger.sensor import R30xSensor, SensorPages
from limen.bio.finger.simulator import SimulatedR30x
from tests.cli.test_access_cli import OWNER_PIN, subprocess_limen

ON_SENSOR = {"LIMEN_FINGER_MATCHING": "sensor"}
AS_OLGA = ("--as", "Olga")


def _limen(data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess_limen(data, "--json", *args, **ON_SENSOR, LIMEN_ACTOR_PIN=OWNER_PIN, **env)


def _enrol(data: Path, module: SimulatedR30x, name: str, *prints: Path) -> dict[str, object]:
    for p in prints:
        module.present(p)
    out = _limen(data, "enrol", name, "--sensor", module.port, "--consent", "--purpose", "door",
                 "--retention-days", "30", *AS_OLGA)
    assert out.returncode == 0, out.stdout + out.stderr
    return dict(json.loads(out.stdout))


def _door(data: Path, module: SimulatedR30x, probe: Path, *args: str, **env: str) -> tuple[int, dict[str, object]]:
    module.present(probe)
    out = _limen(data, *args, "--sensor", module.port, **env)
    assert out.stdout, out.stderr
    return out.returncode, dict(json.loads(out.stdout))


def _audit(data: Path) -> list[dict[str, object]]:
    return list(json.loads(_limen(data, "audit", "tail", "-n", "100").stdout))


def test_enrol_search_and_erase_on_the_sensor(tmp_path: Path, fvc_db1: Path) -> None:
    data = tmp_path / "data"
    with SimulatedR30x() as module:
        assert _limen(data, "users", "add", "Olga", LIMEN_NEW_PIN=OWNER_PIN).returncode == 0
        assert _limen(data, "finger", "pair", module.port, "--current-password", "00000000", *AS_OLGA).returncode == 0
        ada = _enrol(data, module, "Ada", fvc_db1 / "101_1.tif", fvc_db1 / "101_2.tif")
        bo = _enrol(data, module, "Bo", fvc_db1 / "102_1.tif", fvc_db1 / "102_2.tif")
        assert (ada["page"], bo["page"]) == (0, 1) and module.pages() == [0, 1]
        assert not list(data.glob("fingerprints/*"))                   # nothing biometric left the module
        pages_file = (data / "finger-sensor-pages.json").read_text()
        assert str(ada["user_id"]) not in pages_file and "Ada" not in pages_file    # sealed under the vault
        assert _limen(data, "credentials", "add", "Ada", *AS_OLGA, LIMEN_NEW_PIN="713502").returncode == 0

        # the right person: recognised by the module; MEDIUM (no liveness) so finger + PIN opens
        rc, first = _door(data, module, fvc_db1 / "101_3.tif", "identify")
        assert rc == 3 and first["reason"] == "second_factor_missing" and first["user_name"] == "Ada", first
        rc, both = _door(data, module, fvc_db1 / "101_4.tif", "verify", "Ada", "--pin", LIMEN_PIN="713502")
        assert rc == 0 and both["reason"] == "granted" and both["user_name"] == "Ada", both
        # another finger, and Bo's finger claimed as Ada's: refused
        rc, other = _door(data, module, fvc_db1 / "105_1.tif", "identify")
        assert rc == 3 and other["reason"] == "no_match", other
        rc, claimed = _door(data, module, fvc_db1 / "102_3.tif", "verify", "Ada")
        assert rc == 3 and claimed["reason"] == "no_match", claimed
        attempts = [r for r in _audit(data) if r["kind"] == "unlock_attempt"]
        assert [(r["data"]["method"], r["outcome"]) for r in attempts] == [  # finger+PIN: two records, as on host
            ("fingerprint", "reject"), ("fingerprint", "reject"), ("fingerprint", "accept"),
            ("fingerprint", "reject"), ("fingerprint", "reject")]

        # erasing Ada deletes her page on the module: her finger is found no more
        gone = _limen(data, "users", "remove", "Ada", *AS_OLGA)
        assert gone.returncode == 0, gone.stdout + gone.stderr
        assert json.loads(gone.stdout)["sensor_pages_erased"] == [0] and module.pages() == [1]
        rc, after = _door(data, module, fvc_db1 / "101_8.tif", "identify")
        assert rc == 3 and after["reason"] == "no_match", after

        # a module that does not confirm the delete: reported (exit 1, audited), the page is still there
        module.refuse_delete = True
        kept = _limen(data, "users", "remove", "Bo", *AS_OLGA)
        assert kept.returncode == 1 and "page(s) [1]" in kept.stderr, kept.stdout + kept.stderr
        assert json.loads(kept.stdout)["sensor_pages_failed"] == [1] and module.pages() == [1]
        (failed,) = [r for r in _audit(data) if r["reason"] == "fingerprint sensor pages erased"
                     and r["outcome"] == "failed"]
        assert failed["data"]["pages_failed"] == [1]
        rc, orphan = _door(data, module, fvc_db1 / "102_4.tif", "identify")    # Bo's page: nobody's any more
        assert rc == 3 and orphan["reason"] == "no_match", orphan


def test_a_swapped_module_is_refused_as_tamper(tmp_path: Path, fvc_db1: Path) -> None:
    data = tmp_path / "data"
    with SimulatedR30x() as module:
        assert _limen(data, "users", "add", "Olga", LIMEN_NEW_PIN=OWNER_PIN).returncode == 0
        assert _limen(data, "finger", "pair", module.port, "--current-password", "00000000", *AS_OLGA).returncode == 0
        _enrol(data, module, "Ada", fvc_db1 / "101_1.tif", fvc_db1 / "101_2.tif")
        module.swap_module()                          # another module (factory password) on the same port
        module.present(fvc_db1 / "101_3.tif")
        out = _limen(data, "identify", "--sensor", module.port)
        assert out.returncode == 1 and "not the paired one" in out.stdout + out.stderr, out.stdout + out.stderr
        alarms = [r for r in _audit(data) if r["kind"] == "alarm"]
        assert alarms and alarms[-1]["subject"] == "fingerprint-sensor", alarms
        assert not [r for r in _audit(data) if r["kind"] == "unlock_attempt"]   # no attempt was judged


def test_a_page_whose_consent_ran_out_is_nobodys(tmp_path: Path, fvc_db1: Path) -> None:
    data = tmp_path / "data"
    with SimulatedR30x() as module:
        assert _limen(data, "users", "add", "Olga", LIMEN_NEW_PIN=OWNER_PIN).returncode == 0
        assert _limen(data, "finger", "pair", module.port, "--current-password", "00000000", *AS_OLGA).returncode == 0
        _enrol(data, module, "Ada", fvc_db1 / "101_1.tif", fvc_db1 / "101_2.tif")
        rc, before = _door(data, module, fvc_db1 / "101_3.tif", "identify")
        assert rc == 3 and before["reason"] == "second_factor_missing", before
        with sqlite3.connect(data / "limen.db") as db:             # the consent was given long ago
            db.execute("UPDATE consents SET given_at = '2020-01-01T00:00:00+00:00'")
        rc, after = _door(data, module, fvc_db1 / "101_4.tif", "identify")
        assert rc == 3 and after["reason"] == "no_match", after
        assert module.pages() == []                  # retention (at the command's start) deleted the page too


def test_images_and_face_fusion_are_refused_when_matching_on_the_sensor(tmp_path: Path, fvc_db1: Path) -> None:
    data = tmp_path / "data"
    out = _limen(data, "enrol", "Ada", "--finger", str(fvc_db1 / "101_1.tif"), "--finger",
                 str(fvc_db1 / "101_2.tif"), "--consent", "--purpose", "door", "--retention-days", "30")
    assert out.returncode == 1 and "--sensor" in out.stdout + out.stderr and "Traceback" not in out.stderr
    probe = _limen(data, "identify", "--finger", str(fvc_db1 / "101_3.tif"))
    assert probe.returncode == 1 and "paired module" in probe.stdout + probe.stderr


def test_delete_char_on_the_driver_and_the_simulator(fvc_db1: Path) -> None:
    with SimulatedR30x([fvc_db1 / "101_1.tif", fvc_db1 / "101_2.tif", fvc_db1 / "101_3.tif"]) as sim, \
            R30xSensor(sim.port, timeout_s=5.0) as sensor:
        sensor.enroll_on_sensor(page=3, wait_s=1.0)
        assert sim.pages() == [3]
        sim.refuse_delete = True
        with pytest.raises(SensorRefused):
            sensor.delete_on_sensor(3)
        assert sim.pages() == [3]
        sim.refuse_delete = False
        sensor.delete_on_sensor(3)
        assert sim.pages() == []
        assert sensor.search_on_sensor(wait_s=1.0) is None          # 101_3: the library is empty


def test_the_page_map_names_people_only_for_its_own_module() -> None:
    pages = SensorPages("r30x:a").with_page(0, "u1").with_page(2, "u2")
    assert pages.owner_of(2, "r30x:a") == "u2" and pages.owner_of(2, "r30x:b") is None
    assert pages.owner_of(1, "r30x:a") is None
    assert pages.free_page(4) == 1 and pages.of("u2") == [2] and pages.without(2).of("u2") == []
    with pytest.raises(ValueError, match="full"):
        SensorPages("r30x:a", {0: "u1", 1: "u1"}).free_page(2)
