"""Lock-wide settings: operating mode, `LockConfig`, link status, the lockout and the lockdown command."""

from __future__ import annotations

import json
from dataclasses import asdict, fields, replace
from datetime import datetime
from typing import Any

from limen.access import pins, rows
from limen.access.authority import check_actor
from limen.access.context import AccessContext
from limen.access.model import LockConfig, OperatingMode, PermissionLevel
from limen.access.schedules import zone
from limen.access.sealing import seal_clear_offline_secrets
from limen.audit.event import EventKind
from limen.db import transaction
from limen.errors import BadRequest
from limen.tamper.lockdown import LockdownCause, command_lockdown_in, lift_command_lockdown_in, lockdown_cause


def initialise(ctx: AccessContext) -> None:
    """Create the lock's row on first use (normal mode, fresh salt, default config); seal clear code secrets."""
    with transaction(ctx.conn):
        if ctx.conn.execute("SELECT 1 FROM access_lock WHERE id = 1").fetchone() is None:
            ctx.conn.execute(
                "INSERT INTO access_lock(id, mode, pin_salt, config) VALUES (1, ?, ?, ?)",
                (OperatingMode.NORMAL.value, pins.new_salt(), json.dumps(asdict(LockConfig()))),
            )
        seal_clear_offline_secrets(ctx.conn)


def clear_lockout(ctx: AccessContext, actor: str, at: datetime) -> None:
    """An owner ends the keypad lockout and the biometric failure count now (audited)."""
    with transaction(ctx.conn):
        check_actor(ctx.conn, actor, touching=PermissionLevel.OWNER)
        ctx.conn.execute("UPDATE access_lock SET wrong_code_count = 0, locked_until = NULL, bio_fail_count = 0, "
                         "wrong_window_count = 0, wrong_window_start = NULL WHERE id = 1")
    ctx.emit(EventKind.CONFIG_CHANGE, at, actor, "lockout", "lockout cleared")


def set_mode(ctx: AccessContext, mode: OperatingMode, actor: str, at: datetime) -> None:
    with transaction(ctx.conn):
        check_actor(ctx.conn, actor)
        ctx.conn.execute("UPDATE access_lock SET mode = ? WHERE id = 1", (mode.value,))
    ctx.emit(EventKind.CONFIG_CHANGE, at, actor, "lock", "operating mode set", mode=mode.value)


def set_config(ctx: AccessContext, actor: str, at: datetime, **changes: Any) -> LockConfig:
    """Change lock settings (names of `LockConfig` fields), validated."""
    names = {f.name for f in fields(LockConfig)}
    for key, value in changes.items():
        if key not in names:
            raise BadRequest(key, "unknown lock setting")
        if key == "timezone":
            zone(str(value))
        elif isinstance(value, bool) or key == "require_pin_for_remote":
            continue
        elif not 1 <= int(value) <= 10_000_000:
            raise BadRequest(key, "out of range")
    with transaction(ctx.conn):
        check_actor(ctx.conn, actor, touching=PermissionLevel.OWNER)
        current = rows.config_of(ctx.conn.execute("SELECT config FROM access_lock WHERE id = 1").fetchone()[0])
        new = replace(current, **changes)
        ctx.conn.execute("UPDATE access_lock SET config = ? WHERE id = 1", (json.dumps(asdict(new)),))
    ctx.emit(EventKind.CONFIG_CHANGE, at, actor, "lock", "lock settings changed", changes=changes)
    return new


def set_online(ctx: AccessContext, online: bool) -> None:
    """Record link status (the link package calls this); offline limits apply while False."""
    with transaction(ctx.conn):
        ctx.conn.execute("UPDATE access_lock SET online = ? WHERE id = 1", (int(online),))


def set_lockdown(ctx: AccessContext, on: bool, actor: str, at: datetime) -> LockdownCause | None:
    """A lockdown command: biometric/code unlocks refused; key and owner recovery still work.

    Kept in the lock's one lockdown flag (`limen.tamper.lockdown`).  Lifting
    it needs an owner, and a tamper lockdown is not lifted here
    (`LockdownActive`: only re-provisioning lifts it).  Nothing is erased
    either way.  Returns the cause of the lockdown in force afterwards (an
    active tamper lockdown stays one).
    """
    with transaction(ctx.conn):
        if on:
            command_lockdown_in(ctx.conn, actor, at)
        else:
            check_actor(ctx.conn, actor, touching=PermissionLevel.OWNER)
            lift_command_lockdown_in(ctx.conn, actor, at)
        cause = lockdown_cause(ctx.conn)
    # CONFIG_CHANGE, not TAMPER: the tamper package records (and alarms on) what tripped
    ctx.emit(EventKind.CONFIG_CHANGE, at, actor, "lock", "lockdown on" if on else "lockdown off")
    return cause
