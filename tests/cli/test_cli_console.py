"""The CLI a homeowner meets: JSON errors under --json, one message for an unknown user, names not ids, no
getpass warning without a terminal, and the first owner always creatable after a face-first enrolment."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from limen import people
from limen.access import ensure_user
from limen.config import load_settings
from limen.db import transaction
from limen.runtime import open_runtime

PIN = "604172"


def limen(data_dir: Path, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("LIMEN_ACTOR_PIN", "LIMEN_NEW_PIN")}
    environ |= {"LIMEN_DATA_DIR": str(data_dir), "COLUMNS": "200", **env}
    return subprocess.run([sys.executable, "-m", "limen", *args], capture_output=True, text=True, env=environ,
                          input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL, timeout=120,
                          check=False)


def face_first(data_dir: Path, name: str) -> str:
    rt = open_runtime(load_settings(data_dir))
    try:
        at = datetime.now(UTC)
        with transaction(rt.conn):
            person = people.new_person(rt.conn, name, "cli", at)
        ensure_user(rt.conn, person.id, "cli", at)
        return person.id
    finally:
        rt.close()


def test_json_errors_and_one_unknown_user_message(tmp_path: Path) -> None:
    d = tmp_path / "data"
    assert limen(d, "users", "add", "Olga", LIMEN_NEW_PIN=PIN).returncode == 0
    answers = [limen(d, "--json", "users", "remove", "Nobody", LIMEN_ACTOR_PIN=PIN),
               limen(d, "--json", "users", "modify", "Nobody", "--as", "Olga", "--name", "X", LIMEN_ACTOR_PIN=PIN)]
    reasons = set()
    for r in answers:
        assert r.returncode == 1, (r.stdout, r.stderr)
        body = json.loads(r.stdout)  # the whole of stdout is one JSON object
        assert body["error"] == "not_found", body
        reasons.add(body["reason"])
    assert reasons == {"no user 'Nobody' on this lock (see `limen users list`)"}  # said once, the same way
    usage = limen(d, "--json", "users", "add")
    assert usage.returncode == 2 and json.loads(usage.stdout)["error"] == "usage"


def test_first_owner_after_a_face_first_person_and_names_in_the_list(tmp_path: Path) -> None:
    d = tmp_path / "data"
    face_first(d, "Fay")
    other = tmp_path / "other"
    face_first(other, "Fay")
    made = limen(other, "--json", "users", "add", "Olga", LIMEN_NEW_PIN=PIN)  # no --as: no owner exists yet
    assert made.returncode == 0 and json.loads(made.stdout)["permission"] == "owner", made.stdout + made.stderr
    claimed = limen(d, "--json", "users", "add", "Fay", LIMEN_NEW_PIN=PIN)  # the face-first person, explicitly
    assert claimed.returncode == 0, claimed.stdout + claimed.stderr
    assert json.loads(claimed.stdout)["permission"] == "owner"
    assert limen(d, "users", "add", "Max", LIMEN_NEW_PIN="739164").returncode == 1  # now an owner must act
    added = limen(d, "users", "add", "Max", "--as", "Fay", LIMEN_NEW_PIN="739164", LIMEN_ACTOR_PIN=PIN)
    assert added.returncode == 0, added.stderr
    listing = limen(d, "users", "list").stdout
    max_line = next(line for line in listing.splitlines() if line.startswith("Max"))
    assert "added by Fay" in max_line and not any(len(w) >= 16 and w.isalnum() for w in max_line.split())


def test_no_getpass_warning_without_a_terminal(tmp_path: Path) -> None:
    d = tmp_path / "data"
    r = limen(d, "users", "add", "Olga")
    assert r.returncode == 1 and "LIMEN_NEW_PIN" in r.stdout + r.stderr
    assert "GetPassWarning" not in r.stderr and "Warning" not in r.stderr
    piped = limen(d, "--json", "users", "add", "Olga", stdin=PIN + "\n")
    assert piped.returncode == 0 and "Warning" not in piped.stderr, piped.stderr


def test_one_spelling_enrol_with_the_old_one_still_working(tmp_path: Path) -> None:
    listed = limen(tmp_path, "--help").stdout
    assert re.search(r"\benrol\b", listed) and not re.search(r"\benroll\b", listed)
    assert not re.search(r"\benroll\b", limen(tmp_path, "finger", "--help").stdout)
    assert limen(tmp_path, "enroll", "--help").returncode == 0  # scripts written with the old spelling run
    assert limen(tmp_path, "finger", "enroll", "--help").returncode == 0
