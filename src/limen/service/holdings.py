"""What the lock's web console holds about a person (`privacy export`): their owner account, never a secret.

The console's own tables (`limen.service.schema`) are read here, without the web stack: the account's user
name, when it was made, whether an authenticator is enrolled, how many sessions are open, and each API token's
name, scopes, dates and last use.  Never the password hash, the authenticator's secret, a session id or a
token (only their hashes are stored, and not even those leave).
"""

from __future__ import annotations

import sqlite3
from typing import Any


def account_of(conn: sqlite3.Connection, user_id: str) -> dict[str, Any] | None:
    """The console account of `user_id` (see the module docstring); None when they have none."""
    try:
        owner = conn.execute("SELECT id, username, created_at, totp_secret IS NOT NULL FROM service_owners "
                             "WHERE user_id = ?", (user_id,)).fetchone()
    except sqlite3.OperationalError:  # the console was never started on this lock: no such table
        return None
    if owner is None:
        return None
    sessions = conn.execute("SELECT count(*) FROM service_sessions WHERE owner_id = ?", (owner[0],)).fetchone()[0]
    tokens = conn.execute("SELECT name, scopes, created_at, expires_at, last_used, revoked FROM service_tokens "
                          "WHERE owner_id = ? ORDER BY created_at", (owner[0],)).fetchall()
    return {"username": owner[1], "created_at": owner[2], "authenticator_enrolled": bool(owner[3]),
            "sessions": int(sessions),
            "api_tokens": [{"name": t[0], "scopes": [s for s in str(t[1]).split(",") if s], "created_at": t[2],
                            "expires_at": t[3], "last_used": t[4], "revoked": bool(t[5])} for t in tokens]}
