"""Where sealed records live: in SQLite (default) or as k-of-n fragments indexed in SQLite.

Both stores write a record all-or-nothing: SQLite rows change inside one
transaction; fragments are written (atomically, per location) under a fresh
generation name *before* the index row that points at them is committed, and
the previous generation is removed after.  Fragments that no index row points
at (left by a crash) are shredded by `collect_garbage`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from limen.db import transaction
from limen.errors import FragmentError, StorageError
from limen.vault.fragments import FragmentLocation, join, split


class RecordStore(Protocol):
    conn: sqlite3.Connection  # the `limen.db` connection holding the rows (or the fragment index)

    def put(self, user_id: str, modality: str, sealed: bytes) -> None: ...

    def items(self) -> list[tuple[str, str, bytes]]: ...

    def get(self, user_id: str, modality: str) -> bytes | None: ...

    def delete_user(self, user_id: str) -> int: ...

    def count(self) -> int: ...

    def wipe(self) -> None: ...

    def get_meta(self, name: str) -> bytes | None: ...

    def set_meta(self, name: str, value: bytes) -> None: ...

    def add_meta(self, name: str, value: bytes) -> bytes: ...

    def collect_garbage(self) -> None: ...


def _now() -> str:
    return datetime.now(UTC).isoformat()


class SqliteRecords:
    """Sealed records as rows of `vault_records` in the Limen database."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def put(self, user_id: str, modality: str, sealed: bytes) -> None:
        with self._tx():
            self.conn.execute(
                "INSERT OR REPLACE INTO vault_records(user_id, modality, sealed, fragments, stored_at) "
                "VALUES (?, ?, ?, NULL, ?)",
                (user_id, modality, sealed, _now()),
            )

    def items(self) -> list[tuple[str, str, bytes]]:
        rows = self._query("SELECT user_id, modality, sealed FROM vault_records ORDER BY user_id, modality")
        return [(r[0], r[1], bytes(r[2]) if r[2] is not None else b"") for r in rows]

    def get(self, user_id: str, modality: str) -> bytes | None:
        """One sealed record (the 1:N index scores its best candidates on it), None if absent."""
        rows = self._query("SELECT sealed FROM vault_records WHERE user_id = ? AND modality = ?", (user_id, modality))
        return (bytes(rows[0][0]) if rows[0][0] is not None else b"") if rows else None

    def delete_user(self, user_id: str) -> int:
        with self._tx():
            return self.conn.execute("DELETE FROM vault_records WHERE user_id = ?", (user_id,)).rowcount

    def count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM vault_records")[0][0])

    def wipe(self) -> None:
        """Delete every record and secret with SQLite's secure_delete, then truncate the WAL."""
        try:
            self.conn.execute("PRAGMA secure_delete=ON")
            with transaction(self.conn):
                self.conn.execute("DELETE FROM vault_records")
                self.conn.execute("DELETE FROM vault_meta")
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"cannot wipe vault records ({exc})") from exc

    def get_meta(self, name: str) -> bytes | None:
        rows = self._query("SELECT value FROM vault_meta WHERE name = ?", (name,))
        return bytes(rows[0][0]) if rows else None

    def set_meta(self, name: str, value: bytes) -> None:
        with self._tx():
            self.conn.execute("INSERT OR REPLACE INTO vault_meta(name, value) VALUES (?, ?)", (name, value))

    def add_meta(self, name: str, value: bytes) -> bytes:
        """Store `value` unless `name` exists; return the stored value (the first writer wins)."""
        with self._tx():
            self.conn.execute("INSERT OR IGNORE INTO vault_meta(name, value) VALUES (?, ?)", (name, value))
            return bytes(self.conn.execute("SELECT value FROM vault_meta WHERE name = ?", (name,)).fetchone()[0])

    def collect_garbage(self) -> None:
        return None

    def _query(self, sql: str, args: Sequence[object] = ()) -> list[sqlite3.Row]:
        try:
            return self.conn.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"cannot read vault records ({exc})") from exc

    def _tx(self) -> _Tx:
        return _Tx(self.conn)


