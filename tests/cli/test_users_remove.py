"""`limen users remove --as NAME` takes the actor's PIN as `users add`, `access set` and `link` do: from a
terminal prompt, `LIMEN_ACTOR_PIN`, or one line on stdin (review finding: it demanded `--as-pin` whenever stdin
was not a terminal)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from limen import thresholds
from tests.cli.test_access_cli import MAX_PIN, OWNER_PIN, limen
from tests.cli.test_access_cli import cheap_argon2 as cheap_argon2  # noqa: F401 - the autouse fixture applies here

REAL_ARGON2 = {"PIN_ARGON2_MEMORY_KIB": thresholds.PIN_ARGON2_MEMORY_KIB,
               "PIN_ARGON2_TIME_COST": thresholds.PIN_ARGON2_TIME_COST}  # a subprocess hashes with these


def _with_stdin(d: Path, stdin: str, *args: str) -> Result:
    """`limen *args` with `stdin` piped in and no LIMEN_ACTOR_PIN (CliRunner's stdin is not a terminal)."""
    from limen.cli import app
    from limen.cli.common import STATE

    STATE._settings = None
    return CliRunner().invoke(app, list(args), input=stdin,
                              env={"LIMEN_DATA_DIR": str(d), "LIMEN_ACTOR_PIN": None, "LIMEN_NEW_PIN": None})


def _people(d: Path) -> list[str]:
    return sorted(r["name"] for r in json.loads(limen(d, "--json", "users", "list").output))


def _lock_with_max(d: Path) -> None:
    assert limen(d, "users", "add", "Olga", new_pin=OWNER_PIN).exit_code == 0
    added = _with_stdin(d, f"{OWNER_PIN}\n{MAX_PIN}\n", "users", "add", "Max", "--as", "Olga")  # as users add does
    assert added.exit_code == 0, added.output
    assert _people(d) == ["Max", "Olga"]


def test_remove_reads_the_actors_pin_from_stdin(tmp_path: Path) -> None:
    d = tmp_path / "data"
    _lock_with_max(d)
    wrong = _with_stdin(d, "999111\n", "users", "remove", "Max", "--as", "Olga")
    assert wrong.exit_code != 0 and _people(d) == ["Max", "Olga"]
    empty = _with_stdin(d, "", "users", "remove", "Max", "--as", "Olga")
    assert empty.exit_code != 0 and "pipe it on stdin" in str(empty.exception) + empty.output
    assert _people(d) == ["Max", "Olga"]
    nobody = _with_stdin(d, f"{OWNER_PIN}\n", "users", "remove", "Max")  # no --as: the runtime asks for one
    assert nobody.exit_code != 0 and "--as" in str(nobody.exception) + nobody.output
    removed = _with_stdin(d, f"{OWNER_PIN}\n", "--json", "users", "remove", "Max", "--as", "Olga")
    assert removed.exit_code == 0, removed.output
    assert json.loads(removed.output)["name"] == "Max" and _people(d) == ["Olga"]


def test_remove_from_a_script_with_the_pin_piped_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real entry point with a pipe for stdin, as a shell script runs it."""
    for name, value in REAL_ARGON2.items():
        monkeypatch.setattr(thresholds, name, value)
    d = tmp_path / "data"
    _lock_with_max(d)
    env = {k: v for k, v in os.environ.items() if k not in ("LIMEN_ACTOR_PIN", "LIMEN_NEW_PIN")}
    done = subprocess.run([sys.executable, "-m", "limen", "users", "remove", "Max", "--as", "Olga"],
                          input=f"{OWNER_PIN}\n", capture_output=True, text=True, timeout=120, check=False,
                          env={**env, "LIMEN_DATA_DIR": str(d)})
    assert done.returncode == 0, done.stderr
    assert "removed Max" in done.stdout and _people(d) == ["Olga"]
