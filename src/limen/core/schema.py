"""Schema of the core registry (people known to the lock and their consent)."""

MIGRATIONS: list[str] = [
    """
    CREATE TABLE users (
        id          TEXT PRIMARY KEY,           -- opaque random id (never the name)
        name        TEXT NOT NULL UNIQUE,
        created_at  TEXT NOT NULL,
        created_by  TEXT NOT NULL
    );
    CREATE TABLE consents (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        modality     TEXT NOT NULL,
        purpose      TEXT NOT NULL,
        retention_days INTEGER NOT NULL,
        given_at     TEXT NOT NULL,
        recorded_by  TEXT NOT NULL
    );
    CREATE TABLE enrolments (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        modality     TEXT NOT NULL,
        samples      INTEGER NOT NULL,
        enrolled_at  TEXT NOT NULL,
        enrolled_by  TEXT NOT NULL
    )
    """,
]
