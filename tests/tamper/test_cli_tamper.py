"""`limen tamper simulate|status|clear|bind` and `limen status`, in-process through Typer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from limen import thresholds
from limen.access.model import PermissionLevel
from limen.access.store import BOOTSTRAP_ACTOR, AccessStore
from limen.audit.event import MemoryAuditSink
from limen.config import Settings
from limen.db import open_db
from limen.tamper import is_locked_down
from limen.vault import open_template_store

from .conftest import T0, enrol

PIN = "482913"


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thresholds, "PIN_ARGON2_MEMORY_KIB", 64)
    monkeypatch.setattr(thresholds, "PIN_ARGON2_TIME_COST", 1)


def limen(data_dir: Path, *args: str, pin: str | None = PIN, stdin: str | None = None) -> Result:
    from limen.cli import app
    from limen.cli.common import STATE

    STATE._settings = None
    env = {"LIMEN_DATA_DIR": str(data_dir), "LIMEN_ACTOR_PIN": pin}
    return CliRunner().invoke(app, ["--data-dir", str(data_dir), *args], env=env, input=stdin)


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def enrolled(settings: Settings) -> Settings:
    store = open_template_store(settings)
    enrol(store)
    store.close()
    conn = open_db(settings.db_path)
    access = AccessStore(conn, MemoryAuditSink())
    owner = access.add_user("alice", BOOTSTRAP_ACTOR, T0, pin=PIN, permission=PermissionLevel.OWNER)
    access.add_user("bob", owner.user_id, T0, pin="975312", permission=PermissionLevel.ADMINISTRATOR)
    conn.close()
    return settings


def test_simulate_asks_first(enrolled: Settings) -> None:
    result = limen(enrolled.data_dir, "tamper", "simulate", "case", stdin="n\n")
    assert result.exit_code != 0
    assert not is_locked_down(open_db(enrolled.db_path))


def test_simulate_then_status_then_clear(enrolled: Settings) -> None:
    d = enrolled.data_dir
    report = as_json(limen(d, "--json", "tamper", "simulate", "escutcheon", "--yes"))
    assert report["complete"] and report["erased"] and report["locked_down"] and report["source"] == "escutcheon"
    status = as_json(limen(d, "--json", "tamper", "status"))
    assert status["lockdown"]["active"] and status["incidents"][0]["id"] == report["incident"]
    overall = as_json(limen(d, "status", "--json", "--verify"))
    assert overall["vault"]["state"] == "erased" and overall["lockdown"]["active"]
    assert overall["access"]["policy_lockdown"] is True
    assert overall["audit"]["verified"]["ok"] and overall["alarms"]["recent"][0]["rule"] == "tamper"
    human = limen(d, "status")
    assert human.exit_code == 0 and "ACTIVE" in human.stdout

    wrong = limen(d, "tamper", "clear", "--as", "alice", pin="000000")
    assert wrong.exit_code != 0 and is_locked_down(open_db(enrolled.db_path))
    admin = limen(d, "tamper", "clear", "--as", "bob", pin="975312")
    assert admin.exit_code != 0 and is_locked_down(open_db(enrolled.db_path))

    cleared = as_json(limen(d, "--json", "tamper", "clear", "--as", "alice", "--sensor", "camera=sim:cam-1"))
    assert cleared["incident"] == report["incident"] and cleared["vault"] == "active"
    assert cleared["sensors"] == {"camera": "sim:cam-1"}
    assert not is_locked_down(open_db(enrolled.db_path))
    after = as_json(limen(d, "status", "--json"))
    assert after["vault"]["state"] == "active" and after["vault"]["templates"] == 0  # users enrol again
    assert not after["lockdown"]["active"] and after["lockdown"]["cleared_by"]


def test_simulate_rejects_unknown_source(enrolled: Settings) -> None:
    result = limen(enrolled.data_dir, "tamper", "simulate", "laser", "--yes")
    assert result.exit_code != 0
    assert not is_locked_down(open_db(enrolled.db_path))


def test_bind_needs_the_owner_and_a_sensor(enrolled: Settings) -> None:
    d = enrolled.data_dir
    assert limen(d, "tamper", "bind", "--as", "alice").exit_code != 0
    assert limen(d, "tamper", "bind", "--as", "alice", "--sensor", "camera=x", pin="111111").exit_code != 0
    bound = as_json(limen(d, "--json", "tamper", "bind", "--as", "alice", "--sensor", "fingerprint=R503|7"))
    assert bound == {"fingerprint": "R503|7"}
    status = as_json(limen(d, "--json", "tamper", "status"))
    assert [s["name"] for s in status["sensors"]] == ["fingerprint"]


def test_status_on_a_fresh_lock(settings: Settings) -> None:
    data = as_json(limen(settings.data_dir, "status", "--json"))
    assert data["vault"]["state"] == "active" and not data["lockdown"]["active"]
    assert data["audit"]["records"] == 0 and data["tamper"]["pending"] is None
