"""Audit records hold ids, never people's names (the link forwards them to the cloud); `limen audit tail` and
the console resolve ids to names when they display them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from limen import thresholds

from .test_access_cli import MAX_PIN, OWNER_PIN, limen


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thresholds, "PIN_ARGON2_MEMORY_KIB", 64)
    monkeypatch.setattr(thresholds, "PIN_ARGON2_TIME_COST", 1)


def test_user_records_carry_ids_and_the_console_shows_names(tmp_path: Path) -> None:
    d = tmp_path / "data"
    assert limen(d, "users", "add", "Olga", "--permission", "owner", new_pin=OWNER_PIN).exit_code == 0
    added = limen(d, "--json", "users", "add", "Maximilian", "--as", "Olga", new_pin=MAX_PIN)
    assert added.exit_code == 0, added.output
    max_id = json.loads(added.output)["id"]
    renamed = limen(d, "users", "modify", "Maximilian", "--name", "Bartholomew", "--as", "Olga")
    assert renamed.exit_code == 0, renamed.output

    trail = json.loads(limen(d, "--json", "audit", "tail", "-n", "50").stdout)
    user_records = [r for r in trail if r["kind"] == "user_change"]
    assert {r["reason"] for r in user_records} >= {"user added", "user modified"}
    text = json.dumps(trail)
    for name in ("Olga", "Maximilian", "Bartholomew"):
        assert name not in text, name  # neither in details nor anywhere else of a record
    added_rec = next(r for r in user_records if r["reason"] == "user added" and r["subject"] == max_id)
    assert "name" not in added_rec["data"] and added_rec["data"]["permission"] == "member"
    modified = next(r for r in user_records if r["reason"] == "user modified")
    assert modified["data"]["renamed"] is True and "name" not in modified["data"]["changes"]

    shown = limen(d, "audit", "tail", "-n", "50")
    assert shown.exit_code == 0, shown.output
    line = next(ln for ln in shown.stdout.splitlines() if "user added" in ln and max_id[:8] in ln)
    assert "subject=Bartholomew" in line and "actor=Olga" in line  # resolved now, from the access store
