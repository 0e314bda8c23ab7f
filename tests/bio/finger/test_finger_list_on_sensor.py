"""`limen finger list` names the people enrolled on the module too (match on sensor), with their pages."""

from __future__ import annotations

import json
from pathlib import Path

from limen.bio.finger.simulator import SimulatedR30x
from tests.bio.finger.test_match_on_sensor import AS_OLGA, _enrol, _limen
from tests.cli.test_access_cli import OWNER_PIN


def test_finger_list_shows_the_fingers_on_the_module(tmp_path: Path, fvc_db1: Path) -> None:
    data = tmp_path / "data"
    with SimulatedR30x() as module:
        assert _limen(data, "users", "add", "Olga", LIMEN_NEW_PIN=OWNER_PIN).returncode == 0
        assert _limen(data, "finger", "pair", module.port, "--current-password", "00000000", *AS_OLGA).returncode == 0
        assert json.loads(_limen(data, "finger", "list").stdout) == []
        ada = _enrol(data, module, "Ada", fvc_db1 / "101_1.tif", fvc_db1 / "101_2.tif")
        listed = json.loads(_limen(data, "finger", "list").stdout)
        assert listed == [{"user_id": ada["user_id"], "name": "Ada", "sensor_pages": [0]}], listed
        assert _limen(data, "users", "remove", "Ada", *AS_OLGA).returncode == 0
        assert json.loads(_limen(data, "finger", "list").stdout) == [] and module.pages() == []
