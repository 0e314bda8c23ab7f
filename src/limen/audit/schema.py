"""Schema of the audit store.

The audit trail lives in its own SQLite file, `audit.db` in the data directory,
not in `limen.db`: the evidence must survive a reset, restore or corruption of
the main registry, privacy erasure of the registry must not be able to rewrite
it, and its frequent durable appends must not contend for the main database's
single writer.  `MIGRATIONS` (applied by `limen.db.open_db` to `limen.db`) is
therefore empty; `AUDIT_DB_MIGRATIONS` is applied to `audit.db` by `open_audit`.
"""

MIGRATIONS: list[str] = []

AUDIT_DB_MIGRATIONS: list[str] = [
    """
    CREATE TABLE records (
        idx          INTEGER PRIMARY KEY,       -- position in the chain, from 0
        v            INTEGER NOT NULL,
        prev         TEXT NOT NULL,             -- hash of record idx-1 (zeros for the first)
        hash         TEXT NOT NULL,
        recorded_at  TEXT NOT NULL,             -- wall clock when appended
        at           TEXT NOT NULL,             -- when the event happened
        kind         TEXT NOT NULL,
        actor        TEXT,
        subject      TEXT,
        outcome      TEXT,
        reason       TEXT,
        source       TEXT,
        data         TEXT NOT NULL              -- canonical JSON; ids, scores, reasons only
    );
    CREATE INDEX records_kind ON records(kind, idx);
    CREATE TRIGGER records_no_update BEFORE UPDATE ON records
        BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
    CREATE TRIGGER records_no_delete BEFORE DELETE ON records
        BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
    CREATE TABLE checkpoints (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        v          INTEGER NOT NULL,
        idx        INTEGER NOT NULL,            -- last record covered
        hash       TEXT NOT NULL,
        at         TEXT NOT NULL,
        every      INTEGER NOT NULL,
        device_id  TEXT NOT NULL,
        key_id     TEXT NOT NULL,
        signature  TEXT NOT NULL
    );
    CREATE INDEX checkpoints_idx ON checkpoints(idx);
    CREATE TABLE outbox (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        alarm_index   INTEGER NOT NULL,         -- the ALARM record in the chain
        channel       TEXT NOT NULL,            -- channel id (never a URL: they hold tokens)
        payload       TEXT NOT NULL,            -- the alarm as JSON
        created_at    TEXT NOT NULL,
        status        TEXT NOT NULL DEFAULT 'pending',   -- pending | delivered
        attempts      INTEGER NOT NULL DEFAULT 0,
        next_at       REAL NOT NULL,            -- epoch seconds of the next attempt
        last_error    TEXT,
        delivered_at  TEXT
    );
    CREATE INDEX outbox_due ON outbox(status, next_at)
    """,
]
