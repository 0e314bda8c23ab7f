"""Tables of the tamper component (append-only migrations; see `limen.db`).

* `tamper_lockdown` – the one persistent lockdown flag (`limen.tamper.lockdown`).
* `tamper_incidents` – one row per completed (or recovered) tamper response.
* `tamper_sensors` – sensor identities recorded at provisioning (`limen.tamper.binding`).

Version 2 makes `tamper_lockdown` the only lockdown flag (with its `cause`):
it drops the triggers that used to copy it into `access_lock.lockdown`, moves a
lockdown set only there (a lockdown command) into this table and zeroes that
retired column, which nothing reads any more.  Existing databases keep their
state: an active tamper lockdown stays a tamper lockdown.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    """
    CREATE TABLE tamper_lockdown (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        active      INTEGER NOT NULL DEFAULT 0,
        incident    TEXT,
        reason      TEXT,
        since       TEXT,
        cleared_at  TEXT,
        cleared_by  TEXT
    );
    INSERT INTO tamper_lockdown(id, active) VALUES (1, 0);
    CREATE TABLE tamper_incidents (
        id           TEXT PRIMARY KEY,
        source       TEXT NOT NULL,
        kind         TEXT NOT NULL,
        reason       TEXT NOT NULL,
        detected_at  TEXT NOT NULL,
        completed_at TEXT NOT NULL,
        erased       INTEGER NOT NULL,
        door         TEXT,
        audit_index  INTEGER,
        alarm_index  INTEGER,
        recovered    INTEGER NOT NULL DEFAULT 0,
        steps        TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE tamper_sensors (
        name      TEXT PRIMARY KEY,
        kind      TEXT NOT NULL,
        identity  TEXT NOT NULL,
        bound_at  TEXT NOT NULL,
        bound_by  TEXT NOT NULL
    );
    """,
    """
    ALTER TABLE tamper_lockdown ADD COLUMN cause TEXT NOT NULL DEFAULT 'tamper';
    DROP TRIGGER IF EXISTS tamper_lockdown_to_access;
    DROP TRIGGER IF EXISTS tamper_lockdown_new_access;
    DROP TRIGGER IF EXISTS tamper_lockdown_kept;
    UPDATE tamper_lockdown SET active = 1, cause = 'command', incident = NULL,
        reason = 'lockdown command (kept from access_lock)', cleared_at = NULL, cleared_by = NULL
        WHERE id = 1 AND active = 0 AND EXISTS (SELECT 1 FROM access_lock WHERE id = 1 AND lockdown = 1);
    UPDATE access_lock SET lockdown = 0 WHERE lockdown != 0;
    """,
]
