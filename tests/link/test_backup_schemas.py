"""Backups made at an older schema (the owner upgraded the software since) are brought forward through the real
migrations and restored; a backup of newer software, or one whose rows are not its declared schema's, is refused
and nothing changes (issue 17: restore onto a replacement lock after a tamper erase)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from limen.access.model import Day, OperatingMode
from limen.audit.chain import canonical
from limen.db import (
    connect,
    insert_rows,
    migrate,
    migrations_of,
    open_db,
    schema_version,
    table_columns,
    table_rows,
    transaction,
)
from limen.errors import BadRequest
from limen.link.backup import TABLES, Backups, RecipientKind, open_backup, seal_backup, unwrap_key
from limen.link.commands import Action
from limen.vault.secrets import box_for, register
from tests.link.test_backup import MAX_PIN, NEW_OWNER_PIN, OWNER_PIN, Lock, open_lock, restore_command
from tests.link.test_backup import cheap_argon2 as cheap_argon2  # noqa: F401 - the autouse fixture applies here
from tests.link.test_backup import lock as lock  # noqa: F401 - the front door with Olga, Max and a code

ACCESS_BEFORE_WINDOW = 2  # access schema before migration 3 (bd40abe: the per-hour keypad window)
NEW_COLUMNS = ("wrong_window_count", "wrong_window_start")


def backup_at_access_2(lock: Lock, root: Path) -> bytes:
    """The backup `lock` would have made before access migration 3: its rows in a database migrated by the real
    migrations only to access version 2 (same rows, that version's columns), backed up by the real code path
    (`Backups.make`: snapshot, encrypted to the owner's phone, signed by the lock's audit key)."""
    path = root / "limen-at-access-2.db"
    conn = connect(path)
    conn.executescript("CREATE TABLE schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    migrate(conn, "core", migrations_of("core"))
    migrate(conn, "access", migrations_of("access")[:ACCESS_BEFORE_WINDOW])
    assert schema_version(conn, "access") == ACCESS_BEFORE_WINDOW
    assert not set(NEW_COLUMNS) & set(table_columns(conn, "access_lock"))
    backups = Backups(conn, lock.id, lock.rt.settings.keys_dir, root / "backups-at-access-2")
    box = box_for(lock.rt.conn)
    assert box is not None
    register(path, box)  # the lock's vault: the offline-code secrets it sealed are unsealed for the backup
    with transaction(conn):
        for table in (*TABLES, "link_devices"):
            columns = table_columns(conn, table)
            insert_rows(conn, table, [{c: row[c] for c in columns} for row in table_rows(lock.rt.conn, table)])
    backups.add_recipient("phone", RecipientKind.DEVICE, lock.phone_x.public_key(), lock.owner, datetime.now(UTC))
    _, blob = backups.make(datetime.now(UTC))
    conn.close()
    return blob


def payload_of(lock: Lock, blob: bytes) -> dict[str, Any]:
    _, payload = open_backup(blob, unwrap_key(blob, lock.phone_x)[1])
    return dict(json.loads(payload))


def resealed(lock: Lock, payload: dict[str, Any], counter: int) -> bytes:
    """`payload` encrypted to the owner's phone and signed by the lock's own audit key (as the lock would)."""
    return seal_backup(canonical(payload), lock.id, counter, datetime.now(UTC), lock.backups.recipients(),
                       lock.rt.audit.key)


def state(lock: Lock, at: datetime) -> dict[str, Any]:
    """What a restore replaces (a snapshot, less the paired devices' command counters, which a refused command
    still advances)."""
    return {k: v for k, v in json.loads(lock.backups.snapshot(at)).items() if k != "devices"}


def rows(lock: Lock, table: str) -> list[dict[str, Any]]:
    return sorted((dict(r) for r in table_rows(lock.rt.conn, table)), key=repr)


def comparable(conn: sqlite3.Connection, table: str) -> list[dict[str, Any]]:
    """Rows of `table`, less the offline-code secrets (sealed again, with a fresh nonce, by a restore)."""
    return sorted(({k: v for k, v in dict(r).items() if table != "access_credentials" or k != "secret"}
                   for r in table_rows(conn, table)), key=repr)


def with_schedules_and_wrong_entries(lock: Lock) -> None:
    """Max may come this month; Wes on Monday mornings; a holiday next week; 3 wrong keypad entries (no lockout)."""
    at = datetime.now(UTC)
    store = lock.rt.access()
    store.add_user("Wes", lock.owner, at)
    store.add_week_day("Wes", 1, Day.MONDAY, time(8), time(12), lock.owner, at)
    store.add_year_day("Max", 1, at - timedelta(days=1), at + timedelta(days=30), lock.owner, at)
    store.add_holiday(1, at + timedelta(days=7), at + timedelta(days=9), OperatingMode.VACATION, lock.owner, at)
    for _ in range(3):
        assert not lock.keypad("000000")


def test_a_backup_made_before_access_migration_3_restores_onto_a_current_replacement_lock(
        lock: Lock, tmp_path: Path) -> None:
    with_schedules_and_wrong_entries(lock)
    blob = backup_at_access_2(lock, tmp_path)
    made = payload_of(lock, blob)
    assert made["schemas"] == {"core": 1, "access": ACCESS_BEFORE_WINDOW}
    assert not set(NEW_COLUMNS) & set(made["tables"]["access_lock"][0])
    kept = {t: rows(lock, t) for t in ("users", "access_users", "access_week_days", "access_year_days")}
    (old_lock_row,) = rows(lock, "access_lock")
    assert old_lock_row["wrong_window_count"] == 3  # counted here, but not in a backup made before migration 3
    code = next(iter(lock.codes.values()))
    lock.rt.store.zeroize()  # the old lock was smashed: tamper erase

    new = open_lock(tmp_path / "replacement", "front-door-2", lock.phone, lock.phone_x, owner_pin=NEW_OWNER_PIN)
    try:
        outcome = new.send(restore_command(new, blob, from_lock="front-door", phone_x=lock.phone_x, origin=lock))
        assert outcome.executed, outcome
        assert schema_version(new.rt.conn, "access") == len(migrations_of("access")) > ACCESS_BEFORE_WINDOW
        assert {t: rows(new, t) for t in kept} == kept  # people, their access rows and schedules
        assert rows(lock, "access_holidays") and not rows(new, "access_holidays")  # the replacement's own: none
        (restored_lock_row,) = rows(new, "access_lock")
        assert restored_lock_row["wrong_code_count"] == 0  # the lockout state is the replacement's own …
        assert {c: restored_lock_row[c] for c in NEW_COLUMNS} == {"wrong_window_count": 0, "wrong_window_start": None}
        own = {"wrong_code_count", *NEW_COLUMNS}  # (holdings.keep_lock_wide: a restore never resets a lockout)
        assert {c: v for c, v in restored_lock_row.items() if c not in own} == \
               {c: v for c, v in old_lock_row.items() if c not in own}  # … every setting came back
        upgraded = open_db(tmp_path / "limen-at-access-2.db")  # the old database, upgraded in place instead
        try:
            assert all(comparable(upgraded, t) == comparable(new.rt.conn, t)
                       for t in TABLES if t not in ("access_lock", "access_holidays"))  # the lock's own: above
        finally:
            upgraded.close()
        assert new.keypad(MAX_PIN) and new.keypad(OWNER_PIN) and new.keypad(code)  # PINs, the offline code
        assert not new.keypad(NEW_OWNER_PIN)
        assert new.send(new.command(Action.UNLOCK)).executed  # the paired phone acts for the restored owner
    finally:
        new.close()


def test_the_same_lock_upgraded_since_restores_its_own_older_backup(lock: Lock, tmp_path: Path) -> None:
    blob = backup_at_access_2(lock, tmp_path)
    assert lock.send(lock.command(Action.REVOKE_USER, user="Max")).executed
    outcome = lock.send(restore_command(lock, blob, from_lock="front-door", phone_x=lock.phone_x))
    assert outcome.executed, outcome
    assert lock.users() == ["Max", "Olga"] and lock.keypad(OWNER_PIN)
    assert not lock.keypad(MAX_PIN)  # revoked after the backup was made: stays revoked


def test_a_backup_of_newer_software_is_refused_and_nothing_changes(lock: Lock) -> None:
    now = datetime.now(UTC)
    before = state(lock, now)
    newer = json.loads(lock.backups.snapshot(now))
    newer["schemas"]["access"] = len(migrations_of("access")) + 1
    for row in newer["tables"]["access_lock"]:
        row["a_later_column"] = 1  # what that later migration would have added
    blob = resealed(lock, newer, 50)
    with pytest.raises(BadRequest, match="made by newer software .*update this lock first"):
        lock.backups.restore(blob, unwrap_key(blob, lock.phone_x)[1], now, from_lock="front-door")
    outcome = lock.send(restore_command(lock, blob, from_lock="front-door", phone_x=lock.phone_x))
    assert not outcome.executed and "update this lock first" in outcome.reason, outcome  # the owner is told
    assert state(lock, now) == before and lock.backups.counter() == 0
    assert lock.keypad(MAX_PIN) and lock.keypad(next(iter(lock.codes.values())))


def _no_new_columns(payload: dict[str, Any]) -> None:
    for row in payload["tables"]["access_lock"]:
        for column in NEW_COLUMNS:
            del row[column]


@pytest.mark.parametrize(("change", "reason"), [
    (lambda p: p["tables"]["access_lock"][0].update(wrong_window_count=0, wrong_window_start=None),
     "access_lock: columns differ from schema"),  # current rows declared as version 2
    (lambda p: p["tables"]["access_users"][0].update(nickname="max"), "access_users: columns differ from schema"),
    (lambda p: p["tables"]["access_lock"][0].pop("online"), "access_lock: columns differ from schema"),
    (lambda p: p["tables"].update(access_user_removals=[]), "tables no backup carries: access_user_removals"),
    (lambda p: p["schemas"].pop("core"), "declares schema"),
    (lambda p: p["schemas"].update(access=0), "declares schema"),
    (lambda p: p["tables"]["users"].append(p["tables"]["users"][0]), "inconsistent rows"),
    (lambda p: p["tables"]["access_users"].append(3), "malformed contents"),
])
def test_an_older_backup_whose_rows_are_not_its_schema_s_is_refused_and_nothing_changes(
        lock: Lock, tmp_path: Path, change: Any, reason: str) -> None:
    made = payload_of(lock, backup_at_access_2(lock, tmp_path))
    now = datetime.now(UTC)
    before = state(lock, now)
    change(made)
    blob = resealed(lock, made, 60)
    with pytest.raises(BadRequest, match=reason):
        lock.backups.restore(blob, unwrap_key(blob, lock.phone_x)[1], now, from_lock="front-door")
    assert state(lock, now) == before and lock.backups.counter() == 0
    assert lock.keypad(MAX_PIN) and lock.keypad(OWNER_PIN)


def test_a_current_backup_with_a_table_no_backup_carries_is_refused(lock: Lock) -> None:
    now = datetime.now(UTC)
    before = state(lock, now)
    payload = json.loads(lock.backups.snapshot(now))
    payload["tables"]["link_devices"] = []
    blob = resealed(lock, payload, 70)
    with pytest.raises(BadRequest, match="tables no backup carries: link_devices"):
        lock.backups.restore(blob, unwrap_key(blob, lock.phone_x)[1], now, from_lock="front-door")
    assert state(lock, now) == before
