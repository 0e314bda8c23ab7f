"""What `limen status` shows of the lock's encrypted backups: a read-only look that imports nothing heavy.

(`limen.link.backup` pulls in the vault and the fingerprint package; `limen status` must stay fast.)
"""

from __future__ import annotations

import sqlite3
from typing import Any


def summary(conn: sqlite3.Connection) -> dict[str, Any]:
    """What `limen status` shows of backups, read only: recipients, the newest counter and the template opt-in."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'backup_state'").fetchone() is None:
        return {"set_up": False, "recipients": 0, "counter": 0, "templates": False}
    state = conn.execute("SELECT counter, templates FROM backup_state").fetchone()
    recipients = conn.execute("SELECT count(*) FROM backup_recipients").fetchone()[0]
    return {"set_up": recipients > 0, "recipients": int(recipients), "counter": int(state[0]) if state else 0,
            "templates": bool(state[1]) if state else False}
