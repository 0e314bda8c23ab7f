"""AES-256-GCM with a random 96-bit nonce prepended to the ciphertext."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
OVERHEAD = NONCE_BYTES + TAG_BYTES


def new_key() -> bytearray:
    """A fresh random 256-bit key in a mutable buffer (so it can be overwritten)."""
    return bytearray(os.urandom(KEY_BYTES))


def encrypt(key: bytes | bytearray, plaintext: bytes, aad: bytes) -> bytes:
    """`nonce || ciphertext || tag`."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(bytes(key)).encrypt(nonce, plaintext, aad)


def decrypt(key: bytes | bytearray, blob: bytes, aad: bytes) -> bytes:
    """Inverse of `encrypt`; raises `cryptography.exceptions.InvalidTag` or `ValueError`."""
    if len(blob) < OVERHEAD:
        raise ValueError("too short")
    return AESGCM(bytes(key)).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)


def wipe(buf: bytearray) -> None:
    """Overwrite a key buffer in place."""
    for i in range(len(buf)):
        buf[i] = 0
