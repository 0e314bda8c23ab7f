"""AONT-RS (Resch & Plank, 2011): all-or-nothing transform, then Reed–Solomon (zfec).

`split(data, k, n)`: a random key K encrypts the data (AES-256-GCM, whose tag
plays the AONT canary); the package is ``ciphertext ‖ (K ⊕ SHA-256(ciphertext))``,
erasure-coded into n fragments of which any k rebuild it.  With fewer than k
fragments the ciphertext is incomplete, so K (and the data) stay hidden.
Each fragment carries a header and its own SHA-256; `join` drops fragments
whose checksum fails and raises `FragmentError` when fewer than k remain.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

import zfec
from cryptography.exceptions import InvalidTag

from limen.errors import FragmentError
from limen.vault.hazmat import aead

_MAGIC = b"LVF1"
_HEADER = struct.Struct(">4sBBBI")  # magic, k, n, index, pad length
_AAD = b"limen.vault.aont-rs.v1"


def split(data: bytes, k: int, n: int) -> list[bytes]:
    """n self-checking fragments, any k of which rebuild `data`."""
    if not 1 <= k <= n <= 255:
        raise ValueError("need 1 <= k <= n <= 255")
    key = aead.new_key()
    try:
        ciphertext = aead.encrypt(key, data, _AAD)
        package = ciphertext + bytes(a ^ b for a, b in zip(key, hashlib.sha256(ciphertext).digest(), strict=True))
    finally:
        aead.wipe(key)
    size = -(-len(package) // k)
    padlen = size * k - len(package)
    padded = package + bytes(padlen)
    shares = zfec.Encoder(k, n).encode([padded[i * size : (i + 1) * size] for i in range(k)])
    out = []
    for index, share in enumerate(shares):
        body = _HEADER.pack(_MAGIC, k, n, index, padlen) + bytes(share)
        out.append(body + hashlib.sha256(body).digest())
    return out


def fragment_ok(fragment: bytes) -> bool:
    body, digest = fragment[:-32], fragment[-32:]
    return len(fragment) > _HEADER.size + 32 and hmac.compare_digest(hashlib.sha256(body).digest(), digest)


def join(fragments: list[bytes | None], k: int, n: int) -> bytes:
    """Rebuild the data from any k intact fragments (None = missing); `FragmentError` if impossible."""
    good: dict[int, bytes] = {}
    padlen = 0
    for fragment in fragments:
        if fragment is None or not fragment_ok(fragment):
            continue
        magic, fk, fn, index, padlen_ = _HEADER.unpack_from(fragment)
        if magic == _MAGIC and (fk, fn) == (k, n) and index < n:
            good.setdefault(index, fragment[_HEADER.size : -32])
            padlen = padlen_
    if len(good) < k or len({len(b) for b in good.values()}) != 1:
        raise FragmentError(f"only {len(good)} intact fragments of {n}; {k} are needed")
    indices = sorted(good)[:k]
    blocks = zfec.Decoder(k, n).decode([good[i] for i in indices], indices)
    package = b"".join(bytes(b) for b in blocks)
    package = package[: len(package) - padlen] if padlen else package
    if len(package) < aead.OVERHEAD + 32:
        raise FragmentError("fragments do not rebuild a record")
    ciphertext, masked = package[:-32], package[-32:]
    key = bytearray(a ^ b for a, b in zip(masked, hashlib.sha256(ciphertext).digest(), strict=True))
    try:
        return aead.decrypt(key, ciphertext, _AAD)
    except (InvalidTag, ValueError):
        raise FragmentError("fragments do not rebuild a record") from None
    finally:
        aead.wipe(key)
