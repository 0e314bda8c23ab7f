from __future__ import annotations

import sqlite3

import pytest

from limen.access.attempt import key_attempt, keypad_entry
from limen.access.model import PermissionLevel
from limen.access.store import BOOTSTRAP_ACTOR, AccessStore
from limen.audit.event import MemoryAuditSink
from limen.config import Settings
from limen.db import connect, migrate, migrations_of, open_db
from limen.decision import Reason
from limen.errors import LockdownActive
from limen.tamper import schema as tamper_schema
from limen.tamper.lockdown import (
    LockdownCause,
    clear_lockdown,
    enter_lockdown,
    is_locked_down,
    lockdown_status,
)

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
    store = owner_store(conn)
    owner = store.user("alice").user_id
    enter_lockdown(conn, "inc-1", "case: held", T0)
    with pytest.raises(LockdownActive, match="tamper clear"):
        store.set_lockdown(False, owner, T0)
    assert is_locked_down(conn) and store.load_state().lockdown
    clear_lockdown(conn, "owner", T0)
    assert not AccessStore(conn, MemoryAuditSink()).load_state().lockdown


def test_a_lockdown_command_is_the_same_flag_and_an_owner_lifts_it(settings: Settings) -> None:
    conn = open_db(settings.db_path)
    store = owner_store(conn)
    owner = store.user("alice").user_id
    store.set_lockdown(True, "cloud", T0)
    status = lockdown_status(conn)
    assert status.active and status.cause is LockdownCause.COMMAND and is_locked_down(conn)
    assert store.decide(keypad_entry(OWNER_PIN), T0).decision.reason is Reason.LOCKDOWN
    store.set_lockdown(False, owner, T0)
    assert not is_locked_down(conn) and not store.load_state().lockdown
    assert store.decide(keypad_entry(OWNER_PIN), T0).decision.accepted


def test_a_tamper_during_a_command_lockdown_makes_it_a_tamper_lockdown(settings: Settings) -> None:
    conn = open_db(settings.db_path)
    store = owner_store(conn)
    store.set_lockdown(True, "cloud", T0)
    enter_lockdown(conn, "inc-2", "case: held", T0)
    store.set_lockdown(True, "cloud", T0)  # a second command does not weaken it
    assert lockdown_status(conn).cause is LockdownCause.TAMPER
    with pytest.raises(LockdownActive):
        store.set_lockdown(False, store.user("alice").user_id, T0)


def test_no_triggers_tie_the_access_tables_to_the_flag(settings: Settings) -> None:
    conn = open_db(settings.db_path)
    owner_store(conn)
    enter_lockdown(conn, "inc-1", "case: held", T0)
    assert conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall() == []
    assert conn.execute("SELECT lockdown FROM access_lock WHERE id = 1").fetchone()[0] == 0  # retired column


_V1_TRIGGER = """CREATE TRIGGER tamper_lockdown_kept BEFORE UPDATE OF lockdown ON access_lock
    WHEN NEW.lockdown = 0 AND (SELECT active FROM tamper_lockdown WHERE id = 1) = 1
    BEGIN SELECT RAISE(ABORT, 'tamper lockdown is active'); END"""


def _v1_database(settings: Settings, *, access_flag: int, tamper_flag: int) -> None:
    """A database as tamper schema v1 left it: the flag copied into access_lock, a trigger guarding it."""
    conn = connect(settings.db_path)
    conn.executescript("CREATE TABLE schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    for component in ("core", "vault", "access"):
        migrate(conn, component, migrations_of(component))
    migrate(conn, "tamper", tamper_schema.MIGRATIONS[:1])
    conn.execute("UPDATE tamper_lockdown SET active = ?, incident = 'inc-0', since = ? WHERE id = 1",
                 (tamper_flag, T0.isoformat()))
    conn.execute("INSERT INTO access_lock(id, mode, pin_salt, config, lockdown) VALUES (1, 'normal', x'00', '{}', ?)",
                 (access_flag,))
    conn.execute(_V1_TRIGGER)
    conn.close()


def test_migration_keeps_a_lockdown_set_only_in_the_access_table(settings: Settings) -> None:
    _v1_database(settings, access_flag=1, tamper_flag=0)
    conn = open_db(settings.db_path)
    status = lockdown_status(conn)
    assert status.active and status.cause is LockdownCause.COMMAND
    assert conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall() == []
    assert conn.execute("SELECT lockdown FROM access_lock WHERE id = 1").fetchone()[0] == 0


def test_migration_keeps_a_tamper_lockdown_a_tamper_lockdown(settings: Settings) -> None:
    _v1_database(settings, access_flag=1, tamper_flag=1)
    conn = open_db(settings.db_path)
    status = lockdown_status(conn)
    assert status.active and status.cause is LockdownCause.TAMPER and status.incident == "inc-0"


def test_migration_of_an_unlocked_database_stays_unlocked(settings: Settings) -> None:
    _v1_database(settings, access_flag=0, tamper_flag=0)
    assert not is_locked_down(open_db(settings.db_path))
