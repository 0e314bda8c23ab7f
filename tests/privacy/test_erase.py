""""Delete me" leaves nothing of the person in the lock's files, even while the lock keeps its database open:
SQLite's write-ahead log kept the deleted rows (name, PIN hash, sealed template) until it was overwritten."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from limen import thresholds
from limen.config import load_settings
from limen.runtime import open_runtime
from tests.link.test_backup import Lock, open_lock

NAME = "Quentinzz"  # a name found nowhere else in the lock's files


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thresholds, "PIN_ARGON2_MEMORY_KIB", 64)
    monkeypatch.setattr(thresholds, "PIN_ARGON2_TIME_COST", 1)


@pytest.fixture
def lock(tmp_path: Path) -> Iterator[Lock]:
    lk = open_lock(tmp_path / "front", "front-door", Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
    yield lk
    lk.close()


def _database_files(lock: Lock) -> dict[str, bytes]:
    db = lock.rt.settings.db_path
    return {p.name: p.read_bytes() for p in db.parent.glob(db.name + "*") if p.is_file()}


def _pin_secret(lock: Lock, user_id: str) -> bytes:
    row = lock.rt.conn.execute("SELECT secret FROM access_credentials WHERE user_id = ?", (user_id,)).fetchone()
    return bytes(row[0])


def test_delete_me_leaves_no_row_of_the_person_in_the_database_or_its_log(lock: Lock) -> None:
    at = datetime.now(UTC)
    user_id = lock.rt.access().add_user(NAME, lock.owner, at, pin="1357924").user_id
    secret = _pin_secret(lock, user_id)
    assert any(NAME.encode() in data for data in _database_files(lock).values())  # it was written
    assert lock.link.eraser is not None
    lock.link.eraser.erase_person(user_id, lock.owner, at)
    for name, data in _database_files(lock).items():  # the runtime still holds its connections open
        assert NAME.encode() not in data, name
        assert secret not in data, name


def test_decommission_leaves_no_row_of_anyone_in_the_database_or_its_log(lock: Lock) -> None:
    at = datetime.now(UTC)
    lock.rt.access().add_user(NAME, lock.owner, at, pin="1357924")
    assert lock.link.eraser is not None
    lock.link.eraser.decommission(lock.owner, at)
    for name, data in _database_files(lock).items():
        assert NAME.encode() not in data and b"Olga" not in data, name


def test_secure_delete_is_on_even_where_sqlite_defaults_it_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Freed pages are zeroed whatever the SQLite build's default (Debian's is on; SQLite's own is off)."""
    import limen.runtime
    import limen.vault

    def off(opener: Callable[[Path], sqlite3.Connection]) -> Callable[[Path], sqlite3.Connection]:
        def open_off(path: Path) -> sqlite3.Connection:
            conn = opener(path)
            conn.execute("PRAGMA secure_delete=OFF")
            return conn
        return open_off

    for module in (limen.runtime, limen.vault):
        monkeypatch.setattr(module, "open_db", off(module.open_db))
    monkeypatch.setattr(limen.runtime, "connect", off(limen.runtime.connect))
    rt = open_runtime(load_settings(tmp_path / "lock", device_id="front-door"))
    try:
        vault_conn = rt.store.vault.records.conn  # type: ignore[attr-defined]
        for conn in (rt.conn, rt.connection(), vault_conn):
            assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
    finally:
        rt.close()


def test_delete_me_drops_the_traces_of_the_persons_removed_credentials(lock: Lock) -> None:
    at = datetime.now(UTC)
    access = lock.rt.access()
    user_id = access.add_user(NAME, lock.owner, at, pin="1357924").user_id
    access.change_pin(user_id, "2468013", lock.owner, at)       # the old PIN row is remembered as removed
    traces = "SELECT COUNT(*) FROM access_credential_removals WHERE user_id = ?"
    assert lock.rt.conn.execute(traces, (user_id,)).fetchone()[0] >= 1
    assert lock.link.eraser is not None
    receipt = lock.link.eraser.erase_person(user_id, lock.owner, at)
    assert receipt["credential_removals"] >= 1                  # counted in the erasure receipt …
    assert lock.rt.conn.execute(traces, (user_id,)).fetchone()[0] == 0   # … and gone
