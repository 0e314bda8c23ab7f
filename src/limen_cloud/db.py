"""The cloud's database: an engine from a URL (SQLite by default) and Alembic migrations to head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from limen import thresholds as T

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
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


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
