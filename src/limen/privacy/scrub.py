"""Deleted rows leave the disk: SQLite's `secure_delete` zeroes freed pages, and the write-ahead log is emptied.

In WAL mode a deleted row's earlier page images stay in `limen.db-wal` until the log is overwritten (often long
after: a running lock keeps its connections open), so an erasure — a person's name, PIN hash, sealed template
and its wrapped data key — could be read back from the log with the lock's keys.  Every connection the lock opens
to `limen.db` turns `secure_delete` on (`secure`: some SQLite builds default it off), and every erasure ends
with `forget_deleted` (a TRUNCATE checkpoint: the log's pages, zeroed ones included, go into the database and
the log file is cut to nothing).
"""

from __future__ import annotations

import logging
import sqlite3

log = logging.getLogger(__name__)


def secure(conn: sqlite3.Connection) -> sqlite3.Connection:
    """`conn` with freed pages overwritten by zeros from now on (per connection; returned for chaining)."""
    conn.execute("PRAGMA secure_delete=ON")
    return conn


def forget_deleted(conn: sqlite3.Connection) -> bool:
    """Move the write-ahead log into the database and empty it; False (logged) when a reader kept part of it
    (the rows are then gone at the next erasure's checkpoint or when SQLite resets the log)."""
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.DatabaseError as exc:
        log.warning("the database log was not emptied after an erasure (%s)", type(exc).__name__)
        return False
    if busy:
        log.warning("the database log was not emptied after an erasure (a reader held it)")
    return not busy
