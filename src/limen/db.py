"""The embedded SQLite store: WAL mode, synchronous writes, per-component migrations.

Each package that persists state owns its schema as a module-level
`MIGRATIONS: list[str]` (one SQL script per version, append-only) in
`limen.<package>.schema`.  `migrate` applies the missing ones in order, each in
its own transaction, and records `(component, version)` in `schema_versions`.

`open_db` migrates the lock's core packages (`COMPONENTS`, in dependency
order), whose tables every command reads.  Packages above them migrate their
own tables when their repository opens (`limen.service.accounts.Accounts`,
`limen.link`), so this module knows nothing of the web service or the link.
"""

from __future__ import annotations

import importlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from limen.errors import StorageError

# Components whose schema lives in `limen.<name>.schema`, in dependency order.
COMPONENTS: tuple[str, ...] = ("core", "vault", "access", "audit", "tamper")

_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_versions (
    component TEXT PRIMARY KEY,
    version   INTEGER NOT NULL
);
"""


def connect(path: Path) -> sqlite3.Connection:
    """Open one connection with Limen's durability settings (no migrations).

    A new database file is created 0600 (SQLite gives its WAL and shared-memory
    files the same mode): it holds PIN hashes and code secrets.
    """
    try:
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
    except (sqlite3.DatabaseError, OSError) as exc:
        raise StorageError(f"{path}: cannot open database ({exc})") from exc
    return conn


def open_db(path: Path) -> sqlite3.Connection:
    """Open the database and bring every component's schema up to date."""
    conn = connect(path)
    try:
        conn.executescript(_BOOTSTRAP)
        for component in COMPONENTS:
            migrate(conn, component, migrations_of(component))
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StorageError(f"{path}: database is unreadable or corrupt ({exc})") from exc
    return conn


def migrations_of(component: str) -> list[str]:
    """`limen.<component>.schema.MIGRATIONS` (a missing schema module is a packaging error)."""
    module = importlib.import_module(f"limen.{component}.schema")
    return list(module.MIGRATIONS)


def scratch_db() -> sqlite3.Connection:
    """A private in-memory database with the migration record and no component migrated (foreign keys off: rows
    are checked where they finally land), e.g. to bring a backup's rows forward through the real migrations."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.executescript(_BOOTSTRAP)
    return conn


def migrate(conn: sqlite3.Connection, component: str, migrations: list[str]) -> int:
    """Apply `migrations[current:]` for `component`; return the new version."""
    row = conn.execute("SELECT version FROM schema_versions WHERE component = ?", (component,)).fetchone()
    current = row["version"] if row else 0
    if current > len(migrations):
        raise StorageError(f"schema of {component} is version {current}, newer than this Limen ({len(migrations)})")
    for version, script in enumerate(migrations[current:], start=current + 1):
        with transaction(conn):
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_versions(component, version) VALUES(?, ?) "
                "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                (component, version),
            )
    return len(migrations)


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """`BEGIN IMMEDIATE … COMMIT`, rolled back on any exception: all or nothing."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def schema_version(conn: sqlite3.Connection, component: str) -> int | None:
    """The migrated schema version of `component`; None when it was never migrated here."""
    row = conn.execute("SELECT version FROM schema_versions WHERE component = ?", (component,)).fetchone()
    return None if row is None else int(row[0])


# Table-agnostic row copies, for the package that owns `table` (its backup and restore); never called with
# another package's table names (tests/test_table_ownership.py).

def table_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    """The columns of `table`, in order."""
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def table_rows(conn: sqlite3.Connection, table: str) -> list[sqlite3.Row]:
    """Every row of `table` (in rowid order)."""
    return conn.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608 - the owner's own table name


def insert_rows(conn: sqlite3.Connection, table: str, rows: list[dict[str, object]]) -> int:
    """Insert `rows` (column → value) into `table` inside the caller's transaction; return how many."""
    for row in rows:
        columns = list(row)
        conn.execute(f"INSERT INTO {table}({', '.join(columns)}) "  # noqa: S608 - the owner's table, its columns
                     f"VALUES ({', '.join('?' * len(columns))})", [row[c] for c in columns])
    return len(rows)
