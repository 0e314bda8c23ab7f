"""The persistent tamper lockdown flag (table `tamper_lockdown`), read by the access policy.

While the lockdown is active, biometric and code unlocks are refused with
`Reason.LOCKDOWN`; the mechanical key and owner-authorised recovery still work
(that is the access policy's rule; it reads `access_lock.lockdown`).  Entering
a lockdown also installs three triggers so that the two flags cannot disagree:
`access_lock.lockdown` follows `tamper_lockdown.active`, an `access_lock` row
created later starts locked down, and the access engine cannot clear a tamper
lockdown (only `clear_lockdown`, after re-provisioning, can).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from limen.db import transaction

_TRIGGERS = (
    """CREATE TRIGGER IF NOT EXISTS tamper_lockdown_to_access AFTER UPDATE OF active ON tamper_lockdown
       BEGIN UPDATE access_lock SET lockdown = NEW.active WHERE id = 1; END""",
    """CREATE TRIGGER IF NOT EXISTS tamper_lockdown_new_access AFTER INSERT ON access_lock
       WHEN (SELECT active FROM tamper_lockdown WHERE id = 1) = 1
       BEGIN UPDATE access_lock SET lockdown = 1 WHERE id = NEW.id; END""",
    """CREATE TRIGGER IF NOT EXISTS tamper_lockdown_kept BEFORE UPDATE OF lockdown ON access_lock
       WHEN NEW.lockdown = 0 AND (SELECT active FROM tamper_lockdown WHERE id = 1) = 1
       BEGIN SELECT RAISE(ABORT, 'tamper lockdown is active: clear it with limen tamper clear'); END""",
)


@dataclass(frozen=True)
class LockdownStatus:
    active: bool
    incident: str | None
    reason: str | None
    since: str | None
    cleared_at: str | None
    cleared_by: str | None

    def to_dict(self) -> dict[str, object]:
        return {"active": self.active, "incident": self.incident, "reason": self.reason, "since": self.since,
                "cleared_at": self.cleared_at, "cleared_by": self.cleared_by}


def is_locked_down(conn: sqlite3.Connection) -> bool:
    """Whether the tamper lockdown is in force (fail closed: an unreadable flag counts as locked down)."""
    try:
        row = conn.execute("SELECT active FROM tamper_lockdown WHERE id = 1").fetchone()
    except sqlite3.DatabaseError:
        return True
    return row is None or bool(row[0])


def lockdown_status(conn: sqlite3.Connection) -> LockdownStatus:
    row = conn.execute("SELECT * FROM tamper_lockdown WHERE id = 1").fetchone()
    if row is None:
        return LockdownStatus(True, None, "lockdown flag missing", None, None, None)
    return LockdownStatus(bool(row["active"]), row["incident"], row["reason"], row["since"], row["cleared_at"],
                          row["cleared_by"])


def enter_lockdown(conn: sqlite3.Connection, incident: str, reason: str, at: datetime) -> None:
    """Set the lockdown (own transaction); idempotent, the first incident's time is kept."""
    with transaction(conn):
        set_lockdown_in(conn, incident, reason, at)


def set_lockdown_in(conn: sqlite3.Connection, incident: str, reason: str, at: datetime) -> None:
    """`enter_lockdown` inside the caller's transaction."""
    install_triggers(conn)
    conn.execute(
        "UPDATE tamper_lockdown SET active = 1, incident = ?, reason = ?, since = COALESCE("
        "CASE WHEN active = 1 THEN since END, ?), cleared_at = NULL, cleared_by = NULL WHERE id = 1",
        (incident, reason[:120], at.isoformat()),
    )
    if _has_access(conn):  # a row written before the triggers existed
        conn.execute("UPDATE access_lock SET lockdown = 1 WHERE id = 1")


def clear_lockdown(conn: sqlite3.Connection, actor: str, at: datetime) -> bool:
    """Lift the lockdown (the caller has checked the owner and re-provisioned); False if none was active."""
    with transaction(conn):
        was = is_locked_down(conn)
        conn.execute("UPDATE tamper_lockdown SET active = 0, cleared_at = ?, cleared_by = ? WHERE id = 1",
                     (at.isoformat(), actor))
        if _has_access(conn):
            conn.execute("UPDATE access_lock SET lockdown = 0 WHERE id = 1")
    return was


def install_triggers(conn: sqlite3.Connection) -> None:
    """Create the triggers tying `access_lock.lockdown` to the tamper flag (no-op without the access tables)."""
    if _has_access(conn):
        for sql in _TRIGGERS:
            conn.execute(sql)


def _has_access(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'access_lock'").fetchone() \
        is not None
