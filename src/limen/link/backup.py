"""End-to-end-encrypted backups of the lock's access state, and their restore onto a (replacement) lock.

What a backup holds (`snapshot`): the people (`users`, `consents`), their
access rows, credentials (PIN hashes, RFID digests, offline-code secrets —
unsealed from the vault so that another lock can reseal them), PIN history,
schedules, holidays, the lock-wide settings row (`access_lock`), issued and
revoked codes, the lock's revocation list, and the PIN pepper when it is a key
file (a PKCS#11 token's pepper cannot leave the token: those PINs must be set
again after a restore).  Biometric templates are included *only if the owner
opted in* (`set_templates`, off by default, audited): then the payload also
carries the vault's transform secret, every protected face template's payload,
the fingerprint references and their enrolment rows (`templates`), exported by
the vault for the sealer alone and wiped after; a restore seals them under the
new lock's own keys, for the people restored whose consent still runs.  Without
the opt-in nothing biometric is in the payload and people enrol again.

The blob is made on the lock and encrypted to keys only the owner holds:

    MAGIC ‖ version(1) ‖ len(header)(4, big-endian) ‖ header (canonical JSON) ‖ ChaCha20-Poly1305(K, payload)
      ‖ Ed25519 signature (64) by the lock's audit key over a domain ‖ everything before it

A random content key K encrypts the payload with the whole prefix (magic,
version, header) as associated data, so the header — lock id, backup counter,
created-at, format version, body nonce, recipients — is authenticated.  K is
wrapped once per recipient (each registered owner device's X25519 key and the
printed recovery key): an ephemeral X25519 exchange, HKDF-SHA256 (salt = the
ephemeral and recipient public keys, info = domain ‖ the binding of lock id,
counter, created-at, version) and ChaCha20-Poly1305 with that binding as
associated data.  The cloud stores the blob and learns nothing but its size
and header.

The signature (the header names its key id, `signer`) says which lock made the
backup: anyone holding a recipient's *public* key — the cloud reads them in
every header — can encrypt a blob to it, so without it a compromised cloud
could offer the owner a "newest backup" of its own making (its own owner, PIN
pepper, offline-code secrets).  `restore` checks it against this lock's own
audit keys (current and retired) for its own backups, and against the old lock's
audit key the owner names (`lock_keys`) for a replacement; otherwise it refuses.
Format version 1 (unsigned) is refused.

Restore (`restore`) is one SQLite transaction: everything or nothing.  A blob
of another lock, a truncated or altered one, a wrong key, or one made by newer
software (a component's schema newer than this lock's) is refused with
`BadRequest("backup", reason)`.  A backup made at an older schema (the owner
upgraded since) is brought forward first, outside the lock's database
(`_at_schema`): its rows go into an in-memory database migrated to the schema
the backup declares, the remaining real migrations run over them, and they are
read back in this lock's column layout.  Rows that are not the declared
schema's (an unknown table or column, one missing) are refused.  The template
section's enrolment rows are not brought forward (`people.restore_enrolments`
takes the columns it names).  Revocations are never undone: the user ids and
code ids revoked in the backup, on the target lock before the restore and in
the owner's signed restore command are applied after the rows are loaded (a
revoked user is restored disabled, a revoked code stays revoked); a user
disabled on the target lock (console, CLI) is restored disabled too, and so is
a credential revoked there (at the console, or with its API token) or a PIN
changed or removed there (`holdings.retired_credentials`: an older backup does
not bring back a PIN retired because it leaked), and a person whose permission
was lowered there keeps the lower one (`holdings.keep_lower_permissions`), and
so do other restrictions added there (`holdings.keep_restrictions`): a
non-access person stays non-access, a restricting user type, a stricter
credential rule or a shorter PIN age limit stays, and a person with any schedule
there keeps that lock's schedules in place of the backup's.  The lock's own
state stays too (`holdings.keep_lock_wide`): its keypad lockout and counters,
operating mode and forced owner re-authentication, each lock setting where it
is stricter (`require_pin_for_remote` stays on), the offline codes' uses
there, and a credential's higher use counts (a used single-use code or
one-use PIN stays used).

The backup's recipients — the owner devices' X25519 keys and the recovery key's
public half, as its signed header names them (public keys only: no private key
is ever on the lock) — are registered again on the target where it lacks them,
so backups made after a restore onto a replacement go on to the same owner
devices and recovery key.  A recipient the target already has (same name or
same key) stays as it is, and so does the target's own recovery key.

Each recipient records whose it is (`person`: the owner of the paired device of
its name, else the owner who registered it) and its paired `device`.  A key is
removed by an owner (`remove_recipient`), with its device (`limen link unpair`),
with its person (`LockEraser.erase_person`), and, before every backup and
restore (`prune`), when its person is no longer an enabled owner or its device
is no longer paired.  A hash of each removed key stays on `backup_removed_keys`
and travels in later backups, so no restore registers it again.  Removal
protects later backups only: the ones made before stay readable with the key
(`AFTER_REMOVAL` tells the owner what to rotate).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import sqlite3
import struct
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from limen import people
from limen.access import holdings
from limen.access.model import CredentialType
from limen.access.store import sealed_secret
from limen.audit.chain import canonical
from limen.audit.event import AuditSink, Event, EventKind
from limen.audit.keys import SigningKey, known_public_keys, load_or_create_key
from limen.bio.finger.references import FingerReferences, references_folder
from limen.db import (
    insert_rows,
    migrate,
    migrations_of,
    schema_version,
    scratch_db,
    table_columns,
    table_rows,
    transaction,
)
from limen.errors import BadRequest, Conflict, LimenError, NotFound
from limen.fsio import fsync_dir
from limen.link.schema import MIGRATIONS as LINK_MIGRATIONS
from limen.vault.recipe import TemplateExport
from limen.vault.secrets import box_for, templates_for

FORMAT_VERSION = 2  # 2: signed by the lock's audit key (1, unsigned, is refused)
MAGIC = b"LIMENBAK"
_PREFIX = struct.Struct(">8sBI")  # magic, version, header length
_WRAP_INFO = b"limen-backup-wrap-v1\0"
_KEY_BYTES = 32
_NONCE_BYTES = 12
_MAX_HEADER = 64 * 1024
_NAME_MAX = 64
_SIG_DOMAIN = b"limen-backup-signature-v2\0"
_SIG_BYTES = 64

# Tables copied, in insertion order (parents first).  `enrolments` stay out: templates are not backed up.
# The tables a backup carries, as their owners list them (people's registry, then the access engine's).
TABLES: tuple[str, ...] = people.BACKUP_TABLES + holdings.BACKUP_TABLES
_SCHEMAS = ("core", "access")  # their owners' schemas, in dependency order: a backup declares their versions

MIGRATIONS: list[str] = [
    """
    CREATE TABLE backup_recipients (
        name        TEXT PRIMARY KEY,
        kind        TEXT NOT NULL CHECK (kind IN ('device', 'recovery')),
        public_key  BLOB NOT NULL UNIQUE CHECK (length(public_key) = 32),
        added_at    TEXT NOT NULL,
        added_by    TEXT NOT NULL
    );
    CREATE TABLE backup_state (
        id                INTEGER PRIMARY KEY CHECK (id = 1),
        counter           INTEGER NOT NULL,
        restored_from     TEXT,
        restored_counter  INTEGER
    );
    INSERT INTO backup_state(id, counter) VALUES (1, 0);
    CREATE TABLE backup_files (
        counter      INTEGER PRIMARY KEY,
        file         TEXT NOT NULL,
        sha256       TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        uploaded_at  TEXT
    );
    CREATE TABLE backup_revocations (
        kind        TEXT NOT NULL CHECK (kind IN ('user', 'code', 'erased')),
        ref         TEXT NOT NULL,
        revoked_at  TEXT NOT NULL,
        PRIMARY KEY (kind, ref)
    );
    """,
    """
    ALTER TABLE backup_state ADD COLUMN templates INTEGER NOT NULL DEFAULT 0 CHECK (templates IN (0, 1));
    """,
    # v3: whose each key is (the owner it belongs to, the paired device it is the backup key of), and the keys
    # removed, by a hash of the public key, so that no restore registers one again (`Backups.remove_recipient`)
    """
    ALTER TABLE backup_recipients ADD COLUMN person TEXT;
    ALTER TABLE backup_recipients ADD COLUMN device TEXT;
    UPDATE backup_recipients SET device = name WHERE kind = 'device' AND name IN (SELECT name FROM link_devices);
    UPDATE backup_recipients SET person = coalesce(
        (SELECT owner FROM link_devices WHERE link_devices.name = backup_recipients.device),
        CASE WHEN added_by LIKE 'restore:%' THEN NULL ELSE added_by END);
    CREATE TABLE backup_removed_keys (
        key_hash    TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        removed_at  TEXT NOT NULL,
        removed_by  TEXT NOT NULL,
        reason      TEXT NOT NULL
    );
    """,
]


class RecipientKind:
    DEVICE = "device"
    RECOVERY = "recovery"


class Removal(StrEnum):
    """Why a backup key was removed (`Backups.remove_recipient`, `remove_keys_of`, `prune`)."""

    BY_OWNER = "removed by an owner"
    DEVICE_UNPAIRED = "its device was unpaired"
    NOT_AN_OWNER = "its person is no longer an enabled owner"
    ERASED = "its person was erased"


# What the owner is told after a key was removed (CLI output; docs/cloud.md says the same).
AFTER_REMOVAL = ("backups made from now on are not encrypted to it, but every backup made before (the local "
                 "copies and the cloud's) stays readable with it.  If that key is lost or its holder hostile: "
                 "revoke every offline-code secret (`limen credentials revoke offline_code:N --as OWNER`; a new "
                 "one is made when the next code is issued) and have everyone change their PIN (no command "
                 "rotates the PIN pepper).")


@dataclass(frozen=True)
class RemovedKey:
    """A backup key removed from this lock's recipients: its name, kind and why."""

    name: str
    kind: str
    reason: Removal


