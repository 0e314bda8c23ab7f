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
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from cryptography.exceptions import InvalidTag

from limen.errors import BadRequest, InvalidSealedTemplate
from limen.vault.hazmat import aead

SECRET_V1 = 1


def _aad(label: str) -> bytes:
    raw = label.encode("utf-8")
    return b"limen.vault.secret\x00" + bytes([SECRET_V1]) + struct.pack(">H", len(raw)) + raw


def is_sealed(blob: bytes) -> bool:
    """Whether `blob` is in the sealed-secret format (to migrate values stored in the clear)."""
    return len(blob) >= 1 + aead.OVERHEAD and blob[0] == SECRET_V1


class SecretBox:
    """Seal and open small secrets under the vault's secrets key (see the module docstring)."""

    def __init__(self, key: Callable[[], bytearray]) -> None:
        self._key = key  # the vault's secrets key, loaded lazily (raises VaultErased once erased)

    def seal(self, label: str, plaintext: bytes) -> bytes:
        if not label or len(label) > 256:
            raise BadRequest("label", "must be 1-256 characters")
        return bytes([SECRET_V1]) + aead.encrypt(self._key(), plaintext, _aad(label))

    def unseal(self, label: str, blob: bytes) -> bytes:
        if not is_sealed(blob):
            raise InvalidSealedTemplate()
        key = self._key()
        try:
            return aead.decrypt(key, blob[1:], _aad(label))
        except (InvalidTag, ValueError):
            raise InvalidSealedTemplate() from None
