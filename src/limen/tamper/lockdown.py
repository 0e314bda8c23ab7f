"""The lock's one lockdown flag (table `tamper_lockdown`), read by the access policy.

While the lockdown is active, biometric and code unlocks are refused with
`Reason.LOCKDOWN`; the mechanical key and owner-authorised recovery still work
(that is the access policy's rule; `AccessStore.load_state` reads this flag).

There is one flag with a `cause`:

* ``tamper`` – a tamper response entered it (`set_lockdown_in`); only
  `clear_lockdown`, after the owner re-provisions the lock, lifts it.
* ``command`` – an owner's or the cloud's lockdown command (`command_lockdown_in`);
  an owner lifts it through the access engine (`lift_command_lockdown_in`).
  A tamper during a command lockdown turns it into a tamper lockdown.

Before tamper schema v2 the access engine kept a copy in `access_lock.lockdown`
synced by triggers; v2 drops the triggers and moves a set copy here.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from limen.db import transaction
from limen.errors import LockdownActive


class LockdownCause(StrEnum):
    TAMPER = "tamper"
    COMMAND = "command"


@dataclass(frozen=True)
class LockdownStatus:
    active: bool
    incident: str | None
    reason: str | None
    since: str | None
    cleared_at: str | None
    cleared_by: str | None
    cause: LockdownCause = LockdownCause.TAMPER

    def to_dict(self) -> dict[str, object]:
        return {"active": self.active, "cause": self.cause.value, "incident": self.incident, "reason": self.reason,
                "since": self.since, "cleared_at": self.cleared_at, "cleared_by": self.cleared_by}


def is_locked_down(conn: sqlite3.Connection) -> bool:
    """Whether the lockdown is in force (fail closed: an unreadable flag counts as locked down)."""
    try:
        row = conn.execute("SELECT active FROM tamper_lockdown WHERE id = 1").fetchone()
    except sqlite3.DatabaseError:
        return True
    return row is None or bool(row[0])


def lockdown_cause(conn: sqlite3.Connection) -> LockdownCause | None:
    """The cause of the lockdown in force, None when there is none (fail closed: unreadable is a tamper's)."""
    try:
        row = conn.execute("SELECT active, cause FROM tamper_lockdown WHERE id = 1").fetchone()
    except sqlite3.DatabaseError:
        return LockdownCause.TAMPER
    if row is None:
        return LockdownCause.TAMPER
    return _cause(row[1]) if row[0] else None


def lockdown_status(conn: sqlite3.Connection) -> LockdownStatus:
    row = conn.execute("SELECT * FROM tamper_lockdown WHERE id = 1").fetchone()
    if row is None:
        return LockdownStatus(True, None, "lockdown flag missing", None, None, None)
    return LockdownStatus(bool(row["active"]), row["incident"], row["reason"], row["since"], row["cleared_at"],
                          row["cleared_by"], _cause(row["cause"]))


def enter_lockdown(conn: sqlite3.Connection, incident: str, reason: str, at: datetime) -> None:
    """Set the tamper lockdown (own transaction); idempotent, the first lockdown's time is kept."""
    with transaction(conn):
        set_lockdown_in(conn, incident, reason, at)


def set_lockdown_in(conn: sqlite3.Connection, incident: str, reason: str, at: datetime) -> None:
    """`enter_lockdown` inside the caller's transaction (a command lockdown becomes a tamper lockdown)."""
    _activate(conn, LockdownCause.TAMPER, incident, reason, at)


def command_lockdown_in(conn: sqlite3.Connection, actor: str, at: datetime) -> None:
    """A lockdown command (inside the caller's transaction); an active tamper lockdown is left as it is."""
    if lockdown_status(conn).active:
        return
    _activate(conn, LockdownCause.COMMAND, None, f"lockdown command by {actor}", at)


def lift_command_lockdown_in(conn: sqlite3.Connection, actor: str, at: datetime) -> bool:
    """End a command lockdown (inside the caller's transaction; the caller checked the owner).

    Returns False if none was active; raises `LockdownActive` for a tamper
    lockdown, which only re-provisioning (`limen tamper clear`) lifts.
    """
    status = lockdown_status(conn)
    if status.active and status.cause is LockdownCause.TAMPER:
        raise LockdownActive("tamper lockdown is active: clear it with limen tamper clear")
    _deactivate(conn, actor, at)
    return status.active


def clear_lockdown(conn: sqlite3.Connection, actor: str, at: datetime) -> bool:
    """Lift any lockdown (the caller has checked the owner and re-provisioned); False if none was active."""
    with transaction(conn):
        was = is_locked_down(conn)
        _deactivate(conn, actor, at)
    return was


def _activate(conn: sqlite3.Connection, cause: LockdownCause, incident: str | None, reason: str,
              at: datetime) -> None:
    conn.execute(
        "UPDATE tamper_lockdown SET active = 1, cause = ?, incident = ?, reason = ?, since = COALESCE("
        "CASE WHEN active = 1 THEN since END, ?), cleared_at = NULL, cleared_by = NULL WHERE id = 1",
        (cause.value, incident, reason[:120], at.isoformat()),
    )


def _deactivate(conn: sqlite3.Connection, actor: str, at: datetime) -> None:
    conn.execute("UPDATE tamper_lockdown SET active = 0, cleared_at = ?, cleared_by = ? WHERE id = 1",
                 (at.isoformat(), actor))


def _cause(value: str | None) -> LockdownCause:
    try:
        return LockdownCause(value or LockdownCause.TAMPER.value)
    except ValueError:
        return LockdownCause.TAMPER  # an unknown cause is lifted only the strict way