def _recipient_name(name: str) -> bool:
    return 0 < len(name) <= _NAME_MAX and name.isprintable()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: object, what: str) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("backup", f"malformed header ({what})") from exc


def raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def load_x25519_public(text: str | bytes) -> X25519PublicKey:
    """An X25519 public key from 32 raw bytes or their base64; `BadRequest` otherwise."""
    raw = text if isinstance(text, bytes) and len(text) == 32 else None
    if raw is None:
        try:
            raw = base64.b64decode(text.strip() if isinstance(text, (str, bytes)) else b"", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest("public-key", "expected an X25519 public key (32 bytes, base64)") from exc
    if len(raw) != 32:
        raise BadRequest("public-key", "expected an X25519 public key (32 bytes, base64)")
    return X25519PublicKey.from_public_bytes(raw)


def _removed_hash(raw: bytes) -> str:
    """What the removed list keeps of a key: a hash (enough to refuse it again, not the key)."""
    return hashlib.sha256(b"limen.backup.removed-key\0" + raw).hexdigest()


def removal_event(key: RemovedKey, by: str, at: datetime, source: str) -> Event:
    """The audit record of one removed backup key."""
    return Event(EventKind.CONFIG_CHANGE, at, actor=by, subject=f"backup-key:{key.name}", source=source,
                 reason="backup recipient removed", data={"recipient": key.name, "kind": key.kind,
                                                          "why": key.reason.value})


def keys_of(conn: sqlite3.Connection, person: str) -> list[dict[str, Any]]:
    """The backup keys registered for `person` or their paired devices (`privacy export`): name, kind, device,
    when added and the public key (base64); none when backups were never set up on this lock."""
    try:
        rows = conn.execute("SELECT name, kind, device, added_at, public_key FROM backup_recipients WHERE person = ? "
                            "OR coalesce(device, CASE WHEN kind = 'device' THEN name END) IN "
                            "(SELECT name FROM link_devices WHERE owner = ?) ORDER BY name",
                            (person, person)).fetchall()
    except sqlite3.OperationalError:  # backups never set up here: no such table
        return []
    return [{"name": r[0], "kind": r[1], "device": r[2], "added_at": r[3], "public_key": _b64(bytes(r[4]))}
            for r in rows]


# ---------------------------------------------------------------------------------------------- the format


@dataclass(frozen=True)
class Wrap:
    name: str
    kind: str
    public_key: bytes
    ephemeral: bytes
    nonce: bytes
    wrapped: bytes

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "kind": self.kind, "public_key": _b64(self.public_key),
                "ephemeral": _b64(self.ephemeral), "nonce": _b64(self.nonce), "wrapped": _b64(self.wrapped)}


@dataclass(frozen=True)
class Header:
    """The authenticated, unencrypted part of a backup (what the cloud may read)."""

    lock: str
    counter: int
    created_at: str
    nonce: bytes
    wraps: tuple[Wrap, ...]
    signer: str = ""  # key id of the lock's audit key that signed the blob
    version: int = FORMAT_VERSION

    def binding(self) -> bytes:
        return canonical({"v": self.version, "lock": self.lock, "counter": self.counter,
                          "created_at": self.created_at, "signer": self.signer})

    def to_bytes(self) -> bytes:
        return canonical({"v": self.version, "lock": self.lock, "counter": self.counter,
                          "created_at": self.created_at, "nonce": _b64(self.nonce), "signer": self.signer,
                          "recipients": [w.to_dict() for w in self.wraps]})


def _kek(shared: bytes, ephemeral: bytes, recipient: bytes, binding: bytes) -> bytes:
    return HKDF(hashes.SHA256(), _KEY_BYTES, ephemeral + recipient, _WRAP_INFO + binding).derive(shared)


