"""`limen users add/modify/disable`, `credentials`, `schedules`, `codes`, `access`, `unlock` as typed."""

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

OWNER_PIN, MAX_PIN = "246813", "135792"


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thresholds, "PIN_ARGON2_MEMORY_KIB", 64)
    monkeypatch.setattr(thresholds, "PIN_ARGON2_TIME_COST", 1)


def limen(data_dir: Path, *args: str, actor_pin: str | None = OWNER_PIN,
          new_pin: str | None = None) -> Result:
    """Run `limen` in-process (the real parsing, prompts replaced by the documented env variables)."""
    from limen.cli import app
    from limen.cli.common import STATE

    STATE._settings = None
    env = {"LIMEN_DATA_DIR": str(data_dir), "LIMEN_ACTOR_PIN": actor_pin, "LIMEN_NEW_PIN": new_pin}
    result = CliRunner().invoke(app, list(args), env=env)
    result.stderr_text = str(result.exception) if result.exception and not isinstance(
        result.exception, SystemExit) else ""
    return result


def subprocess_limen(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("LIMEN_ACTOR_PIN", "LIMEN_NEW_PIN")}
    environ |= {"LIMEN_DATA_DIR": str(data_dir), "COLUMNS": "120", **env}
    return subprocess.run([sys.executable, "-m", "limen", *args], capture_output=True, text=True, env=environ,
                          stdin=subprocess.DEVNULL, timeout=120, check=False)


def test_access_cli_end_to_end(tmp_path: Path) -> None:
    d = tmp_path / "data"
    # the first user is the owner with the PIN they typed; no actor needed
    first = limen(d, "--json", "users", "add", "Olga", "--permission", "member", new_pin=OWNER_PIN)
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["permission"] == "owner"
    added = limen(d, "users", "add", "Max", "--as", "Olga", new_pin=MAX_PIN)
    assert added.exit_code == 0, added.output

    opened = limen(d, "--json", "unlock", "--pin", "90" + MAX_PIN + "1")
    assert opened.exit_code == 0 and json.loads(opened.output)["user_name"] == "Max"
    refused = limen(d, "unlock", "--pin", "999111")
    assert refused.exit_code == 3 and "REFUSED" in refused.output

    issued = limen(d, "--json", "codes", "issue", "--as", "Olga")
    code = json.loads(issued.output)["code"]
    assert limen(d, "unlock", "--code", f"*{code}#").exit_code == 0
    replay = limen(d, "--json", "unlock", "--code", code)
    assert replay.exit_code == 3 and json.loads(replay.output)["reason"] == "code_replayed"

    assert limen(d, "users", "disable", "Max", "--as", "Olga").exit_code == 0
    disabled = limen(d, "--json", "unlock", "--pin", MAX_PIN)
    assert json.loads(disabled.output)["reason"] == "disabled_user"

    status = json.loads(limen(d, "--json", "access", "status").output)
    assert status["users"] == 2 and status["mode"] == "normal"


def test_bad_input_is_a_clear_error_and_changes_nothing(tmp_path: Path) -> None:
    d = tmp_path / "data"
    assert limen(d, "users", "add", "Olga", new_pin=OWNER_PIN).exit_code == 0
    before = limen(d, "--json", "users", "show").output
    cases = [
        (["schedules", "week-day", "Olga", "--as", "Olga", "--days", "mon,funday", "--start", "09:00",
          "--end", "17:00"], "funday"),
        (["schedules", "week-day", "Olga", "--as", "Olga", "--days", "mon", "--start", "17:00", "--end", "09:00"],
         "after start"),
        (["users", "add", "Ev\x07e", "--as", "Olga", "--no-pin"], "control"),
        (["users", "add", "Eve", "--as", "Olga", "--index", "70000", "--no-pin"], "index"),
        (["schedules", "year-day", "Olga", "--as", "Olga", "--start", "2026-05-02", "--end", "2026-05-01"],
         "after start"),
        (["codes", "issue", "--as", "Olga", "--kind", "limited", "--hours", "0"], "hours"),
    ]
    for args, words in cases:
        out = limen(d, *args)
        assert out.exit_code != 0 and words in out.stderr_text, (args, out.stderr_text)
    long_pin = limen(d, "users", "add", "Eve", "--as", "Olga", new_pin="1" * 300)
    assert long_pin.exit_code != 0 and "1" * 20 not in long_pin.stderr_text
    assert limen(d, "--json", "users", "show").output == before


