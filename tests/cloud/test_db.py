"""The cloud's engine: a server database keeps enough connections open for the bridge, the notifier and the API."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.pool import QueuePool

from limen import thresholds as T
from limen_cloud.db import make_engine


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
