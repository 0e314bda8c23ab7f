import sqlite3
from pathlib import Path

import pytest

from limen.db import connect, migrate, open_db, transaction
from limen.errors import StorageError


def test_open_db_uses_wal_and_records_versions(tmp_path: Path) -> None:
    conn = open_db(tmp_path / "x.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    versions = dict(conn.execute("SELECT component, version FROM schema_versions").fetchall())
    assert versions["core"] >= 1


def test_migrations_apply_once_and_in_order(tmp_path: Path) -> None:
    conn = open_db(tmp_path / "x.db")
    steps = ["CREATE TABLE t(a INTEGER)", "ALTER TABLE t ADD COLUMN b TEXT"]
    assert migrate(conn, "demo", steps[:1]) == 1
    assert migrate(conn, "demo", steps) == 2
    assert migrate(conn, "demo", steps) == 2  # idempotent
    cols = [r[1] for r in conn.execute("PRAGMA table_info(t)")]
    assert cols == ["a", "b"]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    conn = open_db(tmp_path / "x.db")
    migrate(conn, "demo", ["CREATE TABLE t(a)", "CREATE TABLE u(a)"])
    with pytest.raises(StorageError, match="newer"):
        migrate(conn, "demo", ["CREATE TABLE t(a)"])


def test_failed_migration_leaves_previous_version(tmp_path: Path) -> None:
    conn = open_db(tmp_path / "x.db")
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, "demo", ["CREATE TABLE t(a); CREATE TABLE broken("])
    assert conn.execute("SELECT count(*) FROM schema_versions WHERE component='demo'").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name='t'").fetchone()[0] == 0


def test_transaction_rolls_back_everything(tmp_path: Path) -> None:
    conn = connect(tmp_path / "x.db")
    conn.execute("CREATE TABLE t(a INTEGER)")
    with pytest.raises(RuntimeError), transaction(conn):
        conn.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("boom")
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0


def test_corrupt_database_is_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match="x.db"):
        open_db(path)


def test_new_database_files_are_private(tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        conn = open_db(tmp_path / "x.db")
        conn.execute("CREATE TABLE t(a)")
        conn.execute("INSERT INTO t VALUES (1)")
        for f in tmp_path.glob("x.db*"):
            assert f.stat().st_mode & 0o077 == 0, f
    finally:
        os.umask(old)


def test_open_db_migrates_the_core_packages_and_the_service_its_own(tmp_path: Path) -> None:
    from limen.service.accounts import Accounts
    from limen.service.schema import MIGRATIONS as SERVICE_MIGRATIONS

    conn = open_db(tmp_path / "x.db")
    versions = dict(conn.execute("SELECT component, version FROM schema_versions").fetchall())
    assert {"core", "vault", "access", "tamper"} <= set(versions) and "service" not in versions
    assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'service_owners'").fetchone() is None
    Accounts(conn)
    Accounts(conn)  # a second open is a no-op
    versions = dict(conn.execute("SELECT component, version FROM schema_versions").fetchall())
    assert versions["service"] == len(SERVICE_MIGRATIONS)
    assert not Accounts(open_db(tmp_path / "x.db")).has_owner()  # an existing database opens as before
