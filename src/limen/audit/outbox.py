"""The alert outbox: one row per (alarm, channel) in `audit.db`, retried until delivered.

Rows are written in the same transaction as the ALARM record (so an alarm is
never recorded without its deliveries, nor queued without being recorded) and
are never deleted: a failed attempt only moves `next_at` forward by an
exponential backoff capped at `AUDIT_RETRY_MAX_S`.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from limen import thresholds


@dataclass(frozen=True)
class OutboxItem:
    id: int
    alarm_index: int
    channel: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_at: float
    created_at: str
    last_error: str | None
    delivered_at: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> OutboxItem:
        return cls(row["id"], row["alarm_index"], row["channel"], json.loads(row["payload"]), row["status"],
                   row["attempts"], row["next_at"], row["created_at"], row["last_error"], row["delivered_at"])

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "alarm": self.alarm_index, "channel": self.channel, "status": self.status,
                "attempts": self.attempts, "rule": self.payload.get("rule"),
                "severity": self.payload.get("severity"), "reason": self.payload.get("reason"),
                "created_at": self.created_at, "delivered_at": self.delivered_at, "last_error": self.last_error}


def backoff(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failure: base·2^(n-1), capped."""
    return float(min(thresholds.AUDIT_RETRY_MAX_S, thresholds.AUDIT_RETRY_BASE_S * 2 ** max(0, attempts - 1)))


def enqueue(conn: sqlite3.Connection, alarm_index: int, channels: list[str], payload: dict[str, Any],
            created_at: str, now: float) -> None:
    body = json.dumps(payload, sort_keys=True)
    for channel in channels:
        conn.execute(
            "INSERT INTO outbox(alarm_index, channel, payload, created_at, next_at) VALUES (?,?,?,?,?)",
            (alarm_index, channel, body, created_at, now),
        )


def due(conn: sqlite3.Connection, channel: str, now: float, limit: int = 20) -> list[OutboxItem]:
    """Pending rows of `channel` whose time has come (or whose time is implausibly far: clock jumped back)."""
    rows = conn.execute(
        "SELECT * FROM outbox WHERE status = 'pending' AND channel = ? AND (next_at <= ? OR next_at > ?) "
        "ORDER BY id LIMIT ?",
        (channel, now, now + thresholds.AUDIT_RETRY_MAX_S, limit),
    ).fetchall()
    return [OutboxItem.from_row(r) for r in rows]


def next_due(conn: sqlite3.Connection, channel: str) -> float | None:
    row = conn.execute("SELECT MIN(next_at) FROM outbox WHERE status = 'pending' AND channel = ?",
                       (channel,)).fetchone()
    return None if row[0] is None else float(row[0])


def mark_delivered(conn: sqlite3.Connection, item_id: int, at: str) -> None:
    conn.execute("UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?, "
                 "last_error = NULL WHERE id = ?", (at, item_id))


def mark_failed(conn: sqlite3.Connection, item_id: int, error: str, now: float) -> int:
    """Record a failed attempt and schedule the next; return the attempt count."""
    attempts = int(conn.execute("SELECT attempts FROM outbox WHERE id = ?", (item_id,)).fetchone()[0]) + 1
    conn.execute("UPDATE outbox SET attempts = ?, last_error = ?, next_at = ? WHERE id = ?",
                 (attempts, error[:200], now + backoff(attempts), item_id))
    return attempts


def items(conn: sqlite3.Connection, pending_only: bool = False, limit: int = 50) -> list[OutboxItem]:
    where = "WHERE status = 'pending'" if pending_only else ""
    rows = conn.execute(f"SELECT * FROM outbox {where} ORDER BY id DESC LIMIT ?", (limit,)).fetchall()  # noqa: S608
    return [OutboxItem.from_row(r) for r in reversed(rows)]
