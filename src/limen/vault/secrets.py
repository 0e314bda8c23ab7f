"""`SecretBox`: small secrets (offline-code keys, TOTP seeds, the audit head) sealed under the vault.

One 256-bit *secrets key* is sealed in `vault_meta` like the transform secret
(its data key wrapped by the root key, re-wrapped by `rotate`), so a
crypto-erase makes every sealed secret unrecoverable at once.  Each secret is
AES-256-GCM under that key with the associated data naming its purpose and
record (`label`, e.g. ``"offline-code:<credential id>"``), so a sealed value
moved to another record does not open.

    blob = vault.secrets.seal("totp:owner-1", seed)
    seed = vault.secrets.unseal("totp:owner-1", blob)   # VaultErased after a zeroize

Format: ``0x01 ‖ nonce(12) ‖ ciphertext ‖ tag(16)``.  Every failure to open
raises the opaque `InvalidSealedTemplate`; an erased vault raises `VaultErased`.

`open_template_store` registers the open vault's box for its database
(`register`), so stores that share `limen.db` (access, service accounts) find
it with `box_for(conn)` without a second path to the key store; likewise the
template store itself (`register_templates`, `templates_for(conn)`), which only
the backup of an owner who opted in to template backups asks for.
"""

from __future__ import annotations

import sqlite3
import struct
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag

from limen.errors import BadRequest, InvalidSealedTemplate
from limen.vault.hazmat import aead
from limen.vault.keystore.sidekeys import SideKey

if TYPE_CHECKING:
    from limen.vault.store import VaultTemplateStore

SECRET_V1 = 1


def _aad(label: str) -> bytes:
    raw = label.encode("utf-8")
    return b"limen.vault.secret\x00" + bytes([SECRET_V1]) + struct.pack(">H", len(raw)) + raw


def sealed_size(plaintext_bytes: int) -> int:
    return 1 + aead.OVERHEAD + plaintext_bytes


def is_sealed(blob: bytes, plaintext_bytes: int) -> bool:
    """Whether `blob` is a sealed secret of `plaintext_bytes` (tells it from a value stored in the clear)."""
    return len(blob) == sealed_size(plaintext_bytes) and blob[0] == SECRET_V1


class SecretBox:
    """Seal and open small secrets under the vault's secrets key (see the module docstring)."""

    def __init__(self, key: Callable[[], bytearray]) -> None:
        self._key = key  # the vault's secrets key, loaded lazily (raises VaultErased once erased)
        self.closed = False

    def seal(self, label: str, plaintext: bytes) -> bytes:
        if not label or len(label) > 256:
            raise BadRequest("label", "must be 1-256 characters")
        return bytes([SECRET_V1]) + aead.encrypt(self._key(), plaintext, _aad(label))

    def unseal(self, label: str, blob: bytes) -> bytes:
        if len(blob) < sealed_size(0) or blob[0] != SECRET_V1:
            raise InvalidSealedTemplate()
        key = self._key()
        try:
            return aead.decrypt(key, blob[1:], _aad(label))
        except (InvalidTag, ValueError):
            raise InvalidSealedTemplate() from None


_BOXES: dict[Path, weakref.ref[SecretBox]] = {}  # weak: a registered box never keeps a closed vault alive
_PEPPERS: dict[Path, SideKey] = {}
_STORES: dict[Path, weakref.ref[VaultTemplateStore]] = {}
_BOXES_LOCK = threading.Lock()


def register(db_path: Path, box: SecretBox, pepper: SideKey | None = None) -> None:
    """Make `box` (and the token's PIN `pepper`) those of the database at `db_path` in this process."""
    with _BOXES_LOCK:
        _BOXES[db_path.resolve()] = weakref.ref(box)
        if pepper is not None:
            _PEPPERS[db_path.resolve()] = pepper


def _main_file(conn: sqlite3.Connection) -> Path | None:
    files = [row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main" and row[2]]
    return Path(files[0]).resolve() if files else None


def pepper_for(conn: sqlite3.Connection) -> SideKey | None:
    """The token's PIN pepper registered for `conn`'s database by `open_template_store` (PKCS#11 locks)."""
    path = _main_file(conn)
    with _BOXES_LOCK:
        return None if path is None else _PEPPERS.get(path)


def box_for(conn: sqlite3.Connection) -> SecretBox | None:
    """The box of the vault opened in this process over `conn`'s database; None when no vault is open."""
    path = _main_file(conn)
    if path is None:
        return None
    with _BOXES_LOCK:
        ref = _BOXES.get(path)
    box = None if ref is None else ref()
    return None if box is None or box.closed else box


def register_templates(db_path: Path, store: VaultTemplateStore) -> None:
    """Make `store` the template store of the database at `db_path` in this process (weakly held)."""
    with _BOXES_LOCK:
        _STORES[db_path.resolve()] = weakref.ref(store)


def templates_for(conn: sqlite3.Connection) -> VaultTemplateStore | None:
    """The template store opened in this process over `conn`'s database; None when none is open."""
    path = _main_file(conn)
    if path is None:
        return None
    with _BOXES_LOCK:
        ref = _STORES.get(path)
    store = None if ref is None else ref()
    return None if store is None or store.vault.secrets.closed else store
