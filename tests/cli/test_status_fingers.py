"""`limen status` names the enrolled fingers an older or unknown extractor made (an imported record, or one of
Limen's from before the bifurcation trace fix) and says how to re-enrol them — from the markers beside the
sealed files, without unsealing any."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

from limen import people
from limen.bio.finger import enrolment, versions
from limen.bio.finger.extract import extract_file
from limen.bio.finger.references import open_references, references_folder
from limen.config import Settings
from limen.runtime import open_runtime
from tests.cli.test_cli import limen
from tests.conftest import shared


def test_status_advises_re_enrolling_fingers_an_unknown_extractor_made(settings: Settings) -> None:
    fvc = shared("fvc2002", "DB1_B")
    current = [extract_file(fvc / f"101_{i}.tif") for i in (1, 2, 3)]
    imported = [dataclasses.replace(extract_file(fvc / f"102_{i}.tif"), extractor=None) for i in (1, 2, 3)]
    rt = open_runtime(settings)
    try:
        refs = open_references(rt.conn, settings.data_dir)
        at = datetime.now(UTC)
        enrolment.enrol(rt.conn, refs, rt.audit, "Ada", current, people.Consent("door", 365), "owner", at, finger=2)
        bob = enrolment.enrol(rt.conn, refs, rt.audit, "Bob", imported, people.Consent("door", 365), "owner", at,
                              finger=7).user_id
    finally:
        rt.close()

    out = limen(settings.data_dir, "--json", "status")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["fingers"] == {"outdated": [
        {"user_id": bob, "name": "Bob", "position": 7, "extractor": None}]}
    text = limen(settings.data_dir, "status").stdout
    advice = [line for line in text.splitlines() if "re-enrol for better accuracy" in line]
    assert len(advice) == 1 and "Bob --position 7" in advice[0] and "Ada" not in advice[0]

    versions.write_marker(references_folder(settings.data_dir) / f"{bob}.7.fmr", versions.EXTRACTOR_VERSION)
    assert "re-enrol" not in limen(settings.data_dir, "status").stdout
