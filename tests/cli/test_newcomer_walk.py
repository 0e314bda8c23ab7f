"""What a newcomer homeowner read wrong in the CLI (walkthrough, README then docs): day masks, "1 keys", the
`--as` help of commands that pair nothing."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_access_cli import OWNER_PIN, limen


def test_schedules_name_their_days_as_they_are_typed(tmp_path: Path) -> None:
    d = tmp_path / "lock"
    assert limen(d, "users", "add", "Olga", new_pin=OWNER_PIN).exit_code == 0
    assert limen(d, "users", "add", "Carla", "--as", "Olga", new_pin="482916").exit_code == 0
    made = limen(d, "--json", "schedules", "week-day", "Carla", "--as", "Olga", "--days", "tue,fri",
                 "--start", "09:00", "--end", "12:00")
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["days"] == "tue,fri"
    listed = limen(d, "schedules", "list", "Carla")
    assert "days=tue,fri start=09:00 end=12:00" in listed.output and "days=18" not in listed.output
    assert json.loads(limen(d, "--json", "schedules", "list").output)[0]["days"] == "tue,fri"


def test_status_counts_one_backup_key_in_the_singular(tmp_path: Path) -> None:
    d = tmp_path / "lock"
    assert limen(d, "users", "add", "Olga", new_pin=OWNER_PIN).exit_code == 0
    assert limen(d, "link", "recovery-key", "--as", "Olga").exit_code == 0
    assert limen(d, "link", "backup").exit_code == 0
    shown = limen(d, "status").output
    assert "1 made, to 1 key;" in shown and "1 keys" not in shown


def test_as_says_who_acts_not_who_pairs(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from limen.cli import app

    text = CliRunner().invoke(app, ["link", "recovery-key", "--help"], env={"COLUMNS": "200"}).output
    assert "The owner doing this" in text and "pairing the device" not in text
