"""Credentials: PINs (peppered Argon2id, history kept), RFID digests, offline-code secrets, biometric links.

Every change runs in one transaction and is audited by the caller's context;
no PIN, UID or secret reaches the audit trail.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from limen import thresholds as T
from limen.access import offline, pins, rows
from limen.access.authority import check_actor
from limen.access.context import AccessContext
from limen.access.directory import ensure_row, find_user
from limen.access.model import Credential, CredentialType, PermissionLevel, UserType
from limen.access.policy import rfid_digest
from limen.access.sealing import opened, seal_new_secret
from limen.audit.event import EventKind
from limen.db import transaction
from limen.errors import BadRequest, Conflict, NotFound


def list_credentials(conn: sqlite3.Connection, user_id: str | None = None) -> list[Credential]:
    found = conn.execute("SELECT * FROM access_credentials ORDER BY cred_type, cred_index").fetchall()
    return opened(conn, [rows.credential_of(r) for r in found if user_id is None or r["user_id"] == user_id])


def add_credential(
    ctx: AccessContext,
    ref: str,
    ctype: CredentialType,
    actor: str,
    at: datetime,
    *,
    secret: str | None = None,
    backup: bool = False,
    offline_max_uses: int | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    max_uses: int | None = None,
    expire_after_s: int | None = None,
) -> Credential:
    """Link a credential to a user.  `secret` is the PIN or RFID UID (never stored in the clear)."""
    valid_until = ctx.until(valid_until)  # issued by an API token: ends by the token's expiry
    _validate_new(ctype, secret, valid_from, valid_until, max_uses, expire_after_s, offline_max_uses)
    conn = ctx.conn
    with transaction(conn):
        user = find_user(conn, ref)
        ensure_row(conn, user, actor, at)
        check_actor(conn, actor, touching=user.permission if user.user_id != actor else None)
        if user.user_type is UserType.DISPOSABLE:
            max_uses = 1
        if user.user_type is UserType.EXPIRING and expire_after_s is None:
            raise BadRequest("expire_after_s", "an expiring user's credential needs --expires-after")
        if backup and offline_max_uses is None:
            offline_max_uses = T.BACKUP_PIN_OFFLINE_USES
        if ctype is CredentialType.PIN:
            cred_id = insert_pin(ctx, user.user_id, secret or "", actor, at)
        else:
            stored = _secret_for(conn, ctype, secret)
            cred_id = _insert_credential(conn, user.user_id, ctype, stored, None, actor, at)
        conn.execute(
            "UPDATE access_credentials SET backup = ?, offline_max_uses = ?, valid_from = ?, valid_until = ?,"
            " max_uses = ?, expire_after_s = ?, issued_token = ? WHERE id = ?",
            (int(backup), offline_max_uses, rows.iso(valid_from), rows.iso(valid_until), max_uses, expire_after_s,
             ctx.token.token_id if ctx.token else None, cred_id))
    cred = next(c for c in list_credentials(conn, user.user_id) if c.id == cred_id)
    ctx.emit(EventKind.CREDENTIAL_CHANGE, at, actor, user.user_id, "credential added",
             credential_id=cred.id, type=ctype.value, index=cred.index, backup=backup,
             max_uses=max_uses, valid_until=rows.iso(valid_until))
    return cred


def _validate_new(ctype: CredentialType, secret: str | None, valid_from: datetime | None,
                  valid_until: datetime | None, max_uses: int | None, expire_after_s: int | None,
                  offline_max_uses: int | None) -> None:
    if valid_from and valid_until and valid_until <= valid_from:
        raise BadRequest("valid_until", "must be after valid_from")
    for field_name, value, high in (("max_uses", max_uses, 1_000_000),
                                    ("expire_after_s", expire_after_s, 366 * 86400),
                                    ("offline_max_uses", offline_max_uses, 1000)):
        if value is not None and not 1 <= value <= high:
            raise BadRequest(field_name, f"must be 1..{high}")
    if ctype is CredentialType.PIN:
        pins.validate_pin(secret or "")
    elif ctype is CredentialType.RFID and not (secret and secret.isprintable() and 4 <= len(secret) <= 64):
        raise BadRequest("uid", "an RFID UID has 4-64 printable characters")
    elif ctype is CredentialType.MECHANICAL_KEY:
        raise BadRequest("type", "the mechanical key is not enrolled; its sensor is recorded")


def _secret_for(conn: sqlite3.Connection, ctype: CredentialType, secret: str | None) -> bytes:
    if ctype is CredentialType.RFID:
        return rfid_digest(secret or "", rows.lock_salt(conn))
    if ctype is CredentialType.OFFLINE_CODE:
        return offline.new_secret()
    return b"\x00"  # face / fingerprint: a link; the template lives in the vault


class PinTaken(Conflict):
    """The PIN being stored is another person's: refused, and a right guess of a door PIN for whoever asked
    (`attempts.issuing_pin` spends a keypad try for it)."""


def insert_pin(ctx: AccessContext, user_id: str, pin: str, actor: str, at: datetime) -> str:
    """Store a new PIN for `user_id` (caller's transaction); refuses a recent or another user's PIN."""
    conn = ctx.conn
    hasher = pins.PinHasher(ctx.pepper, rows.lock_salt(conn))
    matcher = hasher.matcher()
    history = conn.execute(
        "SELECT secret FROM access_pin_history WHERE user_id = ? ORDER BY id DESC LIMIT ?",
        (user_id, T.PIN_HISTORY_DEPTH)).fetchall()
    if any(matcher.matches(pin, bytes(r[0])) for r in history):
        raise BadRequest("pin", f"this PIN was used recently (last {T.PIN_HISTORY_DEPTH} are refused)")
    taken = conn.execute("SELECT secret FROM access_credentials WHERE cred_type = 'pin' AND pin_length = ?",
                         (len(pin),)).fetchall()
    if any(matcher.matches(pin, bytes(r[0])) for r in taken):
        raise PinTaken("duplicate credential: choose another PIN")
    cred_id = _insert_credential(conn, user_id, CredentialType.PIN, hasher.secret_for(pin), len(pin), actor, at)
    if ctx.token is not None:  # a PIN an API token set: the token's, and ends by its expiry
        conn.execute("UPDATE access_credentials SET issued_token = ?, valid_until = ? WHERE id = ?",
                     (ctx.token.token_id, rows.iso(ctx.until(None)), cred_id))
    return cred_id


def upgrade_pin(ctx: AccessContext, cred: Credential, digits: str) -> None:
    """Rewrite an old-format PIN hash (lock-wide salt, no pepper) now that its PIN was just entered."""
    if cred.type is not CredentialType.PIN or not pins.needs_upgrade(cred.secret) or not cred.pin_length:
        return
    hasher = pins.PinHasher(ctx.pepper, rows.lock_salt(ctx.conn))
    for candidate in pins.entry_candidates(digits, {cred.pin_length}):
        if hasher.matcher().matches(candidate, cred.secret):
            ctx.conn.execute("UPDATE access_credentials SET secret = ? WHERE id = ?",
                             (hasher.secret_for(candidate), cred.id))
            return


def _insert_credential(conn: sqlite3.Connection, user_id: str, ctype: CredentialType, secret: bytes,
                       pin_length: int | None, actor: str, at: datetime) -> str:
    index = conn.execute("SELECT COALESCE(MAX(cred_index), 0) + 1 FROM access_credentials "
                         "WHERE cred_type = ?", (ctype.value,)).fetchone()[0]
    if index > rows.MAX_USERS:
        raise BadRequest("index", "no free credential slot")
    cred_id = f"{ctype.value}:{index}"
    if ctype is CredentialType.OFFLINE_CODE:
        secret = seal_new_secret(conn, cred_id, secret)  # VaultErased after a zeroize: one clear error
    try:
        conn.execute(
            "INSERT INTO access_credentials(id, user_id, cred_type, cred_index, secret, pin_length,"
            " created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (cred_id, user_id, ctype.value, index, secret, pin_length, rows.iso(at), actor))
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"duplicate credential ({ctype.value})") from exc
    return cred_id


def remove_credential(ctx: AccessContext, cred_id: str, actor: str, at: datetime) -> None:
    """Delete a credential; a removed PIN joins the user's PIN history (reuse is refused), and the credential's
    id, person and creation time are remembered (no secret) so that a restore keeps it refused."""
    conn = ctx.conn
    with transaction(conn):
        row = conn.execute("SELECT * FROM access_credentials WHERE id = ?", (cred_id,)).fetchone()
        if row is None:
            raise NotFound(f"no credential {cred_id!r}")
        owner = conn.execute("SELECT permission FROM access_users WHERE user_id = ?", (row["user_id"],)).fetchone()
        touching = PermissionLevel(owner["permission"]) if owner and row["user_id"] != actor else None
        check_actor(conn, actor, touching=touching)
        if row["cred_type"] == CredentialType.PIN.value:
            _retire_pin(conn, row["user_id"], bytes(row["secret"]), at)
        _delete_remembered(conn, row, actor, at)
    ctx.emit(EventKind.CREDENTIAL_CHANGE, at, actor, row["user_id"], "credential removed",
             credential_id=cred_id, type=row["cred_type"])


def revoke_credential(ctx: AccessContext, cred_id: str, actor: str, at: datetime) -> None:
    """Keep the credential on record but refuse it from the next attempt on."""
    conn = ctx.conn
    with transaction(conn):
        row = conn.execute("SELECT user_id FROM access_credentials WHERE id = ?", (cred_id,)).fetchone()
        if row is None:
            raise NotFound(f"no credential {cred_id!r}")
        check_actor(conn, actor)
        conn.execute("UPDATE access_credentials SET revoked = 1 WHERE id = ?", (cred_id,))
    ctx.emit(EventKind.CREDENTIAL_CHANGE, at, actor, row["user_id"], "credential revoked", credential_id=cred_id)


def change_pin(ctx: AccessContext, ref: str, new_pin: str, actor: str, at: datetime) -> Credential:
    """Replace the user's PINs by `new_pin` (history enforced), atomically."""
    pins.validate_pin(new_pin)
    conn = ctx.conn
    with transaction(conn):
        user = find_user(conn, ref)
        check_actor(conn, actor, touching=user.permission if user.user_id != actor else None)
        old = conn.execute("SELECT id, user_id, created_at, secret FROM access_credentials WHERE user_id = ? "
                           "AND cred_type = 'pin'", (user.user_id,)).fetchall()
        for row in old:
            _retire_pin(conn, user.user_id, bytes(row["secret"]), at)
            _delete_remembered(conn, row, actor, at)  # an old-format hash in a backup is not the history's
        cred_id = insert_pin(ctx, user.user_id, new_pin, actor, at)
    ctx.emit(EventKind.CREDENTIAL_CHANGE, at, actor, user.user_id, "PIN changed", credential_id=cred_id)
    return next(c for c in list_credentials(conn, user.user_id) if c.id == cred_id)


def replace_pins(ctx: AccessContext, user_id: str, pin: str, actor: str, at: datetime) -> str:
    """Drop the user's PINs without history and store `pin` (caller's transaction; the first owner's claim)."""
    ctx.conn.execute("DELETE FROM access_credentials WHERE user_id = ? AND cred_type = 'pin'", (user_id,))
    return insert_pin(ctx, user_id, pin, actor, at)


def _delete_remembered(conn: sqlite3.Connection, row: sqlite3.Row, actor: str, at: datetime) -> None:
    """Delete a credential, remembering its id, person and creation time (no secret) in
    `access_credential_removals`, so that restoring an older backup keeps it refused (`holdings.revoke_retired`)."""
    conn.execute("INSERT OR REPLACE INTO access_credential_removals VALUES (?, ?, ?, ?, ?)",
                 (row["id"], row["user_id"], row["created_at"], rows.iso(at), actor))
    conn.execute("DELETE FROM access_credentials WHERE id = ?", (row["id"],))


def _retire_pin(conn: sqlite3.Connection, user_id: str, secret: bytes, at: datetime) -> None:
    conn.execute("INSERT INTO access_pin_history(user_id, secret, retired_at) VALUES (?, ?, ?)",
                 (user_id, secret, rows.iso(at)))


def revoke_issued_by(ctx: AccessContext, token_id: str, actor: str, at: datetime) -> list[str]:
    """Revoke every credential and offline code the API token `token_id` issued (the token was revoked)."""
    conn = ctx.conn
    with transaction(conn):
        check_actor(conn, actor)
        creds = conn.execute("SELECT id, user_id FROM access_credentials WHERE issued_token = ? AND revoked = 0",
                             (token_id,)).fetchall()
        conn.execute("UPDATE access_credentials SET revoked = 1 WHERE issued_token = ?", (token_id,))
        code_ids = [r[0] for r in conn.execute("SELECT code_id FROM access_codes_issued WHERE issued_token = ? "
                                               "AND code_id NOT IN (SELECT code_id FROM access_code_revocations)",
                                               (token_id,))]
        for code_id in code_ids:
            conn.execute("INSERT OR IGNORE INTO access_code_revocations VALUES (?, ?, ?)",
                         (code_id, rows.iso(at), actor))
    for row in creds:
        ctx.emit(EventKind.CREDENTIAL_CHANGE, at, actor, row["user_id"], "credential revoked with its API token",
                 credential_id=row["id"], token_id=token_id)
    for code_id in code_ids:
        ctx.emit(EventKind.CODE_CHANGE, at, actor, None, "offline code revoked with its API token", code_id=code_id,
                 token_id=token_id)
    return [r["id"] for r in creds] + code_ids