def test_errors_print_one_line_from_the_real_command(tmp_path: Path) -> None:
    d = tmp_path / "data"
    out = subprocess_limen(d, "users", "add", "Olga", LIMEN_NEW_PIN="12")
    assert out.returncode == 1 and "pin" in out.stderr and "Traceback" not in out.stderr
    assert len([x for x in out.stderr.splitlines() if x.strip()]) == 1


def test_wrong_actor_pin_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "data"
    assert limen(d, "users", "add", "Olga", new_pin=OWNER_PIN).exit_code == 0
    out = limen(d, "users", "add", "Max", "--as", "Olga", actor_pin="999111", new_pin=MAX_PIN)
    assert out.exit_code != 0 and "wrong PIN" in out.stderr_text
    no_actor = limen(d, "users", "add", "Max", new_pin=MAX_PIN)
    assert no_actor.exit_code != 0 and "--as" in no_actor.stderr_text


def test_link_state_and_revocation_sync_are_wired(tmp_path: Path) -> None:
    d = tmp_path / "data"
    assert limen(d, "users", "add", "Olga", new_pin=OWNER_PIN).exit_code == 0
    off = limen(d, "--json", "access", "link", "offline", "--as", "Olga")
    assert off.exit_code == 0 and json.loads(off.stdout) == {"online": False}
    assert json.loads(limen(d, "--json", "access", "status").stdout)["online"] is False
    for _ in range(thresholds.MECHANICAL_KEY_OFFLINE_LIMIT):  # offline: the key limit applies again
        limen(d, "unlock", "--key")
    assert limen(d, "unlock", "--pin", OWNER_PIN).exit_code == 0  # the owner re-authorises
    issued = json.loads(limen(d, "--json", "codes", "issue", "--as", "Olga", "--kind", "limited").stdout)
    revoked = tmp_path / "revoked.json"
    revoked.write_text(json.dumps([issued["code_id"], "period_quota:1:00099"]))
    synced = limen(d, "--json", "codes", "sync", str(revoked), "--as", "Olga")
    assert synced.exit_code == 0 and json.loads(synced.stdout) == {"added": 2, "listed": 2}
    refused = limen(d, "--json", "unlock", "--code", issued["code"])
    assert refused.exit_code == 3 and json.loads(refused.stdout)["reason"] == "credential_revoked"
    revoked.write_text("{not json")
    assert limen(d, "codes", "sync", str(revoked), "--as", "Olga").exit_code != 0


def test_status_says_what_guards_the_lock_and_warns_about_rgb_faces(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "data"
    plain = limen(d, "status")
    assert plain.exit_code == 0, plain.output
    assert "no tamper sources configured" in plain.stdout and "WARNING" not in plain.stdout
    assert "an RGB face asks for the PIN/code" in plain.stdout
    monkeypatch.setenv("LIMEN_ALLOW_FACE_ALONE_RGB", "true")
    warned = limen(d, "--json", "status")
    data = json.loads(warned.stdout)
    assert data["face_rule"]["face_alone_min"] == "medium" and "allow_face_alone_rgb" in data["face_rule"]["warning"]
    assert "WARNING" in limen(d, "status").stdout


def test_status_warns_when_a_duress_alarm_would_reach_nobody(tmp_path: Path) -> None:
    from limen.cli.status import duress_reaches_nobody
    from limen.config import Settings

    d = tmp_path / "data"
    assert limen(d, "users", "add", "Olga", new_pin=OWNER_PIN).exit_code == 0
    quiet = json.loads(limen(d, "--json", "status").stdout)["access"]
    assert quiet["duress_users"] == 0 and quiet["duress_reaches_nobody"] is False
    assert limen(d, "users", "add", "Dora", "--type", "forced", "--as", "Olga", new_pin=MAX_PIN).exit_code == 0
    status = json.loads(limen(d, "--json", "status").stdout)["access"]
    assert status["duress_users"] == 1 and status["duress_reaches_nobody"] is True
    assert "duress alarm reaches nobody" in limen(d, "status").stdout
    # silent alarms go to signed webhooks and to the cloud: either one is enough; apprise alone is not
    base = Settings(data_dir=d)
    assert duress_reaches_nobody(base.model_copy(update={"alert_urls": ["json://localhost/"]}), 1)
    assert not duress_reaches_nobody(base.model_copy(update={"alert_urls": ["signed+https://sec.example/h"]}), 1)
    assert not duress_reaches_nobody(base.model_copy(update={"link_broker": "cloud.example:8883"}), 1)
    assert not duress_reaches_nobody(base, 0)
    assert duress_reaches_nobody(base.model_copy(update={"alert_urls": ["signed+"]}), 1)   # not a webhook at all
