"""`limen tamper status` words the lockdown by its cause, as `limen status` does (012e50f): an owner's lockdown is
lifted with `limen access lockdown off`, a tamper lockdown only by `limen tamper clear`."""

from __future__ import annotations

from pathlib import Path

from .test_access_cli import MAX_PIN, OWNER_PIN, limen


def test_tamper_status_names_the_lockdowns_cause_and_what_lifts_it(tmp_path: Path) -> None:
    d = tmp_path / "data"
    assert limen(d, "users", "add", "Olga", new_pin=OWNER_PIN).exit_code == 0
    assert limen(d, "users", "add", "Max", "--as", "Olga", new_pin=MAX_PIN).exit_code == 0
    assert "lockdown: off" in limen(d, "tamper", "status").output

    assert limen(d, "access", "lockdown", "on", "--as", "Olga").exit_code == 0
    owners = limen(d, "tamper", "status").output
    assert "ACTIVE (owner lockdown)" in owners and "limen access lockdown off" in owners
    assert "tamper clear" not in owners and "nothing erased" in owners
    assert limen(d, "access", "lockdown", "off", "--as", "Olga").exit_code == 0

    assert limen(d, "tamper", "simulate", "case", "--yes").exit_code == 0
    tampers = limen(d, "tamper", "status").output
    assert "ACTIVE (tamper lockdown)" in tampers and "limen tamper clear" in tampers
    assert "lockdown off" not in tampers
