"""Tables of the tamper component (append-only migrations; see `limen.db`).

* `tamper_lockdown` – the one persistent lockdown flag (`limen.tamper.lockdown`).
* `tamper_incidents` – one row per completed (or recovered) tamper response.
* `tamper_sensors` – sensor identities recorded at provisioning (`limen.tamper.binding`).

The triggers that keep the access engine's `access_lock.lockdown` in step are
created by `limen.tamper.lockdown` (a trigger body holds `;`, which the
migration runner splits on).
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
]
