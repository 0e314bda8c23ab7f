"""The cloud's engine: a server database keeps enough connections open for the bridge, the notifier and the API."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy.pool import QueuePool

from limen import thresholds as T
from limen_cloud.db import DEFAULT_URL, make_engine, upgrade


def test_a_server_database_keeps_the_clouds_connections_open() -> None:
    engine = make_engine("postgresql+psycopg://limen@127.0.0.1:1/none")  # (nothing is connected to here)
    try:
        assert isinstance(engine.pool, QueuePool)
        assert engine.pool.size() == T.CLOUD_DB_POOL_SIZE
        assert T.CLOUD_DB_POOL_SIZE >= T.CLOUD_INGEST_WORKERS + T.CLOUD_APPRISE_PARALLEL + 2  # + notifier, marker
    finally:
        engine.dispose()


def test_sqlite_keeps_its_own_pool(tmp_path: Path) -> None:
    for url in ("sqlite://", f"sqlite:///{tmp_path}/cloud.db"):  # in memory: SQLAlchemy's single-connection pool
        engine = make_engine(url)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        engine.dispose()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_default_sqlite_database_and_its_wal_are_readable_by_their_owner_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # `limen-cloud serve` on its defaults: limen-cloud.db in the working directory
    old = os.umask(0o022)
    try:
        engine = make_engine(DEFAULT_URL)
        upgrade(engine)
        with engine.begin() as conn:  # WAL mode: the write leaves -wal and -shm beside the file while open
            conn.exec_driver_sql("CREATE TABLE probe (x INTEGER)")
            conn.exec_driver_sql("INSERT INTO probe VALUES (1)")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            files = [tmp_path / n for n in ("limen-cloud.db", "limen-cloud.db-wal", "limen-cloud.db-shm")]
            assert all(f.exists() for f in files)
            assert [_mode(f) for f in files] == [0o600, 0o600, 0o600]
        engine.dispose()
    finally:
        os.umask(old)


def test_an_existing_database_readable_by_others_is_narrowed(tmp_path: Path) -> None:
    db = tmp_path / "cloud.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    engine.dispose()
    for f in (db, tmp_path / "cloud.db-wal"):
        if f.exists():
            f.chmod(0o644)
    make_engine(f"sqlite:///{db}").dispose()
    assert _mode(db) == 0o600
    assert not (tmp_path / "cloud.db-wal").exists() or _mode(tmp_path / "cloud.db-wal") == 0o600
