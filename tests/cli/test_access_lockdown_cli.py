"""`limen access lockdown on|off --as OWNER`: the owner starts and lifts an owner's (or the app's) lockdown without
touching the vault; `limen status` and `limen unlock` word a lockdown by its cause; after `limen tamper clear`
the people whose faces were erased show as not enrolled and `limen status` names them (review, blocker)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from limen import people
from limen.audit.event import MemoryAuditSink
from limen.bio.templates import Modality
from limen.config import load_settings
from limen.db import open_db
from limen.vault import open_template_store

from .test_access_cli import MAX_PIN, OWNER_PIN, limen

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def household(tmp_path: Path) -> Path:
    """Olga (owner), Max (member, PIN) and Dora (a face in the vault)."""
    d = tmp_path / "data"
    assert limen(d, "users", "add", "Olga", new_pin=OWNER_PIN).exit_code == 0
    assert limen(d, "users", "add", "Max", "--as", "Olga", new_pin=MAX_PIN).exit_code == 0
    settings = load_settings(d)
    conn = open_db(settings.db_path)
    dora = people.new_person(conn, "Dora", "cli", T0)
    people.record_consent(conn, dora, Modality.FACE, people.Consent("door access", 365).validated(), "cli", T0)
    people.record_enrolment(conn, dora, Modality.FACE, 3, "cli", T0)
    conn.commit()
    conn.close()
    store = open_template_store(settings)
    store.put(dora.id, Modality.FACE, np.random.default_rng(3).normal(0, 0.1, 128))
    store.close()
    return d


def templates(d: Path) -> int:
    return int(json.loads(limen(d, "--json", "status").output)["vault"]["templates"])


def test_the_owner_starts_and_lifts_a_lockdown_and_no_face_is_erased(household: Path) -> None:
    d = household
    assert limen(d, "access", "lockdown", "on", "--as", "Max", actor_pin=MAX_PIN).exit_code != 0  # owners only
    assert limen(d, "access", "lockdown", "on", "--as", "Olga", actor_pin="000000").exit_code != 0
    on = limen(d, "--json", "access", "lockdown", "on", "--as", "Olga")
    assert on.exit_code == 0 and json.loads(on.output) == {"lockdown": True, "cause": "command"}

    refused = limen(d, "unlock", "--pin", MAX_PIN)
    assert refused.exit_code == 3 and "owner lockdown" in refused.output and "tamper" not in refused.output
    shown = limen(d, "status")
    assert "ACTIVE (owner lockdown)" in shown.output and "limen access lockdown off" in shown.output
    assert "tamper clear" not in shown.output
    assert limen(d, "tamper", "clear", "--as", "Olga").exit_code != 0  # it would erase every face: refused
    assert templates(d) == 1

    off = limen(d, "--json", "access", "lockdown", "off", "--as", "Olga")
    assert off.exit_code == 0 and json.loads(off.output) == {"lockdown": False, "cause": None}
    assert limen(d, "unlock", "--pin", MAX_PIN).exit_code == 0
    assert templates(d) == 1
    trail = json.loads(limen(d, "--json", "audit", "tail", "-n", "50").output)
    assert {"lockdown on", "lockdown off"} <= {r["reason"] for r in trail}


def test_a_remote_lockdown_is_lifted_by_the_owner(household: Path) -> None:
    """The app's (or cloud's) lockdown command: the same owner's lockdown, lifted without re-provisioning."""
    from limen.access.store import AccessStore

    conn = open_db(load_settings(household).db_path)
    AccessStore(conn, MemoryAuditSink()).set_lockdown(True, "cloud", T0)
    conn.close()
    assert "ACTIVE (owner lockdown)" in limen(household, "status").output
    assert limen(household, "access", "lockdown", "off", "--as", "Olga").exit_code == 0
    assert limen(household, "unlock", "--pin", MAX_PIN).exit_code == 0 and templates(household) == 1


def test_a_tamper_lockdown_is_lifted_only_by_tamper_clear_and_dora_must_enrol_again(household: Path) -> None:
    d = household
    assert limen(d, "tamper", "simulate", "case", "--yes").exit_code == 0
    shown = limen(d, "status")
    assert "ACTIVE (tamper lockdown)" in shown.output and "limen tamper clear" in shown.output
    assert "tamper lockdown" in limen(d, "unlock", "--pin", MAX_PIN).output
    off = limen(d, "access", "lockdown", "off", "--as", "Olga")
    assert off.exit_code != 0 and "limen tamper clear" in off.stderr_text
    on = limen(d, "access", "lockdown", "on", "--as", "Olga")
    assert on.exit_code == 0 and "limen tamper clear" in on.output  # stays a tamper lockdown

    assert limen(d, "tamper", "clear", "--as", "Olga").exit_code == 0
    listed = json.loads(limen(d, "--json", "users", "list").output)
    assert next(u for u in listed if u["name"] == "Dora")["modalities"] is None   # not "face"
    status = json.loads(limen(d, "--json", "status").output)
    assert [p["name"] for p in status["re_enrol"]] == ["Dora"]
    assert "Dora: faces and fingerprints were erased" in limen(d, "status").output
