"""Development key store: root keys in one file (mode 0600), held in `bytearray`s.

File format: ``b"LMK1" || (u32 generation || 32-byte key)* || SHA-256 of the
preceding bytes``.  Updates are atomic (temp file, fsync, rename, fsync dir).
`destroy_all` overwrites the file in place with zeros, fsyncs, then unlinks it
(on flash storage the old blocks may survive the overwrite: use the PKCS#11
store where that matters).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag

from limen.errors import InvalidSealedTemplate, KeyStoreError
from limen.vault import files
from limen.vault.hazmat import aead

_MAGIC = b"LMK1"
_ENTRY = struct.Struct(">I32s")


class SoftwareKeyStore:
    """Root keys in a local key file; see the module docstring.  Thread-safe."""

    kind = "software"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._broken: str | None = None
        try:
            self._keys: dict[int, bytearray] = self._load()
        except KeyStoreError as exc:
            # Still destroyable: a zeroize interrupted mid-shred leaves a zeroed file behind.
            self._keys, self._broken = {}, str(exc)

    def _load(self) -> dict[int, bytearray]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise KeyStoreError(f"{self.path}: cannot read key file ({exc.strerror})") from exc
        body, digest = raw[:-32], raw[-32:]
        ok = len(raw) >= 36 and body[:4] == _MAGIC and (len(body) - 4) % _ENTRY.size == 0
        if not ok or not hmac.compare_digest(hashlib.sha256(body).digest(), digest):
            raise KeyStoreError(f"{self.path}: key file is corrupt")
        keys: dict[int, bytearray] = {}
        for off in range(4, len(body), _ENTRY.size):
            gen, key = _ENTRY.unpack_from(body, off)
            keys[gen] = bytearray(key)
        return keys

    def _save(self) -> None:
        body = bytearray(_MAGIC)
        for gen in sorted(self._keys):
            body += _ENTRY.pack(gen, bytes(self._keys[gen]))
        body += hashlib.sha256(body).digest()
        try:
            files.atomic_write(self.path, bytes(body))
        except OSError as exc:
            raise KeyStoreError(f"{self.path}: cannot write key file ({exc.strerror})") from exc
        finally:
            aead.wipe(body)

    def _usable(self) -> None:
        if self._broken is not None:
            raise KeyStoreError(self._broken)

    def generations(self) -> list[int]:
        with self._lock:
            self._usable()
            return sorted(self._keys)

    def create_key(self, generation: int | None = None) -> int:
        """A new root key: the next generation, or `generation` (a companion store follows its token's)."""
        with self._lock:
            self._usable()
            gen = max(self._keys, default=0) + 1 if generation is None else generation
            if gen in self._keys:
                raise KeyStoreError(f"root key generation {gen} already exists")
            self._keys[gen] = aead.new_key()
            try:
                self._save()
            except KeyStoreError:
                aead.wipe(self._keys.pop(gen))
                raise
            return gen

    def wrap(self, generation: int, key: bytes | bytearray, aad: bytes) -> bytes:
        with self._lock:
            self._usable()
            root = self._keys.get(generation)
            if root is None:
                raise KeyStoreError(f"root key generation {generation} is not in the key store")
            return aead.encrypt(root, bytes(key), aad)

    def unwrap(self, generation: int, wrapped: bytes, aad: bytes) -> bytearray:
        with self._lock:
            root = self._keys.get(generation)
            if root is None:
                raise InvalidSealedTemplate()
            try:
                return bytearray(aead.decrypt(root, wrapped, aad))
            except (InvalidTag, ValueError):
                raise InvalidSealedTemplate() from None

    def delete_key(self, generation: int) -> None:
        with self._lock:
            key = self._keys.pop(generation, None)
            if key is not None:
                aead.wipe(key)
                self._save() if self._keys else files.shred(self.path)

    def destroy_all(self) -> None:
        with self._lock:
            for key in self._keys.values():
                aead.wipe(key)
            self._keys.clear()
            try:
                files.shred(self.path, sync_dir=False)  # zeros are durable; a resurrected name holds nothing
                self._broken = None
            except OSError as exc:
                raise KeyStoreError(f"{self.path}: cannot destroy key file ({exc.strerror})") from exc

    def close(self) -> None:
        with self._lock:
            for key in self._keys.values():
                aead.wipe(key)
            self._keys.clear()


def default_key_path(keys_dir: Path) -> Path:
    return keys_dir / "vault-root.key"



