"""HKDF-SHA256 expansion of one device secret into independent purpose keys."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive(secret: bytes | bytearray, info: bytes, length: int = 32, salt: bytes | None = None) -> bytes:
    """`length` bytes bound to `info` (and optional `salt`)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(bytes(secret))
