"""Access secrets held under the vault: offline-code secrets sealed at rest, and the lock's PIN pepper."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import replace
from pathlib import Path

from limen.access import offline, pins
from limen.access.model import Credential, CredentialType
from limen.errors import KeyStoreError, LimenError, VaultErased
from limen.vault.keystore.sidekeys import PIN_PEPPER, TOKEN_PEPPER_MARKER, file_side_key
from limen.vault.secrets import box_for, is_sealed, pepper_for

log = logging.getLogger(__name__)


def sealed_secret(stored: bytes) -> bool:
    """Whether an offline-code secret is stored sealed under the vault (else: in the clear, from before)."""
    return is_sealed(stored, offline.SECRET_BYTES)


def seal_clear_offline_secrets(conn: sqlite3.Connection) -> None:
    """Seal offline-code secrets stored in the clear (before the vault sealed them), once a vault is open."""
    box = box_for(conn)
    if box is None or box.closed:
        return
    rows = conn.execute("SELECT id, secret FROM access_credentials WHERE cred_type = ?",
                        (CredentialType.OFFLINE_CODE.value,)).fetchall()
    for row in rows:
        if not sealed_secret(bytes(row["secret"])):
            try:
                blob = box.seal(f"offline-code:{row['id']}", bytes(row["secret"]))
            except LimenError:
                return  # an erased vault: nothing to seal under (the clear secrets stay usable)
            conn.execute("UPDATE access_credentials SET secret = ? WHERE id = ?", (blob, row["id"]))


def seal_new_secret(conn: sqlite3.Connection, cred_id: str, secret: bytes) -> bytes:
    """A new offline-code secret as stored: sealed when a vault is open (`VaultErased` after a zeroize)."""
    box = box_for(conn)
    return secret if box is None else box.seal(f"offline-code:{cred_id}", secret)


def opened(conn: sqlite3.Connection, creds: list[Credential]) -> list[Credential]:
    """Credentials with offline secrets unsealed; one that cannot be opened is left out (fail closed)."""
    out, box = [], box_for(conn)
    for cred in creds:
        if cred.type is CredentialType.OFFLINE_CODE and sealed_secret(cred.secret):
            try:
                if box is None:
                    raise VaultErased("no vault is open to unseal offline-code secrets")
                cred = replace(cred, secret=box.unseal(f"offline-code:{cred.id}", cred.secret))
            except LimenError as exc:  # erased or closed vault, or a forged row
                log.warning("offline-code secret %s unavailable (%s): its codes are refused", cred.id,
                            type(exc).__name__)
                continue
        out.append(cred)
    return out


def default_pepper(conn: sqlite3.Connection) -> pins.Pepper:
    """The lock's PIN pepper: the token's (registered by the open vault) on a PKCS#11 lock, else the
    ``pin-pepper`` key file beside the database; an in-memory database gets a throwaway key."""
    files = [row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main" and row[2]]
    if not files:
        return pins.NO_PEPPER
    keys_dir = Path(files[0]).parent / "keys"
    if (keys_dir / TOKEN_PEPPER_MARKER).exists():
        return pepper_for(conn) or TokenPepperMissing()
    return file_side_key(keys_dir, PIN_PEPPER)


class TokenPepperMissing:
    """A PKCS#11 lock's store built without its vault: PIN work is refused with one clear error."""

    def mac(self, data: bytes) -> bytes:
        raise KeyStoreError("this lock's PIN pepper is in the PKCS#11 token: open the lock through its runtime")