def _wrap(content_key: bytes, name: str, kind: str, recipient: X25519PublicKey, binding: bytes) -> Wrap:
    eph = X25519PrivateKey.generate()
    eph_pub, rec_pub = raw_public(eph.public_key()), raw_public(recipient)
    nonce = os.urandom(_NONCE_BYTES)
    kek = _kek(eph.exchange(recipient), eph_pub, rec_pub, binding)
    return Wrap(name, kind, rec_pub, eph_pub, nonce, ChaCha20Poly1305(kek).encrypt(nonce, content_key, binding))


@dataclass(frozen=True)
class Recipient:
    name: str
    kind: str
    public_key: X25519PublicKey


def seal_backup(payload: bytes, lock: str, counter: int, created_at: datetime,
                recipients: Iterable[Recipient], signer: SigningKey) -> bytes:
    """Encrypt `payload` to every recipient and sign it with the lock's audit key `signer` (see the module
    docstring); at least one recipient is required."""
    recipients = list(recipients)
    if not recipients:
        raise BadRequest("backup", "no recipient: make a recovery key first (`limen link recovery-key --as OWNER`) "
                                   "or register an owner device's key (`limen link backup-key`)")
    content_key = os.urandom(_KEY_BYTES)
    stamp = created_at.astimezone(UTC).isoformat()
    partial = Header(lock, counter, stamp, os.urandom(_NONCE_BYTES), (), signer.key_id)
    wraps = tuple(_wrap(content_key, r.name, r.kind, r.public_key, partial.binding()) for r in recipients)
    header = Header(lock, counter, stamp, partial.nonce, wraps, signer.key_id)
    head = header.to_bytes()
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(head)) + head
    body = prefix + ChaCha20Poly1305(content_key).encrypt(header.nonce, payload, prefix)
    return body + signer.private.sign(_SIG_DOMAIN + body)


def verify_origin(blob: bytes, keys: Mapping[str, Ed25519PublicKey]) -> Header:
    """The header once the blob's signature verifies under one of `keys` (by key id); `BadRequest` otherwise.

    What a restore (and an owner's device, with the lock's pinned audit key) checks before trusting a blob.
    """
    header = read_header(blob)
    public = keys.get(header.signer)
    if public is None:  # the key id lets the owner compare with the one their device recorded at pairing
        raise BadRequest("backup", f"not signed by a known audit key of the lock it names (key id {header.signer!r})")
    try:
        public.verify(blob[-_SIG_BYTES:], _SIG_DOMAIN + blob[:-_SIG_BYTES])
    except InvalidSignature as exc:
        raise BadRequest("backup", "the lock's signature does not verify (forged or altered)") from exc
    return header


def read_header(blob: bytes) -> Header:
    """The header of `blob` (not yet authenticated: that needs a key); `BadRequest` for anything else."""
    if len(blob) < _PREFIX.size:
        raise BadRequest("backup", "truncated (no header)")
    magic, version, size = _PREFIX.unpack_from(blob)
    if magic != MAGIC:
        raise BadRequest("backup", "not a Limen backup")
    if version != FORMAT_VERSION:
        raise BadRequest("backup", f"format version {version} is not supported (this lock reads {FORMAT_VERSION})")
    if size > _MAX_HEADER or len(blob) < _PREFIX.size + size + 16 + _SIG_BYTES:
        raise BadRequest("backup", "truncated")
    try:
        raw = json.loads(blob[_PREFIX.size:_PREFIX.size + size].decode("utf-8"))
        wraps = tuple(Wrap(str(w["name"]), str(w["kind"]), _unb64(w["public_key"], "key"),
                           _unb64(w["ephemeral"], "ephemeral"), _unb64(w["nonce"], "nonce"),
                           _unb64(w["wrapped"], "wrapped")) for w in raw["recipients"])
        header = Header(str(raw["lock"]), int(raw["counter"]), str(raw["created_at"]), _unb64(raw["nonce"], "nonce"),
                        wraps, str(raw["signer"]), int(raw["v"]))
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise BadRequest("backup", "malformed header") from exc
    if header.version != version or len(header.nonce) != _NONCE_BYTES or not 0 < header.counter < 2**31 \
            or not 0 < len(header.lock) <= _NAME_MAX or len(header.created_at) > 40 \
            or not 0 < len(header.signer) <= _NAME_MAX:
        raise BadRequest("backup", "malformed header")
    return header


def unwrap_key(blob: bytes, private: X25519PrivateKey) -> tuple[Header, bytes]:
    """What the owner's device (or the recovery key) does: the header and the content key K.

    `BadRequest` when no wrap is for this key or it does not open (a wrong key, an altered header).
    """
    header = read_header(blob)
    mine = raw_public(private.public_key())
    for wrap in header.wraps:
        if wrap.public_key == mine:
            try:
                kek = _kek(private.exchange(X25519PublicKey.from_public_bytes(wrap.ephemeral)), wrap.ephemeral,
                           mine, header.binding())
                return header, ChaCha20Poly1305(kek).decrypt(wrap.nonce, wrap.wrapped, header.binding())
            except (InvalidTag, ValueError) as exc:
                raise BadRequest("backup", "the key does not open this backup (altered?)") from exc
    raise BadRequest("backup", "this backup is not encrypted to this key")


def open_backup(blob: bytes, content_key: bytes) -> tuple[Header, bytes]:
    """Authenticate the header and decrypt the payload with K; `BadRequest` when altered, truncated or wrong."""
    header = read_header(blob)
    size = _PREFIX.unpack_from(blob)[2]
    prefix = blob[:_PREFIX.size + size]
    if len(content_key) != _KEY_BYTES:
        raise BadRequest("backup", "wrong content key")
    try:
        return header, ChaCha20Poly1305(content_key).decrypt(header.nonce, blob[len(prefix):-_SIG_BYTES], prefix)
    except InvalidTag as exc:
        raise BadRequest("backup", "altered, truncated or a wrong key") from exc


def digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


# ---------------------------------------------------------------------------------------------- recovery key


def new_recovery_key() -> tuple[str, X25519PublicKey]:
    """A printed recovery key (base32 in groups of 4) and its public key; only the public key is kept."""
    private = X25519PrivateKey.generate()
    raw = private.private_bytes_raw()
    text = base64.b32encode(raw).decode("ascii").rstrip("=")
    return "-".join(text[i:i + 4] for i in range(0, len(text), 4)), private.public_key()


def parse_recovery_key(text: str) -> X25519PrivateKey:
    cleaned = "".join(ch for ch in text.upper() if ch.isalnum())
    try:
        raw = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("recovery-key", "not a recovery key (52 letters and digits)") from exc
    if len(raw) != 32:
        raise BadRequest("recovery-key", "not a recovery key (52 letters and digits)")
    return X25519PrivateKey.from_private_bytes(raw)


def restore_key(keys_dir: Path) -> X25519PrivateKey:
    """The lock's X25519 key a restore command's content key is sealed to (`link-restore.key`, 0600, made once)."""
    path = keys_dir / "link-restore.key"
    if not path.exists():
        _write_private(path, X25519PrivateKey.generate().private_bytes_raw())
    raw = path.read_bytes()
    if len(raw) != 32:
        raise BadRequest("link-restore.key", "corrupt (expected 32 bytes)")
    return X25519PrivateKey.from_private_bytes(raw)


