"""Side keys: HMAC-SHA256 keys kept in the key store that a zeroize does NOT destroy.

Two live here, each named for its one purpose:

* ``audit-witness`` authenticates the audit chain's head witness (the evidence
  outlives the secrets, so the witness key survives a tamper erase);
* ``pin-pepper`` peppers every stored PIN hash, so a copied `limen.db` alone
  cracks nothing.  It survives a tamper erase on purpose: PINs must keep
  opening the door after the templates are crypto-erased (see docs/vault.md).

Software store: ``<keys_dir>/<name>.key``, 32 random bytes, mode 0600, created
atomically (temp file, fsync, hard link: two racing processes end up with the
same key).  PKCS#11 store: a non-extractable generic secret key labelled
``limen-<name>`` generated in the token; the HMAC is computed by the token.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import tempfile
from pathlib import Path
from typing import Protocol

from limen.config import KeyStoreKind, Settings
from limen.errors import KeyStoreError
from limen.fsio import fsync_dir

SIDE_KEY_BYTES = 32
AUDIT_WITNESS = "audit-witness"
PIN_PEPPER = "pin-pepper"
TOKEN_PEPPER_MARKER = "pin-pepper.token"  # noqa: S105 - a file name: this lock's PIN pepper is in the token


class SideKey(Protocol):
    name: str

    def mac(self, data: bytes) -> bytes:
        """HMAC-SHA256 of `data` under this key (32 bytes)."""


class FileSideKey:
    """A side key in a 0600 file beside the software root keys."""

    def __init__(self, path: Path) -> None:
        self.name = path.stem
        self.path = path
        self._key = _load_or_create(path)

    def mac(self, data: bytes) -> bytes:
        return hmac.new(bytes(self._key), data, hashlib.sha256).digest()


def _load_or_create(path: Path) -> bytearray:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # created 0600
            try:
                os.write(fd, os.urandom(SIDE_KEY_BYTES))
                os.fsync(fd)
                os.close(fd)
                with contextlib.suppress(FileExistsError):  # another process won the race: use its key
                    os.link(tmp, path)
            finally:
                os.unlink(tmp)
            fsync_dir(path.parent)
        raw = path.read_bytes()
    except OSError as exc:
        raise KeyStoreError(f"{path}: cannot read or create the {path.stem} key ({exc.strerror})") from exc
    if len(raw) != SIDE_KEY_BYTES or raw == bytes(SIDE_KEY_BYTES):
        raise KeyStoreError(f"{path}: the {path.stem} key is corrupt")
    return bytearray(raw)


def file_side_key(keys_dir: Path, name: str) -> FileSideKey:
    return FileSideKey(keys_dir / f"{name}.key")


def open_side_key(settings: Settings, name: str) -> SideKey:
    """The side key `name` of the configured key store, created on first use."""
    if settings.keystore == KeyStoreKind.PKCS11:
        from limen.vault.keystore.pkcs11 import Pkcs11KeyStore  # the token library loads only when configured

        pin = settings.pkcs11_pin.get_secret_value() if settings.pkcs11_pin is not None else None
        return Pkcs11KeyStore(settings.pkcs11_module, settings.pkcs11_token_label, pin).side_key(name)
    return file_side_key(settings.keys_dir, name)
