"""The sealed-record format (version 1): envelope encryption under a wrapped per-record data key.

    offset  size  field
    0       1     format version (0x01)
    1       4     root-key generation (big endian)
    5       2     length L of the wrapped data key
    7       L     data key wrapped by the key store (bound to the same AAD)
    7+L     …     AES-256-GCM(data key): nonce(12) ‖ ciphertext ‖ tag(16)

The associated data binds the format version, the purpose (data key or body),
the record kind, the user id and the modality, so a record (or its wrapped
key) moved to another user, modality or kind does not open.  Every failure to
open raises the same `InvalidSealedTemplate`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag

from limen.errors import InvalidSealedTemplate
from limen.vault.hazmat import aead
from limen.vault.keystore.base import KeyStore

FORMAT_V1 = 1
_HEADER = struct.Struct(">BIH")


@dataclass(frozen=True)
class Binding:
    """What a sealed record is about; becomes its associated data."""

    kind: str  # "template" or "transform"
    user_id: str = ""
    modality: str = ""

    def aad(self, purpose: bytes, version: int = FORMAT_V1) -> bytes:
        fields = (self.kind, self.user_id, self.modality)
        parts = [b"limen.vault", purpose, bytes([version]), *(x.encode() for x in fields)]
        return b"".join(struct.pack(">H", len(p)) + p for p in parts)


def seal(keystore: KeyStore, generation: int, binding: Binding, plaintext: bytes) -> bytes:
    """Encrypt `plaintext` under a fresh data key wrapped by root key `generation`."""
    dek = aead.new_key()
    try:
        wrapped = keystore.wrap(generation, dek, binding.aad(b"dek"))
        body = aead.encrypt(dek, plaintext, binding.aad(b"body"))
    finally:
        aead.wipe(dek)
    return _HEADER.pack(FORMAT_V1, generation, len(wrapped)) + wrapped + body


def _parse(blob: bytes) -> tuple[int, bytes, bytes]:
    if len(blob) < _HEADER.size or blob[0] != FORMAT_V1:
        raise InvalidSealedTemplate()
    _, generation, wlen = _HEADER.unpack_from(blob)
    wrapped, body = blob[_HEADER.size : _HEADER.size + wlen], blob[_HEADER.size + wlen :]
    if len(wrapped) != wlen or len(body) < aead.OVERHEAD:
        raise InvalidSealedTemplate()
    return generation, wrapped, body


def unseal(keystore: KeyStore, binding: Binding, blob: bytes) -> bytes:
    """Open a sealed record; `InvalidSealedTemplate` for every failure."""
    generation, wrapped, body = _parse(blob)
    dek = keystore.unwrap(generation, wrapped, binding.aad(b"dek"))
    try:
        return aead.decrypt(dek, body, binding.aad(b"body"))
    except (InvalidTag, ValueError):
        raise InvalidSealedTemplate() from None
    finally:
        aead.wipe(dek)


def generation_of(blob: bytes) -> int:
    return _parse(blob)[0]


def rewrap(keystore: KeyStore, binding: Binding, blob: bytes, generation: int) -> bytes:
    """The same record with its data key re-wrapped under root key `generation` (body unchanged)."""
    old, wrapped, body = _parse(blob)
    dek = keystore.unwrap(old, wrapped, binding.aad(b"dek"))
    try:
        aead.decrypt(dek, body, binding.aad(b"body"))  # never re-wrap a record that does not open
        rewrapped = keystore.wrap(generation, dek, binding.aad(b"dek"))
    except (InvalidTag, ValueError):
        raise InvalidSealedTemplate() from None
    finally:
        aead.wipe(dek)
    return _HEADER.pack(FORMAT_V1, generation, len(rewrapped)) + rewrapped + body
