"""`limen finger verify --sensor` opens the paired module as the door does: a swapped module is a tamper alarm on
the audit trail as well as one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from limen.bio.finger.simulator import SimulatedR30x
from tests.cli.test_cli import limen


def _alarms(data: Path) -> list[dict[str, object]]:
    tail = limen(data, "--json", "audit", "tail", "-n", "50")
    assert tail.returncode == 0, tail.stderr
    return [r for r in json.loads(tail.stdout) if r["kind"] == "alarm"]


def test_a_swapped_module_under_finger_verify_raises_a_tamper_alarm(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with SimulatedR30x() as module:
        paired = limen(data, "finger", "pair", module.port, "--current-password", "00000000")
        assert paired.returncode == 0, paired.stderr
        password = f"{module.password:08x}"
        module.present(np.full((300, 300), 255, np.uint8))     # the paired module, a blank capture: no alarm
        blank = limen(data, "finger", "verify", "Ada", "--sensor", module.port)
        assert blank.returncode == 1 and "blank" in blank.stderr
        assert _alarms(data) == []
        module.swap_module()
        swapped = limen(data, "finger", "verify", "Ada", "--sensor", module.port)
        assert swapped.returncode == 1 and "not the paired one" in swapped.stderr
        assert "Traceback" not in swapped.stderr
    (alarm,) = _alarms(data)
    assert alarm["subject"] == "fingerprint-sensor" and alarm["reason"] == "tamper", alarm
    assert "not the paired one" in json.dumps(alarm) and password not in json.dumps(alarm).lower()