class _Tx:
    """`db.transaction` with SQLite errors (disk full, I/O) turned into `StorageError`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._cm = transaction(conn)

    def __enter__(self) -> sqlite3.Connection:
        try:
            return self._cm.__enter__()
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"vault store unavailable ({exc})") from exc

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: object) -> None:
        try:
            self._cm.__exit__(et, ev, tb)  # type: ignore[arg-type]
        except sqlite3.DatabaseError as err:
            with contextlib.suppress(sqlite3.DatabaseError):
                self.conn.execute("ROLLBACK")
            raise StorageError(f"vault store write failed ({err})") from err
        if isinstance(ev, sqlite3.DatabaseError):
            raise StorageError(f"vault store write failed ({ev})") from ev


class FragmentSet:
    """Sealed blobs split k-of-n across `locations` (one independent module each), the caller keeping each
    blob's index — `{"name", "k", "n", "sha256"}` — where it likes: `FragmentedRecords` in SQLite, the
    fingerprint references (`limen.bio.finger.references`) in their own folder.  One generation per write."""

    def __init__(self, locations: Sequence[FragmentLocation], k: int) -> None:
        if not 1 <= k <= len(locations):
            raise ValueError("need 1 <= k <= number of locations")
        self.locations, self.k, self.n = list(locations), k, len(locations)

    @staticmethod
    def stem(user_id: str, modality: str) -> str:
        return hashlib.sha256(f"{user_id}\x00{modality}".encode()).hexdigest()[:32]

    def write(self, stem: str, sealed: bytes) -> dict:
        """Split `sealed` into a fresh generation of `stem` in every location (all needed); its index."""
        name = f"{stem}.{secrets.token_hex(8)}"
        fragments = split(sealed, self.k, self.n)
        for location, fragment in zip(self.locations, fragments, strict=True):
            location.put(name, fragment)
        return {"name": name, "k": self.k, "n": self.n, "sha256": [hashlib.sha256(f).hexdigest() for f in fragments]}

    def read(self, index: dict) -> bytes:
        """The blob from any k intact fragments (each checked against `index`); `FragmentError` below k."""
        got: list[bytes | None] = []
        for location, digest in zip(self.locations, index["sha256"], strict=False):
            data = location.get(index["name"])
            ok = data is not None and hmac.compare_digest(hashlib.sha256(data).hexdigest(), digest)
            got.append(data if ok else None)
        return join(got, index["k"], index["n"])

    def delete(self, name: str) -> None:
        for location in self.locations:
            location.delete(name)

    def delete_stems(self, stems: Collection[str], keep: str | None = None) -> None:
        """Delete every generation of `stems` (but `keep`) from every location, leftovers of a crash included."""
        for location in self.locations:
            for name in location.names():
                if name.split(".", 1)[0] in stems and name != keep:
                    location.delete(name)

    def wipe(self) -> None:
        for location in self.locations:
            for name in location.names():
                location.delete(name)


class FragmentedRecords(SqliteRecords):
    """Sealed records split k-of-n across `locations`; the index (names + digests) stays in SQLite.

    `side`: other `FragmentSet`s over the same modules (the fingerprint references') that `wipe` — the
    crypto-erase — empties with the records; `collect_garbage` leaves them to their owners."""

    def __init__(self, conn: sqlite3.Connection, locations: list[FragmentLocation], k: int,
                 side: Sequence[FragmentSet] = ()) -> None:
        super().__init__(conn)
        self.set = FragmentSet(locations, k)
        self.locations, self.k, self.n = locations, k, len(locations)
        self.side = list(side)

    _stem = staticmethod(FragmentSet.stem)

    def put(self, user_id: str, modality: str, sealed: bytes) -> None:
        index = json.dumps(self.set.write(self._stem(user_id, modality), sealed))
        old = self._index_of(user_id, modality)
        with self._tx():
            self.conn.execute(
                "INSERT OR REPLACE INTO vault_records(user_id, modality, sealed, fragments, stored_at) "
                "VALUES (?, ?, NULL, ?, ?)",
                (user_id, modality, index, _now()),
            )
        if old is not None:
            self._delete_fragments(old["name"])

    def _index_of(self, user_id: str, modality: str) -> dict | None:
        rows = self._query(
            "SELECT fragments FROM vault_records WHERE user_id = ? AND modality = ?", (user_id, modality)
        )
        return json.loads(rows[0][0]) if rows and rows[0][0] else None

    def _fetch(self, index: dict) -> bytes:
        return self.set.read(index)

    def get(self, user_id: str, modality: str) -> bytes | None:
        index = self._index_of(user_id, modality)
        return None if index is None else self._fetch(index)

    def items(self) -> list[tuple[str, str, bytes]]:
        rows = self._query("SELECT user_id, modality, fragments FROM vault_records ORDER BY user_id, modality")
        out = []
        for user_id, modality, raw in rows:
            if not raw:
                raise FragmentError("vault record without fragment index")
            out.append((user_id, modality, self._fetch(json.loads(raw))))
        return out

    def delete_user(self, user_id: str) -> int:
        rows = self._query("SELECT fragments FROM vault_records WHERE user_id = ?", (user_id,))
        count = super().delete_user(user_id)
        for (raw,) in rows:
            if raw:
                self._delete_fragments(json.loads(raw)["name"])
        return count

    def _delete_fragments(self, name: str) -> None:
        self.set.delete(name)

    def wipe(self) -> None:
        super().wipe()
        for fragments in (self.set, *self.side):
            fragments.wipe()

    def collect_garbage(self) -> None:
        live = {json.loads(r[0])["name"] for r in self._query("SELECT fragments FROM vault_records") if r[0]}
        for location in self.locations:
            for name in location.names():
                if name not in live:
                    location.delete(name)


def references_of(conn: sqlite3.Connection, user_id: str) -> list[tuple[str, str, dict[str, object] | None]]:
    """A person's stored references as (modality, stored at, fragment index or None when sealed in the row)."""
    rows = conn.execute("SELECT modality, stored_at, fragments FROM vault_records WHERE user_id = ?", (user_id,))
    return [(r[0], r[1], json.loads(r[2]) if r[2] else None) for r in rows]


FINGERPRINTS = "fingerprints"   # the fingerprint references' side set: a folder of that name in each module
_SIDE: dict[tuple[Path, str], FragmentSet] = {}
_SIDE_LOCK = threading.Lock()


def register_side(data_dir: Path, name: str, fragments: FragmentSet | None) -> None:
    """Make `fragments` the side set `name` of the lock at `data_dir` in this process (None: not fragmented)."""
    with _SIDE_LOCK:
        if fragments is None:
            _SIDE.pop((data_dir.resolve(), name), None)
        else:
            _SIDE[(data_dir.resolve(), name)] = fragments


def side_fragments(data_dir: Path, name: str) -> FragmentSet | None:
    """The side set `name` registered by `open_template_store` for `data_dir`; None when not fragmented."""
    with _SIDE_LOCK:
        return _SIDE.get((data_dir.resolve(), name))
