"""Schema of the link: owner devices paired on the lock and their command counters.

`link_devices.counter` is the highest command counter accepted from that
device; a command is executed only with a larger one (replay protection that
survives restarts).  Public keys only: the private key never leaves the device.
`link_forward.next_index` is the first audit record the broker has not yet
acknowledged (store-and-forward: the audit log itself is the store).
`link_counter_floor` keeps, per SHA-256 of a public key, the highest counter
accepted from it once its device was unpaired: pairing that key again starts
above it, so a command signed before the unpair is not executed again.
`link_claim.code_hash` is the SHA-256 of the one-time code the owner types in the
cloud to claim this lock (the code itself is shown once and never stored).
"""

COUNTER_FLOOR_DDL = """
    CREATE TABLE IF NOT EXISTS link_counter_floor (
        key_hash    TEXT PRIMARY KEY,          -- SHA-256 (hex) of the Ed25519 public key, never the key
        counter     INTEGER NOT NULL
    );
    """

MIGRATIONS: list[str] = [
    """
    CREATE TABLE link_devices (
        name        TEXT PRIMARY KEY,
        public_key  BLOB NOT NULL UNIQUE CHECK (length(public_key) = 32),
        owner       TEXT NOT NULL,
        counter     INTEGER NOT NULL DEFAULT 0,
        paired_at   TEXT NOT NULL,
        paired_by   TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE link_forward (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        next_index  INTEGER NOT NULL
    );
    INSERT INTO link_forward VALUES (1, 0);
    """,
    """
    CREATE TABLE link_claim (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        code_hash   TEXT NOT NULL
    );
    """,
    COUNTER_FLOOR_DDL,
]
