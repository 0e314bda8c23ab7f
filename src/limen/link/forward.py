"""Store-and-forward of the audit trail to the cloud: the audit log is the store, a cursor the position.

`EventForwarder.forward(publish)` sends, in order, batches of up to
`LINK_FORWARD_BATCH` records from the first one the broker has not
acknowledged, with the signed checkpoints among them and the log's head
(count and last hash); the cursor advances only after `publish` returned
(QoS 1 acknowledged).  Resuming after days offline is the same call.  The
cloud is idempotent by (lock, index), so a batch sent twice does no harm.

Each message also carries the lock's audit public keys (so the cloud can check
the signed checkpoints among the records) and the hash of the current claim code (`limen link
claim-code`), so the cloud can check that whoever claims the lock saw its code.

Each message says where it was read from (`start`).  If a message the broker
took does not reach the cloud before the next one (a broker restart), the cloud
answers with the head it holds and `rewind` moves the cursor back to it: the
records are sent again, not lost; the cloud alarms a gap only in a batch read
from at or before its head.

A local log shorter than the cursor (cut back, rolled back or deleted) is not
hidden: the head is sent as it is, and the cloud, which holds more, alarms.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any, Protocol

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from limen import thresholds as T
from limen.db import migrate, transaction
from limen.link.schema import MIGRATIONS

log = logging.getLogger(__name__)
EVENTS_VERSION = 1


class AuditSource(Protocol):
    def count(self) -> int: ...

    def records(self, start: int = 0, kinds: tuple[str, ...] = ()) -> Iterator[dict[str, Any]]: ...

    def checkpoints(self) -> list[dict[str, Any]]: ...

    def public_keys(self) -> dict[str, Any]: ...


class EventForwarder:
    """Forwards `audit` for `lock_id`; the cursor lives in limen.db (`link_forward`)."""

    def __init__(self, audit: AuditSource, conn: sqlite3.Connection, lock_id: str) -> None:
        self.audit = audit
        self.conn = conn
        self.lock_id = lock_id
        migrate(conn, "link", MIGRATIONS)

    @property
    def cursor(self) -> int:
        return int(self.conn.execute("SELECT next_index FROM link_forward WHERE id = 1").fetchone()[0])

    def forward(self, publish: Callable[[bytes], None]) -> int:
        """Publish every unacknowledged record (at least the head); return how many records were sent."""
        count = self.audit.count()
        start = min(self.cursor, count)
        checkpoints = self.audit.checkpoints()
        head = {"count": count, "hash": _take(self.audit.records(count - 1), 1)[0]["hash"] if count else None}
        sent = 0
        while True:
            batch = _take(self.audit.records(start), T.LINK_FORWARD_BATCH)
            end = start + len(batch)
            cps = [cp for cp in checkpoints if start <= int(cp["index"]) < end]
            publish(self._message(batch, cps, head, start))
            self._save(end)
            sent += len(batch)
            start = end
            if not batch or end >= count:
                return sent

    def new_claim_code(self) -> str:
        """A fresh one-time code for the owner to claim this lock in the cloud (its hash travels, not the code)."""
        code = "-".join(secrets.token_hex(3) for _ in range(3))
        with transaction(self.conn):
            self.conn.execute("INSERT OR REPLACE INTO link_claim(id, code_hash) VALUES (1, ?)", (claim_hash(code),))
        return code

    def rewind(self, cloud_count: int) -> bool:
        """Resend from `cloud_count` (the records the cloud holds) if the cursor is past it; whether it moved."""
        if cloud_count >= self.cursor:
            return False
        log.info("the cloud holds %d audit records, the cursor was at %d: resending from %d", cloud_count,
                 self.cursor, cloud_count)
        self._save(cloud_count)
        return True

    def _message(self, records: list[dict[str, Any]], checkpoints: list[dict[str, Any]],
                 head: dict[str, Any], start: int) -> bytes:
        row = self.conn.execute("SELECT code_hash FROM link_claim WHERE id = 1").fetchone()
        keys = {kid: base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
                for kid, key in self.audit.public_keys().items()}
        return json.dumps({"v": EVENTS_VERSION, "lock": self.lock_id, "records": records,
                           "checkpoints": checkpoints, "head": head, "start": start,
                           "claim": row[0] if row else None,
                           "keys": keys},
                          sort_keys=True, separators=(",", ":")).encode("utf-8")

    def _save(self, next_index: int) -> None:
        with transaction(self.conn):
            self.conn.execute("UPDATE link_forward SET next_index = ? WHERE id = 1", (next_index,))


def claim_hash(code: str) -> str:
    """What the cloud compares: SHA-256 of the code as typed (case and spaces ignored)."""
    return hashlib.sha256(b"limen-claim-v1\0" + code.strip().lower().encode("utf-8")).hexdigest()


def _take(records: Iterator[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The first `n` records (the reader generator is closed when dropped here)."""
    return list(islice(records, n))


def forget_claim(conn: sqlite3.Connection) -> None:
    """Delete the pending cloud claim code (decommission; caller's transaction)."""
    conn.execute("DELETE FROM link_claim")
