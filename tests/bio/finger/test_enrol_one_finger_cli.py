"""`limen enrol … --finger` as the review typed it: impressions of three fingers, the same image twice, a finger
position enrolled again — refused in one line, nothing stored; `--replace` replaces."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cli import limen
from tests.conftest import shared

CONSENT = ("--consent", "--purpose", "door", "--retention-days", "30")


def _fingers(db: Path, *names: str) -> list[str]:
    return [a for n in names for a in ("--finger", str(db / f"{n}.tif"))]


def test_enrol_refuses_three_fingers_and_a_repeat_and_replaces_only_when_asked(tmp_path: Path) -> None:
    db = shared("fvc2002", "DB1_B")
    data = tmp_path / "data"
    mixed = limen(data, "enrol", "Gus", *CONSENT, *_fingers(db, "107_1", "108_1", "109_1"))
    assert mixed.returncode == 1 and "do not match one another" in mixed.stderr, mixed.stderr
    twice = limen(data, "enrol", "Gus", *CONSENT, *_fingers(db, "107_1", "107_2", "107_1"))
    assert twice.returncode == 1 and "same impression twice" in twice.stderr, twice.stderr
    assert not list((data / "fingerprints").glob("*.fmr"))               # nothing stored by either
    first = limen(data, "--json", "enrol", "Gus", *CONSENT, *_fingers(db, "107_1", "107_2", "107_3"))
    assert first.returncode == 0, first.stderr
    again = limen(data, "enrol", "Gus", *CONSENT, *_fingers(db, "108_1", "108_2", "108_3"))
    assert again.returncode == 1 and "already has" in again.stderr and "--replace" in again.stderr
    assert json.loads(limen(data, "--json", "finger", "verify", "Gus", "--image",
                            str(db / "107_5.tif")).stdout)["matched"] is True     # the first finger is kept
    replaced = limen(data, "--json", "finger", "enrol", "Gus", *CONSENT[:5], "--replace",
                     *[a.replace("--finger", "--image") for a in _fingers(db, "108_1", "108_2", "108_3")])
    assert replaced.returncode == 0, replaced.stderr
    assert json.loads(limen(data, "--json", "finger", "verify", "Gus", "--image",
                            str(db / "108_5.tif")).stdout)["matched"] is True
