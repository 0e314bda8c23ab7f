"""Tables of the lock service: owner accounts, sessions, API tokens, the setup token, paired door screens.

Secrets are stored only as hashes: passwords as Argon2id, session ids, API
tokens and the setup token as SHA-256 (they are 256-bit random, so a fast hash
is enough).  TOTP seeds are the one exception a TOTP check needs in the clear.
API tokens carry scopes (read, manage, unlock) and an expiry; a kiosk row is
first a pairing link (`pair_hash`, single use, expiring), then a paired screen
(`token_hash` of its cookie, `paired_at`).
"""

MIGRATIONS: list[str] = [
    """
    CREATE TABLE service_owners (
        id            TEXT PRIMARY KEY,
        username      TEXT NOT NULL UNIQUE,
        user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        password_hash TEXT NOT NULL,
        totp_secret   TEXT,
        created_at    TEXT NOT NULL
    );
    CREATE TABLE service_sessions (
        id_hash    TEXT PRIMARY KEY,
        owner_id   TEXT NOT NULL REFERENCES service_owners(id) ON DELETE CASCADE,
        csrf       TEXT NOT NULL,
        created_at TEXT NOT NULL,
        seen_at    TEXT NOT NULL,
        expires_at TEXT NOT NULL
    );
    CREATE TABLE service_tokens (
        id         TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        owner_id   TEXT NOT NULL REFERENCES service_owners(id) ON DELETE CASCADE,
        name       TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_used  TEXT,
        revoked    INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE service_setup (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        token_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        used_at    TEXT
    );
    """,
    """
    CREATE TABLE service_kiosks (
        id         TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        name       TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        revoked    INTEGER NOT NULL DEFAULT 0
    );
    """,
    # v3: tokens get scopes and an expiry (tokens made before had neither: they expire now, fail closed);
    # owner step-up windows; TOTP time steps are used once; pairing links are single-use and expire.
    """
    ALTER TABLE service_tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT '';
    ALTER TABLE service_tokens ADD COLUMN expires_at TEXT NOT NULL DEFAULT '1970-01-01T00:00:00+00:00';
    ALTER TABLE service_sessions ADD COLUMN stepped_up_until TEXT;
    ALTER TABLE service_owners ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE service_kiosks ADD COLUMN pair_hash TEXT;
    ALTER TABLE service_kiosks ADD COLUMN pair_expires_at TEXT;
    ALTER TABLE service_kiosks ADD COLUMN paired_at TEXT;
    UPDATE service_kiosks SET paired_at = created_at;
    """,
]
