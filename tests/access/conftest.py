"""Fixtures for the access tests: cheap Argon2 (except where a test asks for the real one), a store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from limen import thresholds
from limen.access.model import PermissionLevel
from limen.access.store import AccessStore
from limen.audit.event import MemoryAuditSink
from limen.db import open_db

from .builders import OWNER_PIN, T0


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Argon2id with tiny cost so that policy tests stay fast; tests using `real_argon2` opt out."""
    if "real_argon2" in request.fixturenames:
        return
    monkeypatch.setattr(thresholds, "PIN_ARGON2_MEMORY_KIB", 64)
    monkeypatch.setattr(thresholds, "PIN_ARGON2_TIME_COST", 1)


@pytest.fixture
def real_argon2() -> None:
    """Request this fixture to hash PINs with the production Argon2id parameters."""


@pytest.fixture
def sink() -> MemoryAuditSink:
    return MemoryAuditSink()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "limen.db"


@pytest.fixture
def store(db_path: Path, sink: MemoryAuditSink) -> Iterator[AccessStore]:
    conn = open_db(db_path)
    yield AccessStore(conn, sink)
    conn.close()


@pytest.fixture
def owner_id(store: AccessStore) -> str:
    return store.add_user("Olga", "", T0, pin=OWNER_PIN, permission=PermissionLevel.OWNER).user_id
