"""Who may change the lock: owners and administrators, and only an owner touches owners and administrators.

The very first user is created by the `BOOTSTRAP_ACTOR` (see `users.add_user`);
once an owner exists, no change may name it.
"""

from __future__ import annotations

import sqlite3

from limen.access.model import PermissionLevel, UserStatus
from limen.errors import BadRequest

BOOTSTRAP_ACTOR = "bootstrap"


def check_actor(conn: sqlite3.Connection, actor_id: str, touching: PermissionLevel | None = None) -> str:
    """`actor_id` if that enabled user may make a change touching a user of level `touching`; else `BadRequest`."""
    if actor_id == BOOTSTRAP_ACTOR:
        raise BadRequest("as", "the lock already has an owner")
    row = conn.execute("SELECT permission, status FROM access_users WHERE user_id = ?", (actor_id,)).fetchone()
    if row is None or row["status"] != UserStatus.ENABLED.value:
        raise BadRequest("as", "acting user is not an enabled user of this lock")
    permission = PermissionLevel(row["permission"])
    if not permission.programs:
        raise BadRequest("as", "only owners and administrators change the lock")
    senior = (PermissionLevel.OWNER, PermissionLevel.ADMINISTRATOR)
    if touching in senior and permission is not PermissionLevel.OWNER:
        raise BadRequest("as", "only an owner changes owners and administrators")
    return actor_id


def keep_an_owner(conn: sqlite3.Connection, user_id: str) -> None:
    """Refuse a change that would leave the lock without an enabled owner other than `user_id`."""
    others = conn.execute(
        "SELECT COUNT(*) FROM access_users WHERE permission = 'owner' AND status = 'enabled' AND user_id != ?",
        (user_id,)).fetchone()[0]
    if not others:
        raise BadRequest("permission", "the lock must keep at least one enabled owner")
