from __future__ import annotations

import sqlite3

import pytest

from limen.access.attempt import key_attempt, keypad_entry
from limen.access.model import PermissionLevel
from limen.access.store import BOOTSTRAP_ACTOR, AccessStore
from limen.audit.event import MemoryAuditSink
from limen.config import Settings
from limen.db import open_db
from limen.decision import Reason
from limen.tamper.lockdown import clear_lockdown, enter_lockdown, is_locked_down, lockdown_status

from .conftest import T0

OWNER_PIN = "482913"


def owner_store(conn: sqlite3.Connection) -> AccessStore:
    store = AccessStore(conn, MemoryAuditSink())
    store.add_user("alice", BOOTSTRAP_ACTOR, T0, pin=OWNER_PIN, permission=PermissionLevel.OWNER)
    return store


def test_flag_starts_off_and_persists(settings: Settings) -> None:
    conn = open_db(settings.db_path)
    assert not is_locked_down(conn)
    enter_lockdown(conn, "inc-1", "case: held", T0)
    conn.close()
    conn = open_db(settings.db_path)
    status = lockdown_status(conn)
    assert status.active and status.incident == "inc-1" and status.since == T0.isoformat()
    assert clear_lockdown(conn, "owner-1", T0)
    assert not is_locked_down(conn)
    assert lockdown_status(conn).cleared_by == "owner-1"


def test_unreadable_flag_counts_as_locked_down(tmp_path) -> None:  # type: ignore[no-untyped-def]
    conn = sqlite3.connect(tmp_path / "empty.db")
    assert is_locked_down(conn)


def test_access_policy_refuses_pin_in_lockdown_but_not_the_key(settings: Settings) -> None:
    conn = open_db(settings.db_path)
    store = owner_store(conn)
    assert store.decide(keypad_entry(OWNER_PIN), T0).decision.accepted
    enter_lockdown(conn, "inc-1", "case: held", T0)
    assert store.load_state().lockdown
    decision = store.decide(keypad_entry(OWNER_PIN), T0).decision
    assert not decision.accepted and decision.reason is Reason.LOCKDOWN
    assert store.decide(key_attempt(), T0).decision.reason is not Reason.LOCKDOWN


def test_access_row_created_after_the_lockdown_starts_locked(settings: Settings) -> None:
    conn = open_db(settings.db_path)
    enter_lockdown(conn, "inc-1", "shock: pulses", T0)   # before the access engine ever ran
    store = AccessStore(conn, MemoryAuditSink())
    assert store.load_state().lockdown


def test_access_engine_cannot_lift_a_tamper_lockdown(settings: Settings) -> None:
    conn = open_db(settings.db_path)
    owner_store(conn)
    enter_lockdown(conn, "inc-1", "case: held", T0)
    with pytest.raises(sqlite3.DatabaseError, match="tamper lockdown"):
        conn.execute("UPDATE access_lock SET lockdown = 0 WHERE id = 1")
    assert is_locked_down(conn)
    clear_lockdown(conn, "owner", T0)
    assert not AccessStore(conn, MemoryAuditSink()).load_state().lockdown
