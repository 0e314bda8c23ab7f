"""Changing users: add, modify, remove, and the first owner's claim.

Only owners and administrators change users (an administrator cannot touch an
owner or create one; `authority`).  The very first user must be an owner with a
PIN they typed: there is no default.  Each change is one transaction, then one
USER_CHANGE event naming actor, subject and what changed (never a PIN, never a
name: records are forwarded to the cloud, so they carry the user id and the
name stays in the access store, resolved to the name when displayed).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from limen import people
from limen.access import pins, rows
from limen.access.authority import BOOTSTRAP_ACTOR, check_actor, keep_an_owner
from limen.access.context import AccessContext
from limen.access.credentials import insert_pin, replace_pins
from limen.access.directory import ensure_row, find_user, has_owner
from limen.access.model import AccessUser, CredentialRule, PermissionLevel, UserStatus, UserType
from limen.audit.event import EventKind
from limen.db import transaction
from limen.errors import BadRequest, Conflict
from limen.people import validate_name

MODIFIABLE = frozenset({"name", "status", "user_type", "credential_rule", "permission", "unique_id",
                        "pin_max_age_days"})


def add_user(
    ctx: AccessContext,
    name: str,
    actor: str,
    at: datetime,
    *,
    pin: str | None = None,
    permission: PermissionLevel = PermissionLevel.MEMBER,
    user_type: UserType = UserType.UNRESTRICTED,
    credential_rule: CredentialRule = CredentialRule.SINGLE,
    unique_id: str | None = None,
    index: int | None = None,
) -> AccessUser:
    """Create a core user and its access row (and PIN).  The first user must be an owner with a PIN."""
    name = validate_name(name)
    if unique_id is not None and (not unique_id.isprintable() or len(unique_id) > 64):
        raise BadRequest("unique_id", "1-64 printable characters")
    if pin is not None:
        pins.validate_pin(pin)
    conn = ctx.conn
    with transaction(conn):
        if not has_owner(conn):
            if permission is not PermissionLevel.OWNER or pin is None:
                raise BadRequest("permission", "the first user must be an owner with a PIN they choose")
            actor = BOOTSTRAP_ACTOR
        else:
            check_actor(conn, actor, touching=permission)
        if people.name_taken(conn, name):
            raise Conflict(f"a user named {name!r} exists")
        if index is not None and not 1 <= index <= rows.MAX_USERS:
            raise BadRequest("index", f"user index must be 1..{rows.MAX_USERS}")
        if index is not None and conn.execute("SELECT 1 FROM access_users WHERE user_index = ?", (index,)).fetchone():
            raise Conflict(f"user index {index} is taken")
        user_id = secrets.token_hex(16)
        people.add_with_id(conn, user_id, name, actor, str(rows.iso(at)))
        rows.insert_access_user(conn, user_id, index or rows.next_index(conn), permission, user_type,
                                credential_rule, unique_id, actor, at)
        if pin is not None:
            insert_pin(ctx, user_id, pin, actor, at)
    user = find_user(conn, user_id)
    ctx.emit(EventKind.USER_CHANGE, at, actor, user_id, "user added", index=user.index,
             permission=permission.value, user_type=user_type.value, rule=credential_rule.value,
             with_pin=pin is not None)
    return user


def modify_user(ctx: AccessContext, ref: str, actor: str, at: datetime, **changes: Any) -> AccessUser:
    """Change name, status, user_type, credential_rule, permission, unique_id or pin_max_age_days."""
    unknown = set(changes) - MODIFIABLE
    if unknown:
        raise BadRequest(sorted(unknown)[0], "cannot be changed")
    changes = {k: v for k, v in changes.items() if v is not None}
    if "name" in changes:
        changes["name"] = validate_name(changes["name"])
    if "pin_max_age_days" in changes and not 1 <= int(changes["pin_max_age_days"]) <= 3650:
        raise BadRequest("pin_max_age_days", "must be 1..3650")
    conn = ctx.conn
    with transaction(conn):
        user = find_user(conn, ref)
        ensure_row(conn, user, actor, at)
        touching = changes.get("permission", user.permission)
        if user.permission is PermissionLevel.OWNER:
            touching = PermissionLevel.OWNER
        check_actor(conn, actor, touching=touching)
        if user.permission is PermissionLevel.OWNER and changes.get("permission", user.permission) \
                is not PermissionLevel.OWNER or changes.get("status") is UserStatus.DISABLED:
            keep_an_owner(conn, user.user_id)
        if "name" in changes:
            if people.name_taken(conn, changes["name"], other_than=user.user_id):
                raise Conflict(f"a user named {changes['name']!r} exists")
            people.rename(conn, user.user_id, changes["name"])
        columns = {k: _plain(v) for k, v in changes.items() if k != "name"}
        for column, value in columns.items():  # column names: only MODIFIABLE ones reach here
            conn.execute(f"UPDATE access_users SET {column} = ? WHERE user_id = ?",  # noqa: S608
                         (value, user.user_id))
        conn.execute("UPDATE access_users SET modified_at = ?, modified_by = ? WHERE user_id = ?",
                     (rows.iso(at), actor, user.user_id))
    ctx.emit(EventKind.USER_CHANGE, at, actor, user.user_id, "user modified", renamed="name" in changes,
             changes={k: _plain(v) for k, v in changes.items() if k != "name"})
    return find_user(conn, user.user_id)


def _plain(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


def remove_user(ctx: AccessContext, ref: str, actor: str, at: datetime) -> None:
    """Delete the user everywhere (core row, access row, credentials, schedules: cascade)."""
    conn = ctx.conn
    with transaction(conn):
        user = find_user(conn, ref)
        check_actor(conn, actor, touching=user.permission)
        if user.permission is PermissionLevel.OWNER:
            keep_an_owner(conn, user.user_id)
        if user.user_id == actor:
            raise BadRequest("user", "you cannot remove yourself")
        people.remove(conn, user.user_id)  # the access row, credentials and schedules cascade
        conn.execute("INSERT OR REPLACE INTO access_user_removals VALUES (?, ?, ?)",
                     (user.user_id, rows.iso(at), actor))
    ctx.emit(EventKind.USER_CHANGE, at, actor, user.user_id, "user removed", index=user.index)


def claim_first_owner(ctx: AccessContext, ref: str, pin: str, at: datetime) -> AccessUser:
    """Make an existing person (e.g. enrolled by face before any owner) the first owner, with `pin`.

    Only while the lock has no owner: the explicit bootstrap step for a face-first person.
    """
    pins.validate_pin(pin)
    conn = ctx.conn
    with transaction(conn):
        if has_owner(conn):
            raise Conflict("this lock already has an owner")
        user = find_user(conn, ref)
        ensure_row(conn, user, BOOTSTRAP_ACTOR, at)
        conn.execute("UPDATE access_users SET permission = ?, status = ?, modified_at = ?, modified_by = ? "
                     "WHERE user_id = ?", (PermissionLevel.OWNER.value, UserStatus.ENABLED.value, rows.iso(at),
                                           BOOTSTRAP_ACTOR, user.user_id))
        replace_pins(ctx, user.user_id, pin, BOOTSTRAP_ACTOR, at)
    ctx.emit(EventKind.USER_CHANGE, at, BOOTSTRAP_ACTOR, user.user_id, "first owner claimed",
             permission=PermissionLevel.OWNER.value, with_pin=True)
    return find_user(conn, user.user_id)
