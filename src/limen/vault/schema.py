"""Schema of the template vault: sealed records (or their fragment index) and sealed device secrets."""

MIGRATIONS: list[str] = [
    """
    CREATE TABLE vault_records (
        user_id    TEXT NOT NULL,
        modality   TEXT NOT NULL,
        sealed     BLOB,               -- the sealed record (NULL when stored as fragments)
        fragments  TEXT,               -- JSON fragment index when split across locations
        stored_at  TEXT NOT NULL,
        PRIMARY KEY (user_id, modality)
    );
    CREATE TABLE vault_meta (
        name   TEXT PRIMARY KEY,       -- e.g. 'transform': the sealed device transform secret
        value  BLOB NOT NULL
    )
    """,
]
