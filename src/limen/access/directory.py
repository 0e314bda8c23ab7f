"""Reading who is who: users by name, id or Matter index, and whether an owner exists.

Face-enrolled people (a `users` row without an access row) read as enabled,
unrestricted members (`AccessUser.implicit`); `ensure_row` gives them a real one.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from limen import people
from limen.access import rows
from limen.access.model import AccessUser, CredentialRule, PermissionLevel, UserStatus, UserType
from limen.db import transaction
from limen.errors import NotFound
from limen.people import unknown_user


def list_users(conn: sqlite3.Connection) -> list[AccessUser]:
    """Every person known to the lock (people's registry) with their access row, by name."""
    access = {r["user_id"]: r for r in conn.execute("SELECT * FROM access_users")}
    return [rows.user_of(p.id, p.name, access.get(p.id)) for p in people.everyone(conn)]


def find_user(conn: sqlite3.Connection, ref: str) -> AccessUser:
    """A user by name, id or Matter index."""
    for u in list_users(conn):
        if ref in (u.name, u.user_id) or (ref.isdigit() and u.index == int(ref)):
            return u
    raise NotFound(unknown_user(ref))


def has_users(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM access_users LIMIT 1").fetchone() is not None


def has_owner(conn: sqlite3.Connection) -> bool:
    """Whether an owner exists: until one does, the next user added is the first owner (bootstrap).

    A face enrolled before any owner gives its person a member row; that must not block the first owner.
    """
    return conn.execute("SELECT 1 FROM access_users WHERE permission = 'owner' LIMIT 1").fetchone() is not None


def is_enabled_owner(conn: sqlite3.Connection, user_id: str) -> bool:
    """Whether `user_id` (an id, not a name) is an enabled owner of this lock."""
    row = conn.execute("SELECT status, permission FROM access_users WHERE user_id = ?", (user_id,)).fetchone()
    return row is not None and row["status"] == UserStatus.ENABLED.value and \
        row["permission"] == PermissionLevel.OWNER.value


def ensure_row(conn: sqlite3.Connection, user: AccessUser, actor: str, at: datetime) -> None:
    """Give an implicit (face-enrolled) user an access row: enabled unrestricted member (caller's transaction)."""
    if user.implicit:
        rows.insert_access_user(conn, user.user_id, rows.next_index(conn), PermissionLevel.MEMBER,
                                UserType.UNRESTRICTED, CredentialRule.SINGLE, None, actor, at)


def ensure_user(conn: sqlite3.Connection, user_id: str, actor: str, at: datetime | None = None) -> None:
    """Give a core user (e.g. just face-enrolled) an access row: enabled unrestricted member."""
    at = at or datetime.now(UTC)
    with transaction(conn):
        if people.by_id(conn, user_id) is None:
            raise NotFound(f"no user with id {user_id}")
        if conn.execute("SELECT 1 FROM access_users WHERE user_id = ?", (user_id,)).fetchone() is None:
            rows.insert_access_user(conn, user_id, rows.next_index(conn), PermissionLevel.MEMBER,
                                    UserType.UNRESTRICTED, CredentialRule.SINGLE, None, actor, at)
