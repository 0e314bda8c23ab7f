"""Schema of the access engine (Matter users, credentials, schedules, lockout, codes).

Keyed by `users.id` (core registry) with ON DELETE CASCADE.  Timestamps are
ISO-8601 UTC strings.  Secrets are hashes (PIN: Argon2id; RFID: HMAC) except
the offline-code secret, which the lock needs in the clear to verify codes.

`access_lock.lockdown` is retired (always 0): the lockdown flag is the tamper
package's `tamper_lockdown` (see `limen.tamper.lockdown`); the column stays so
that the table keeps its shape.
"""

MIGRATIONS: list[str] = [
    """
    CREATE TABLE access_users (
        user_id          TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        user_index       INTEGER NOT NULL UNIQUE CHECK (user_index BETWEEN 1 AND 65534),
        unique_id        TEXT,
        status           TEXT NOT NULL,
        user_type        TEXT NOT NULL,
        credential_rule  TEXT NOT NULL,
        permission       TEXT NOT NULL,
        pin_max_age_days INTEGER,
        last_pin_at      TEXT,
        created_at       TEXT NOT NULL,
        modified_at      TEXT NOT NULL,
        modified_by      TEXT NOT NULL
    );
    CREATE TABLE access_credentials (
        id               TEXT PRIMARY KEY,
        user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        cred_type        TEXT NOT NULL,
        cred_index       INTEGER NOT NULL CHECK (cred_index BETWEEN 1 AND 65534),
        secret           BLOB NOT NULL,
        pin_length       INTEGER,
        revoked          INTEGER NOT NULL DEFAULT 0,
        backup           INTEGER NOT NULL DEFAULT 0,
        valid_from       TEXT,
        valid_until      TEXT,
        max_uses         INTEGER,
        uses             INTEGER NOT NULL DEFAULT 0,
        expire_after_s   INTEGER,
        first_used_at    TEXT,
        offline_uses     INTEGER NOT NULL DEFAULT 0,
        offline_max_uses INTEGER,
        created_at       TEXT NOT NULL,
        created_by       TEXT NOT NULL,
        UNIQUE (cred_type, cred_index)
    );
    CREATE UNIQUE INDEX access_credentials_unique_secret
        ON access_credentials(cred_type, secret) WHERE cred_type IN ('pin', 'rfid');
    CREATE TABLE access_pin_history (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        secret      BLOB NOT NULL,
        retired_at  TEXT NOT NULL
    );
    CREATE TABLE access_week_days (
        user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        sched_index  INTEGER NOT NULL,
        days_mask    INTEGER NOT NULL CHECK (days_mask BETWEEN 1 AND 127),
        start_minute INTEGER NOT NULL CHECK (start_minute BETWEEN 0 AND 1439),
        end_minute   INTEGER NOT NULL CHECK (end_minute BETWEEN 1 AND 1440),
        PRIMARY KEY (user_id, sched_index)
    );
    CREATE TABLE access_year_days (
        user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        sched_index  INTEGER NOT NULL,
        start_at     TEXT NOT NULL,
        end_at       TEXT NOT NULL,
        PRIMARY KEY (user_id, sched_index)
    );
    CREATE TABLE access_holidays (
        sched_index  INTEGER PRIMARY KEY,
        start_at     TEXT NOT NULL,
        end_at       TEXT NOT NULL,
        mode         TEXT NOT NULL
    );
    CREATE TABLE access_lock (
        id                     INTEGER PRIMARY KEY CHECK (id = 1),
        mode                   TEXT NOT NULL,
        pin_salt               BLOB NOT NULL,
        config                 TEXT NOT NULL,
        wrong_code_count       INTEGER NOT NULL DEFAULT 0,
        lockouts               INTEGER NOT NULL DEFAULT 0,
        locked_until           TEXT,
        bio_fail_count         INTEGER NOT NULL DEFAULT 0,
        key_offline_uses       INTEGER NOT NULL DEFAULT 0,
        owner_reauth_required  INTEGER NOT NULL DEFAULT 0,
        lockdown               INTEGER NOT NULL DEFAULT 0,
        online                 INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE access_code_uses (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        code_id  TEXT NOT NULL,
        used_at  TEXT NOT NULL
    );
    CREATE INDEX access_code_uses_code ON access_code_uses(code_id);
    CREATE TABLE access_code_revocations (
        code_id     TEXT PRIMARY KEY,
        revoked_at  TEXT NOT NULL,
        revoked_by  TEXT NOT NULL
    );
    CREATE TABLE access_codes_issued (
        code_id        TEXT PRIMARY KEY,
        credential_id  TEXT NOT NULL REFERENCES access_credentials(id) ON DELETE CASCADE,
        kind           TEXT NOT NULL,
        code           TEXT NOT NULL,
        start_at       TEXT NOT NULL,
        end_at         TEXT NOT NULL,
        uses_per_day   INTEGER,
        issued_at      TEXT NOT NULL,
        issued_by      TEXT NOT NULL
    )
    """,
    # 2: people removed by the owner, remembered (no FK: the person is gone) so that restoring an older
    # backup never brings them back.
    """
    CREATE TABLE access_user_removals (
        user_id     TEXT PRIMARY KEY,
        removed_at  TEXT NOT NULL,
        removed_by  TEXT NOT NULL
    )
    """,
    # 3: wrong keypad entries per window, which a success does not reset (a holder of any valid credential
    # reset the lockout after every few wrong guesses and could guess the owner's PIN without end).
    """
    ALTER TABLE access_lock ADD COLUMN wrong_window_count INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE access_lock ADD COLUMN wrong_window_start TEXT
    """,
    # 4: the API token (its id) that issued a credential or an offline code, so that revoking the token revokes
    # them (a token is not a door key: what it issued never outlives it).  NULL: issued by a person.
    """
    ALTER TABLE access_credentials ADD COLUMN issued_token TEXT;
    ALTER TABLE access_codes_issued ADD COLUMN issued_token TEXT
    """,
    # 5: credentials removed (deleted, not revoked) here, remembered by id, person and creation time (no secret,
    # no FK: the row is gone) so that restoring an older backup never brings a removed card or offline-code
    # secret back (`holdings.retired_credentials`).
    """
    CREATE TABLE access_credential_removals (
        credential_id  TEXT NOT NULL,
        user_id        TEXT NOT NULL,
        created_at     TEXT NOT NULL,
        removed_at     TEXT NOT NULL,
        removed_by     TEXT NOT NULL,
        PRIMARY KEY (credential_id, user_id, created_at)
    )
    """,
]