# ---------------------------------------------------------------------------------------------- the lock's side


@dataclass(frozen=True)
class Revoked:
    """User refs (ids or names) and code ids that a restore must leave revoked; user ids erased ("delete me");
    credential ids (a card, PIN or offline-code secret) the owner removed or revoked, which only the owner's own list
    carries to a replacement lock (on the same lock its `access_credential_removals` do)."""

    users: frozenset[str] = frozenset()
    codes: frozenset[str] = frozenset()
    erased: frozenset[str] = frozenset()
    credentials: frozenset[str] = frozenset()

    def __or__(self, other: Revoked) -> Revoked:
        return Revoked(self.users | other.users, self.codes | other.codes, self.erased | other.erased,
                       self.credentials | other.credentials)

    @classmethod
    def parse(cls, text: str) -> Revoked:
        """`user:<id|name>,code:<id>,credential:<id>,…` (the owner device's own list, in the signed restore
        command)."""
        found: dict[str, set[str]] = {"user": set(), "code": set(), "credential": set()}
        for item in filter(None, (part.strip() for part in text.split(","))):
            kind, _, ref = item.partition(":")
            if not ref.strip() or kind not in found:
                raise BadRequest("revoked", "expected user:<id or name>, code:<id> and credential:<id>, "
                                            "comma-separated")
            found[kind].add(ref.strip())
        return cls(frozenset(found["user"]), frozenset(found["code"]), credentials=frozenset(found["credential"]))


NO_TEMPLATES = "no templates in this backup (template backup was off): enrol faces and fingers again"


@dataclass(frozen=True)
class Restored:
    """What a restore loaded (counts only) and which backup it was."""

    lock: str
    counter: int
    created_at: str
    rows: dict[str, int]
    revoked_users: int
    revoked_codes: int
    pins_need_reset: int
    templates_restored: int = 0  # face templates and fingers sealed again on this lock
    templates: str = NO_TEMPLATES  # what happened to the biometric references, in words
    recipients_added: int = 0  # the backup's recipients registered again here (see the module docstring)
    revoked_credentials: int = 0  # credentials the owner's list named that the backup still held unrevoked
    recipients_kept_removed: int = 0  # the backup's recipients not registered again: their keys were removed
    lowered_permissions: int = 0  # people the backup held at a higher permission than this lock: kept lower
    kept_restrictions: int = 0  # people who kept this lock's stricter type, rule, PIN age or schedules
    kept_lock_state: tuple[str, ...] = ()  # this lock's own state kept over the backup's (`keep_lock_wide`)

    def to_dict(self) -> dict[str, Any]:
        return {"from_lock": self.lock, "counter": self.counter, "created_at": self.created_at, "rows": self.rows,
                "revoked_users": self.revoked_users, "revoked_codes": self.revoked_codes,
                "pins_need_reset": self.pins_need_reset, "templates_restored": self.templates_restored,
                "references": self.templates,  # not "templates": the audit trail refuses that key
                "backup_recipients_added": self.recipients_added, "revoked_credentials": self.revoked_credentials,
                "backup_recipients_kept_removed": self.recipients_kept_removed,
                "kept_lower_permissions": self.lowered_permissions, "kept_restrictions": self.kept_restrictions,
                "kept_lock_state": list(self.kept_lock_state)}


