"""What a newcomer hit in the CLI (issue 18): unknown names, glued timings, the --as prompt, retention wording."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from tests.cli.test_cli import limen


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
