"""The cloud's database: an engine from a URL (SQLite by default) and Alembic migrations to head.

A SQLite database file holds owners' TOTP seeds, webhook secrets and apprise URLs: `make_engine` creates it
readable by its owner only (0600) before SQLite opens it, and SQLite gives its -wal and -shm files the database
file's mode; an existing file (and its -wal/-shm) readable by others is narrowed to 0600.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from limen import thresholds as T

log = logging.getLogger(__name__)
DEFAULT_URL = "sqlite:///limen-cloud.db"


def make_engine(url: str = DEFAULT_URL, *, schema: str | None = None) -> Engine:
    """An engine for `url`; on PostgreSQL `schema` becomes the search path (tests use one per run).  A server
    database keeps `CLOUD_DB_POOL_SIZE` connections open: the bridge's workers, the notifier's threads and the API
    use them at once, and a connection past the pool's size is closed after each use (a new backend each time)."""
    args = {"options": f"-csearch_path={schema}"} if schema else {}
    pool: dict[str, int] = {} if url.startswith("sqlite") else {
        "pool_size": T.CLOUD_DB_POOL_SIZE, "max_overflow": T.CLOUD_DB_POOL_OVERFLOW}
    engine = create_engine(url, connect_args=args, pool_pre_ping=True, **pool)
    if engine.dialect.name == "sqlite":
        if engine.url.database and engine.url.database != ":memory:" and not engine.url.database.startswith("file:"):
            owner_only(Path(engine.url.database))
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def owner_only(path: Path) -> None:
    """Create the SQLite file `path` 0600 if absent; narrow it and its -wal/-shm to 0600 if others may read them."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            os.chmod(file, 0o600)
            log.warning("%s was readable by others (mode %o): narrowed to 0600", file, mode)


def _sqlite_pragmas(dbapi_conn: object, record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.close()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def sessions(engine: Engine) -> sessionmaker:  # type: ignore[type-arg]
    return sessionmaker(engine, expire_on_commit=False)


def write_lock(session: Session) -> None:
    """On SQLite, take the write lock now (first statement of a transaction that reads, then writes).

    A deferred SQLite transaction that read and then writes fails at once ("database is locked") when another
    connection committed in between (WAL snapshot); `BEGIN IMMEDIATE` waits for the lock instead.  The
    bridge and the notifier write concurrently with each other and the API.  No-op on other databases.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")