class Backups:
    """Recipients, counter, local backup files and the revocation list of this lock (tables in limen.db).

    Not thread-safe; one per connection.  `keys_dir` holds the PIN pepper file; `dir` the local blobs (0600).
    """

    def __init__(self, conn: sqlite3.Connection, lock_id: str, keys_dir: Path, directory: Path,
                 data_dir: Path | None = None, audit: AuditSink | None = None) -> None:
        self.conn, self.lock_id, self.keys_dir, self.dir = conn, lock_id, keys_dir, directory
        self.data_dir = data_dir or directory.parent  # holds fingerprints/ (every caller keeps backups/ in it)
        self.audit = audit  # where `prune` records the keys it removes (`LockEraser` sets its own)
        self.pepper_replaced = False  # set by a restore that installed the backup's PIN pepper file
        migrate(conn, "link", LINK_MIGRATIONS)  # link_devices: re-pointed by a restore
        migrate(conn, "link_backup", MIGRATIONS)

    # -------------------------------------------------------------- recipients
    def add_recipient(self, name: str, kind: str, public_key: X25519PublicKey, by: str, at: datetime) -> None:
        """Register an owner device's X25519 key (or the recovery key) that future backups are encrypted to.

        The key belongs to the owner of the paired device named `name` when there is one (and to that device:
        unpairing it removes the key), else to `by`; it is removed when that person is no longer an enabled
        owner (`prune`).  An owner registering a key that was removed before takes it off the removed list."""
        if not _recipient_name(name):
            raise BadRequest("name", f"1-{_NAME_MAX} printable characters")
        if kind not in (RecipientKind.DEVICE, RecipientKind.RECOVERY):
            raise BadRequest("kind", "device or recovery")
        raw = raw_public(public_key)
        device = self.conn.execute("SELECT name, owner FROM link_devices WHERE name = ?", (name,)).fetchone() \
            if kind == RecipientKind.DEVICE else None
        try:
            with transaction(self.conn):
                if kind == RecipientKind.RECOVERY:  # one recovery key at a time: a new one replaces the old
                    self.conn.execute("DELETE FROM backup_recipients WHERE kind = 'recovery'")
                self.conn.execute("INSERT INTO backup_recipients(name, kind, public_key, added_at, added_by, person, "
                                  "device) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                  (name, kind, raw, at.isoformat(), by, by if device is None else device[1],
                                   None if device is None else device[0]))
                self.conn.execute("DELETE FROM backup_removed_keys WHERE key_hash = ?", (_removed_hash(raw),))
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"recipient {name!r} or this key is already registered") from exc

    def remove_recipient(self, name: str, by: str, at: datetime) -> RemovedKey:
        """Remove one key (an owner's decision, confirmed in person by the caller); `NotFound` when none has
        that name.  Later backups are not encrypted to it and no restore registers it again; the backups made
        before stay readable with it (`AFTER_REMOVAL` says what to do)."""
        with transaction(self.conn):
            removed = self._remove("name = ?", (name,), by, at, Removal.BY_OWNER)
        if not removed:
            raise NotFound(f"no backup key {name!r}")
        return removed[0]

    def remove_keys_of(self, person: str | None, by: str, at: datetime, reason: Removal, *,
                       device: str | None = None) -> list[RemovedKey]:
        """Remove the keys of `person` (theirs, or their paired devices') or of the paired `device` (a device key
        of its name registered before it was paired too); caller's transaction (an erasure's, or the caller's own)."""
        if device is not None:
            return self._remove("device = ? OR (device IS NULL AND kind = 'device' AND name = ?)", (device, device),
                                by, at, reason)
        return self._remove("person = ? OR coalesce(device, CASE WHEN kind = 'device' THEN name END) IN "
                            "(SELECT name FROM link_devices WHERE owner = ?)", (person, person), by, at, reason)

    def prune(self, at: datetime) -> list[RemovedKey]:
        """Remove the keys whose person is no longer an enabled owner (demoted, disabled, removed, erased) or
        whose paired device is gone; audited when this has an audit sink.  Every backup is made after it."""
        owners = set(holdings.owner_ids(self.conn)) - holdings.disabled_ids(self.conn)
        with transaction(self.conn):
            rows = self.conn.execute("SELECT name, person, device, device IN (SELECT name FROM link_devices) "
                                     "FROM backup_recipients").fetchall()
            removed: list[RemovedKey] = []
            for name, person, device, paired in rows:
                if person is not None and person not in owners:
                    removed += self._remove("name = ?", (name,), "system", at, Removal.NOT_AN_OWNER)
                elif device is not None and not paired:
                    removed += self._remove("name = ?", (name,), "system", at, Removal.DEVICE_UNPAIRED)
        if self.audit is not None:
            for key in removed:
                self.audit.append(removal_event(key, "system", at, "backup"))
        return removed

    def _remove(self, where: str, args: tuple[str | None, ...], by: str, at: datetime,
                reason: Removal) -> list[RemovedKey]:
        """Delete the matching keys and put each on the removed list (caller's transaction)."""
        rows = self.conn.execute(f"SELECT name, kind, public_key FROM backup_recipients WHERE {where}",  # noqa: S608
                                 args).fetchall()
        for name, kind, raw in rows:
            self.conn.execute("INSERT OR REPLACE INTO backup_removed_keys VALUES (?, ?, ?, ?, ?)",
                              (_removed_hash(bytes(raw)), kind, at.isoformat(), by, reason.value))
            self.conn.execute("DELETE FROM backup_recipients WHERE name = ?", (name,))
        return [RemovedKey(str(r[0]), str(r[1]), reason) for r in rows]

    def removed_keys(self) -> list[dict[str, str]]:
        """The removed list (kind, when, by whom, why; no key: a hash of it is kept), oldest first."""
        return [dict(r) for r in self.conn.execute("SELECT kind, removed_at, removed_by, reason "
                                                   "FROM backup_removed_keys ORDER BY removed_at")]

    def _removed(self) -> frozenset[str]:
        return frozenset(r[0] for r in self.conn.execute("SELECT key_hash FROM backup_removed_keys"))

    def forget_recipients(self) -> int:
        """Delete every backup recipient key and the removed list (decommission; caller's transaction); return
        how many keys."""
        self.conn.execute("DELETE FROM backup_removed_keys")
        return int(self.conn.execute("DELETE FROM backup_recipients").rowcount)

    def recipients(self) -> list[Recipient]:
        return [Recipient(r[0], r[1], X25519PublicKey.from_public_bytes(bytes(r[2])))
                for r in self.conn.execute("SELECT name, kind, public_key FROM backup_recipients ORDER BY name")]

    def registered(self) -> list[dict[str, Any]]:
        """Every key with whom it belongs to (`limen link backup-keys`): name, kind, person, device, added."""
        return [dict(r) for r in self.conn.execute("SELECT name, kind, person, device, added_at, added_by "
                                                   "FROM backup_recipients ORDER BY name")]

    # -------------------------------------------------------------- revocations
    def note_revocation(self, kind: str, ref: str, at: datetime) -> None:
        """Remember a revoked user or code so that no later restore brings it back."""
        self.conn.execute("INSERT OR IGNORE INTO backup_revocations VALUES (?, ?, ?)", (kind, ref, at.isoformat()))

    def revoked(self) -> Revoked:
        rows = self.conn.execute("SELECT kind, ref FROM backup_revocations").fetchall()
        codes = holdings.revoked_code_ids(self.conn)
        removed = holdings.removed_user_ids(self.conn)  # by the owner
        return Revoked(frozenset(r[1] for r in rows if r[0] == "user"),
                       frozenset({r[1] for r in rows if r[0] == "code"} | codes),
                       frozenset({r[1] for r in rows if r[0] == "erased"} | removed))

    # -------------------------------------------------------------- template backup (the owner's opt-in)
    def templates_opted_in(self) -> bool:
        """Whether backups carry the biometric templates (the owner's choice; off by default)."""
        return bool(self.conn.execute("SELECT templates FROM backup_state").fetchone()[0])

    def set_templates(self, enabled: bool, by: str, at: datetime, audit: AuditSink) -> None:
        """Opt in to (or out of) template backups; audited as a configuration change."""
        with transaction(self.conn):
            self.conn.execute("UPDATE backup_state SET templates = ?", (int(enabled),))
        audit.append(Event(EventKind.CONFIG_CHANGE, at, actor=by, subject="lock", source="backup",
                           reason="template backup " + ("on" if enabled else "off"),
                           data={"backup_templates": enabled}))

    # -------------------------------------------------------------- making backups
    def snapshot(self, at: datetime) -> bytes:
        """The payload (canonical JSON) of the current state; secrets in it are only ever sent encrypted."""
        tables = {name: [_row(r) for r in rows]
                  for name, rows in (people.backup_rows(self.conn) | holdings.backup_rows(self.conn)).items()}
        box = box_for(self.conn)
        for row in tables["access_credentials"]:
            if row["cred_type"] == CredentialType.OFFLINE_CODE.value and sealed_secret(_bytes(row["secret"])):
                if box is None:
                    raise BadRequest("backup", "the vault is not open: offline-code secrets cannot be read")
                try:
                    row["secret"] = {"b64": _b64(box.unseal(f"offline-code:{row['id']}", _bytes(row["secret"])))}
                except LimenError as exc:
                    raise BadRequest("backup", f"offline-code secret {row['id']} cannot be unsealed ({exc})") from exc
        pepper = self.keys_dir / "pin-pepper.key"
        revoked = self.revoked()
        devices = [{"public_key": _b64(bytes(r[0])), "owner": r[1], "counter": int(r[2])}
                   for r in self.conn.execute("SELECT public_key, owner, counter FROM link_devices")]
        keys = [{"public_key": _b64(bytes(r[0])), "person": r[1]}  # whose each recipient is, for a restore
                for r in self.conn.execute("SELECT public_key, person FROM backup_recipients")]
        return canonical({"v": FORMAT_VERSION, "lock": self.lock_id, "at": at.isoformat(),
                          "schemas": self._schemas(), "tables": tables,
                          "pepper": _b64(pepper.read_bytes()) if pepper.exists() else None,
                          "revoked": {"users": sorted(revoked.users), "codes": sorted(revoked.codes),
                                      "erased": sorted(revoked.erased)},
                          "devices": devices, "recipients": keys, "removed_keys": sorted(self._removed()),
                          "templates": _template_section(self.conn, self.data_dir)
                          if self.templates_opted_in() else False})

    def make(self, at: datetime) -> tuple[Path, bytes]:
        """Snapshot, encrypt to every recipient, write `dir/<counter>.limenbak` (0600); the counter only grows.

        The keys of people who are no longer enabled owners, and of unpaired devices, are removed first (`prune`)."""
        self.prune(at)
        recipients = self.recipients()
        with transaction(self.conn):  # one consistent snapshot, one counter
            payload = self.snapshot(at)
            counter = int(self.conn.execute("SELECT counter FROM backup_state").fetchone()[0]) + 1
            blob = seal_backup(payload, self.lock_id, counter, at, recipients, load_or_create_key(self.keys_dir))
            path = self.dir / f"{counter:08d}.limenbak"
            _write_private(path, blob)
            self.conn.execute("UPDATE backup_state SET counter = ?", (counter,))
            self.conn.execute("INSERT INTO backup_files VALUES (?, ?, ?, ?, NULL)",
                              (counter, path.name, digest(blob), at.isoformat()))
        return path, blob

    def counter(self) -> int:
        """The counter of the newest backup made (or restored) on this lock; 0 before the first."""
        return int(self.conn.execute("SELECT counter FROM backup_state").fetchone()[0])

    def due(self, at: datetime, every_hours: float) -> bool:
        """Whether a scheduled backup is due: none made yet, or the newest is `every_hours` old (0: never due)."""
        if every_hours <= 0 or not self.recipients():
            return False
        row = self.conn.execute("SELECT max(created_at) FROM backup_files").fetchone()
        return row[0] is None or (at - datetime.fromisoformat(row[0])).total_seconds() >= every_hours * 3600

    def pending_uploads(self) -> list[tuple[int, Path]]:
        rows = self.conn.execute("SELECT counter, file FROM backup_files WHERE uploaded_at IS NULL ORDER BY counter")
        return [(int(r[0]), self.dir / r[1]) for r in rows]

    def mark_uploaded(self, counter: int, at: datetime) -> None:
        self.conn.execute("UPDATE backup_files SET uploaded_at = ? WHERE counter = ?", (at.isoformat(), counter))

    def upload_pending(self, publish: Callable[[bytes], None], at: datetime) -> int:
        """Publish every backup not yet acknowledged (`publish` raises `LinkError` when offline); return how many."""
        sent = 0
        for counter, path in self.pending_uploads():
            publish(path.read_bytes())
            with transaction(self.conn):
                self.mark_uploaded(counter, at)
            sent += 1
        return sent

    def local_files(self) -> list[dict[str, Any]]:
        return [{"counter": int(r[0]), "file": r[1], "sha256": r[2], "created_at": r[3], "uploaded_at": r[4]}
                for r in self.conn.execute("SELECT counter, file, sha256, created_at, uploaded_at FROM backup_files "
                                           "ORDER BY counter")]

    def delete_local(self) -> int:
        """Delete every local backup file (they hold everyone's data); return how many."""
        files = self.local_files()
        for item in files:
            (self.dir / item["file"]).unlink(missing_ok=True)
        with transaction(self.conn):
            self.conn.execute("DELETE FROM backup_files")
        if self.dir.exists():
            fsync_dir(self.dir)
        return len(files)

    # -------------------------------------------------------------- restoring
    def restore(self, blob: bytes, content_key: bytes, at: datetime, *, from_lock: str,
                revoked: Revoked | None = None, on_removed: Callable[[str], object] | None = None,
                lock_keys: Mapping[str, Ed25519PublicKey] | None = None) -> Restored:
        """Replace this lock's people, credentials, schedules and settings with the backup's, in one transaction.

        `from_lock` is the lock the owner says the backup comes from (this lock's id unless it replaces
        another); revocations are merged (see the module docstring).  `on_removed(user_id)` is called after
        the commit for each user of this lock the backup does not have (to erase their templates).
        `lock_keys` are the audit public keys (by key id) of the lock that made the backup, as the owner knows
        them; this lock's own audit keys are trusted for its own backups.  An unsigned or forged blob is refused.
        A backup made at an older schema is brought forward through the real migrations first (outside this
        lock's database); one made by newer software is refused ("update this lock first").
        """
        keys = dict(known_public_keys(self.keys_dir)) if read_header(blob).lock == self.lock_id else {}
        verify_origin(blob, {**keys, **(lock_keys or {})})
        header, payload = open_backup(blob, content_key)
        if header.lock != from_lock:
            raise BadRequest("backup", f"a backup of another lock ({header.lock!r}, not {from_lock!r})")
        data = _parse_payload(payload, header)
        self.prune(at)  # keys of people demoted or gone here go before the people are replaced
        before = set(people.ids(self.conn))
        try:
            tables = _at_schema(data["tables"], data["schemas"], self._schemas())  # no change to this lock yet
            restored, self.pepper_replaced = self._load(data, tables, header, revoked or Revoked(), at)
        except (TypeError, KeyError, ValueError, AttributeError, sqlite3.DataError) as exc:  # rolled back
            raise BadRequest("backup", f"malformed contents ({type(exc).__name__})") from exc
        if on_removed is not None:
            for user_id in before - set(people.ids(self.conn)):
                on_removed(user_id)
        return _restore_templates(self.conn, self.data_dir, data.get("templates"), restored, at)

    def _load(self, data: dict[str, Any], tables: Mapping[str, list[dict[str, Any]]], header: Header,
              revoked: Revoked, at: datetime) -> tuple[Restored, bool]:
        """The restore's one transaction (any exception rolls it all back); True when the pepper was installed."""
        listed = data["revoked"]
        revoked = revoked | self.revoked() | Revoked(
            frozenset(listed.get("users", [])), frozenset(listed.get("codes", [])), frozenset(listed.get("erased", [])))
        pepper = _unb64(data["pepper"], "pepper") if data["pepper"] else None
        with transaction(self.conn):
            disabled = Revoked(holdings.disabled_ids(self.conn))  # disabled here (console, CLI) stay so
            retired = holdings.retired_credentials(self.conn)  # and credentials revoked, PINs changed here
            levels = holdings.permissions(self.conn)  # and so does a permission lowered here
            limits = holdings.restrictions(self.conn)  # and a user type, rule, PIN age or schedule tightened here
            own = holdings.lock_wide(self.conn)  # and the lockout, mode, stricter settings, codes and uses spent
            people.remove_everyone(self.conn)  # cascades to access rows, credentials, schedules, consents
            holdings.clear_for_restore(self.conn)
            loaded = {name: self._rows(name, tables.get(name, [])) for name in TABLES}
            try:  # each owner inserts its own rows, inside this one transaction
                rows = people.restore_rows(self.conn, loaded) | holdings.restore_rows(self.conn, loaded)
            except sqlite3.IntegrityError as exc:
                raise BadRequest("backup", f"inconsistent rows ({exc})") from exc
            users, codes = self._apply(revoked | disabled, at)
            holdings.revoke_retired(self.conn, retired)
            lowered = holdings.keep_lower_permissions(self.conn, levels)
            restricted = holdings.keep_restrictions(self.conn, limits)
            kept = holdings.keep_lock_wide(self.conn, own)
            credentials = holdings.revoke_credential_ids(self.conn, revoked.credentials)  # the owner's list
            self._repoint_devices(data.get("devices", []))
            recipients, kept_out = self._add_recipients(header, data, at)
            self.conn.execute("UPDATE backup_state SET counter = max(counter, ?), restored_from = ?, "
                              "restored_counter = ?", (header.counter, header.lock, header.counter))
            for kind, refs in (("user", revoked.users), ("code", revoked.codes), ("erased", revoked.erased)):
                for ref in refs:
                    self.note_revocation(kind, ref, at)
            pins = self._pins_need_reset(pepper)
            if pepper is not None and pins == 0:
                _write_private(self.keys_dir / "pin-pepper.key", pepper)  # last: the rows are in, then the key
        restored = Restored(header.lock, header.counter, header.created_at, rows, users, codes, pins,
                            recipients_added=recipients, revoked_credentials=credentials,
                            recipients_kept_removed=kept_out, lowered_permissions=lowered,
                            kept_restrictions=restricted, kept_lock_state=kept)
        return restored, pepper is not None and pins == 0

    def _rows(self, name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A backup's rows of table `name` as its owner inserts them: this lock's columns, values decoded,
        offline-code secrets sealed under this lock's vault."""
        columns = table_columns(self.conn, name)
        out = []
        for row in rows:
            if sorted(row) != sorted(columns):
                raise BadRequest("backup", f"table {name}: columns differ from this lock's")
            values = {c: _value(row[c]) for c in columns}
            if name == "access_credentials" and row["cred_type"] == CredentialType.OFFLINE_CODE.value:
                values["secret"] = self._reseal(str(row["id"]), _value(row["secret"]))
            out.append(values)
        return out

    def _reseal(self, cred_id: str, secret: object) -> bytes:
        """Seal an offline-code secret under this lock's vault (kept clear only where no vault is open, as the
        access store itself does)."""
        if not isinstance(secret, bytes):
            raise BadRequest("backup", "an offline-code secret is not bytes")
        box = box_for(self.conn)
        return secret if box is None else box.seal(f"offline-code:{cred_id}", secret)

    def _repoint_devices(self, devices: list[dict[str, Any]]) -> None:
        """A device paired here that the backup knows (same key) acts again for its owner in the backup, and
        keeps the higher counter; a device the backup knows but this lock has not paired stays unpaired."""
        for device in devices:  # link_devices: this package's own table
            self.conn.execute("UPDATE link_devices SET owner = ?, counter = max(counter, ?) WHERE public_key = ?",
                              (str(device["owner"]), int(device["counter"]), _unb64(device["public_key"], "device")))

    def _add_recipients(self, header: Header, data: dict[str, Any], at: datetime) -> tuple[int, int]:
        """Register the backup's recipients this lock lacks (public keys from the signed header); return how many,
        and how many were left out because they were removed (here, or on the lock that made the backup).

        One with a name or key already registered here is left out, and so is the backup's recovery key when
        this lock has its own (made here in person, so newer).  Each key belongs to the owner of the paired
        device of its name here, else to the person the backup says; the lock's keys whose person the restore
        removed belong to their device's owner, and the recovery key to no one in particular."""
        listed = {str(h) for h in data.get("removed_keys", [])}
        if any(len(h) != 64 or not all(c in "0123456789abcdef" for c in h) for h in listed):
            raise BadRequest("backup", "malformed removed-key list")
        removed = self._removed() | listed
        for key_hash in removed - self._removed():  # the backup's removed list joins this lock's
            self.conn.execute("INSERT OR IGNORE INTO backup_removed_keys VALUES (?, 'key', ?, ?, ?)",
                              (key_hash, at.isoformat(), f"restore:{header.lock}", "removed before the backup"))
        whose = {str(k["public_key"]): k.get("person") for k in data.get("recipients", [])}
        has_recovery = self.conn.execute("SELECT 1 FROM backup_recipients WHERE kind = ?",
                                         (RecipientKind.RECOVERY,)).fetchone() is not None
        added = kept_out = 0
        for wrap in header.wraps:
            if wrap.kind not in (RecipientKind.DEVICE, RecipientKind.RECOVERY) or len(wrap.public_key) != 32 \
                    or not _recipient_name(wrap.name):
                raise BadRequest("backup", "malformed recipient in the header")
            if _removed_hash(wrap.public_key) in removed:
                kept_out += 1
                continue
            if wrap.kind == RecipientKind.RECOVERY and has_recovery:
                continue
            cursor = self.conn.execute(
                "INSERT OR IGNORE INTO backup_recipients(name, kind, public_key, added_at, added_by, person, device) "
                "VALUES (?, ?, ?, ?, ?, ?, NULL)", (wrap.name, wrap.kind, wrap.public_key, at.isoformat(),
                                                    f"restore:{header.lock}", whose.get(_b64(wrap.public_key))))
            added += cursor.rowcount
            has_recovery = has_recovery or (wrap.kind == RecipientKind.RECOVERY and cursor.rowcount > 0)
        self.conn.execute("UPDATE backup_recipients SET device = name WHERE kind = 'device' AND device IS NULL "
                          "AND name IN (SELECT name FROM link_devices)")
        self.conn.execute("UPDATE backup_recipients SET person = (SELECT owner FROM link_devices "
                          "WHERE link_devices.name = backup_recipients.device) WHERE device IS NOT NULL")
        everyone = set(people.ids(self.conn))
        for name, person in self.conn.execute("SELECT name, person FROM backup_recipients WHERE kind = 'recovery' "
                                              "AND person IS NOT NULL").fetchall():
            if person not in everyone:  # made by someone this restore replaced: the lock's, kept
                self.conn.execute("UPDATE backup_recipients SET person = NULL WHERE name = ?", (name,))
        return added, kept_out

    def _apply(self, revoked: Revoked, when: datetime) -> tuple[int, int]:
        people.remove_ids(self.conn, revoked.erased)  # a person erased ("delete me") never comes back
        users = sum(holdings.disable(self.conn, people.ids_matching(self.conn, ref)) for ref in sorted(revoked.users))
        codes = holdings.revoke_codes(self.conn, sorted(revoked.codes), when, "restore")
        return users, codes

    def _pins_need_reset(self, pepper: bytes | None) -> int:
        """PIN credentials that will not verify here: the backup's pepper is in a token, or this lock's is."""
        if pepper is not None and not (self.keys_dir / "pin-pepper.token").exists():
            return 0  # the backup's pepper file is installed with the rows
        return holdings.count_credentials(self.conn, CredentialType.PIN)

    def _schemas(self) -> dict[str, int]:
        versions = {c: schema_version(self.conn, c) for c in _SCHEMAS}
        return {c: v for c, v in versions.items() if v is not None}


def _parse_payload(payload: bytes, header: Header) -> dict[str, Any]:
    try:
        data = json.loads(payload.decode("utf-8"))
        ok = (isinstance(data, dict) and data.get("v") == FORMAT_VERSION and data.get("lock") == header.lock
              and isinstance(data.get("tables"), dict) and isinstance(data.get("schemas"), dict)
              and isinstance(data.get("revoked"), dict))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("backup", "the payload is not a backup") from exc
    if not ok:
        raise BadRequest("backup", "the payload is not a backup of this format")
    return dict(data)


def _at_schema(tables: Mapping[str, list[dict[str, Any]]], declared: object,
               here: dict[str, int]) -> Mapping[str, list[dict[str, Any]]]:
    """The backup's rows in this lock's schema: as they are when made at it, else brought forward (`_forward`).

    A backup made by newer software is refused (this lock cannot know its columns), and so is one that names
    a table no backup carries or declares versions of other components than this lock's."""
    versions = _declared(declared, here)
    if any(v > here[c] for c, v in versions.items()):  # before the tables: a newer backup may carry new ones
        raise BadRequest("backup", f"made by newer software (schema {versions}, this lock has {here}): "
                                   "update this lock first")
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise BadRequest("backup", f"tables no backup carries: {', '.join(map(str, unknown))}")
    return tables if versions == here else _forward(tables, versions)


def _declared(declared: object, here: dict[str, int]) -> dict[str, int]:
    """The per-component schema versions a backup declares: one positive integer for each of this lock's."""
    if not (isinstance(declared, dict) and set(declared) == set(here)
            and all(type(v) is int and v >= 1 for v in declared.values())):
        raise BadRequest("backup", f"declares schema {declared!r}, not versions of {', '.join(sorted(here))}")
    return {c: int(declared[c]) for c in _SCHEMAS if c in here}


def _forward(tables: Mapping[str, list[dict[str, Any]]],
             versions: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
    """Rows made at older `versions`, checked against that schema and carried through the remaining migrations
    in a private in-memory database; read back as a backup's rows (bytes as base64) in the current layout."""
    scratch = scratch_db()
    try:
        for component in versions:
            migrate(scratch, component, migrations_of(component)[:versions[component]])
        with transaction(scratch):
            for name in TABLES:
                insert_rows(scratch, name, _declared_rows(scratch, name, tables.get(name, []), versions))
        for component in versions:
            migrate(scratch, component, migrations_of(component))
        return {name: [_row(r) for r in table_rows(scratch, name)] for name in TABLES}
    except sqlite3.IntegrityError as exc:
        raise BadRequest("backup", f"inconsistent rows ({exc})") from exc
    except sqlite3.DatabaseError as exc:
        raise BadRequest("backup", f"cannot be brought forward from schema {versions} ({exc})") from exc
    finally:
        scratch.close()


def _declared_rows(scratch: sqlite3.Connection, name: str, rows: list[dict[str, Any]],
                   versions: dict[str, int]) -> list[dict[str, Any]]:
    """A backup's rows of table `name`, values decoded, if they have exactly that table's columns at `versions`."""
    columns = table_columns(scratch, name)  # none: the table is not in that schema
    if rows and not columns:
        raise BadRequest("backup", f"table {name} is not in schema {versions}")
    for row in rows:
        if sorted(row) != sorted(columns):
            raise BadRequest("backup", f"table {name}: columns differ from schema {versions}")
    return [{c: _value(row[c]) for c in columns} for row in rows]


def _row(row: sqlite3.Row) -> dict[str, Any]:
    return {k: ({"b64": _b64(bytes(row[k]))} if isinstance(row[k], (bytes, memoryview)) else row[k])
            for k in row.keys()}  # noqa: SIM118 - sqlite3.Row


def _value(value: Any) -> Any:
    if isinstance(value, dict):
        return _unb64(value.get("b64"), "bytes")
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise BadRequest("backup", "unexpected value in a row")


def _bytes(value: Any) -> bytes:
    return bytes(_value(value)) if isinstance(value, dict) else bytes(value)


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, 0600, durably."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


# ---------------------------------------------------------------------------------------------- templates (opt-in)

def _template_section(conn: sqlite3.Connection, data_dir: Path) -> dict[str, Any]:
    """The vault's transform secret, face payloads, fingers and enrolment rows (see the module docstring)."""
    store, box = templates_for(conn), box_for(conn)
    if store is None or box is None:
        raise BadRequest("backup", "template backup is on but the vault is not open")
    material = store.export_for_backup()
    fingers = FingerReferences(references_folder(data_dir), box).export_for_backup()
    try:
        return {"bits": material.bits, "transform": _b64(bytes(material.transform)),
                "faces": [{"user": u, "modality": m, "payload": _b64(bytes(p))} for u, m, p in material.records],
                "fingers": [{"user": u, "position": n, "record": _b64(bytes(p))} for u, n, p in fingers],
                "enrolments": [_row(r) for r in people.enrolment_rows(conn)]}
    finally:  # the JSON text made of them is encrypted at once; these buffers are zeroed now
        material.wipe()
        for _, _, plain in fingers:
            plain[:] = bytes(len(plain))


def _restore_templates(conn: sqlite3.Connection, data_dir: Path, section: object, restored: Restored,
                       at: datetime) -> Restored:
    """Seal the backup's templates under this lock's keys for the restored people whose consent still runs."""
    if not isinstance(section, dict):
        return restored
    store, box = templates_for(conn), box_for(conn)
    if store is None or box is None:
        return replace(restored, templates="templates not restored (the vault is not open): enrol again")
    material = TemplateExport(bytearray(), 0)
    try:
        material = TemplateExport(bytearray(_unb64(section["transform"], "transform")), int(section["bits"]),
                                  [(str(f["user"]), str(f["modality"]), bytearray(_unb64(f["payload"], "face")))
                                   for f in section["faces"]])
        fingers = [(str(f["user"]), int(f["position"]), _unb64(f["record"], "finger")) for f in section["fingers"]]
        face_ok, finger_ok = people.consents_running(conn, "face", at), people.consents_running(conn, "fingerprint", at)
        faces = store.import_from_backup(material, face_ok)
        prints = FingerReferences(references_folder(data_dir), box).import_from_backup(fingers, finger_ok)
        kept = {(u, m) for u, m, _ in material.records if u in face_ok} | \
               {(u, "fingerprint") for u, _, _ in fingers if u in finger_ok}
        people.restore_enrolments(conn, [r for r in section["enrolments"] if (r["user_id"], r["modality"]) in kept])
    except (LimenError, KeyError, TypeError, ValueError, sqlite3.DatabaseError) as exc:
        reason = exc.reason if isinstance(exc, BadRequest) else type(exc).__name__
        return replace(restored, templates=f"templates not restored ({reason}): enrol again")
    finally:
        material.wipe()
    return replace(restored, templates_restored=faces + prints,
                   templates=f"{faces} face templates and {prints} fingers sealed again under this lock's keys")

