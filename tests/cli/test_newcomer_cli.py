"""What a newcomer hit in the CLI (issue 18): unknown names, glued timings, the --as prompt, retention wording."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from tests.cli.test_cli import _limen_env, limen


def _photo(tmp_path: Path) -> Path:
    path = tmp_path / "any.jpg"
    ridges = (127 + 100 * np.sin(np.arange(300) / 3.0)).astype(np.uint8)  # stripes: an image, not a blank
    Image.fromarray(np.tile(ridges, (300, 1))).convert("RGB").save(path)
    return path


def test_verify_an_unknown_name_says_no_such_user(tmp_path: Path) -> None:
    out = limen(tmp_path / "d", "verify", "Nobody", "--face", str(_photo(tmp_path)))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "no user 'Nobody'" in out.stderr and "insufficient" not in out.stderr + out.stdout
    as_json = limen(tmp_path / "d", "--json", "verify", "Nobody", "--face", str(_photo(tmp_path)))
    assert as_json.returncode == 1
    error = json.loads(as_json.stdout)
    assert error["error"] == "not_found" and "Nobody" in error["reason"]
    by_finger = limen(tmp_path / "d", "verify", "Nobody", "--finger", str(_photo(tmp_path)))
    assert by_finger.returncode == 1 and "no user 'Nobody'" in by_finger.stderr, by_finger.stderr


def test_as_given_without_a_pin_asks_for_the_pin_not_for_as(tmp_path: Path) -> None:
    data = tmp_path / "data"
    owner = _limen_env(data, {"LIMEN_NEW_PIN": "482915"}, "users", "add", "Olga", "--permission", "owner", "--pin")
    assert owner.returncode == 0, owner.stderr
    no_pin = _limen_env(data, {}, "users", "remove", "Olga", "--as", "Olga")  # stdin is not a terminal
    assert no_pin.returncode == 1
    assert "give --as USER" not in no_pin.stderr and "--as-pin" in no_pin.stderr and "terminal" in no_pin.stderr
    anonymous = _limen_env(data, {}, "users", "remove", "Olga")
    assert anonymous.returncode == 1 and "--as USER" in anonymous.stderr
    listed = _limen_env(data, {}, "users", "list")
    assert "retention - d" not in listed.stdout and "no retention limit" in listed.stdout, listed.stdout


def test_a_refusal_keeps_its_timing_apart_from_the_detail() -> None:
    from limen.cli.face import describe
    from limen.decision import Decision, Outcome, Reason

    refused = Decision(Outcome.REJECT, Reason.NO_MATCH, user_name="Max", score=0.61, threshold=0.45,
                       timings={"embed": 1207.0}, detail="no face enrolled: the owner adds one")
    line = describe(refused)
    assert "adds one in 1207 ms" not in line and "1207 ms" in line
    assert line.endswith("– no face enrolled: the owner adds one"), line
