"""Keyed, renewable template transform: secret random projection → sign bits ⊕ enrolment mask.

`SignProjection` maps a `dim`-d embedding to `bits` sign bits through `bits`
secret Gaussian directions (random-hyperplane LSH, Charikar 2002): the
normalised Hamming distance between two bit strings is an unbiased estimate
of the angle between the embeddings divided by π.  (With bits ≫ dim the rows
cannot all be orthogonal; Gaussian rows cost ~100× less to derive than stacked
QR blocks and gave the same accuracy.)  `enrolment_mask` gives the
per-enrolment secret bits XORed into the stored template, which makes two
enrolments of the same face under different seeds unrelated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from limen.vault.hazmat.kdf import derive


@dataclass(frozen=True)
class SignProjection:
    """A secret (bits × dim) projection; never persisted, re-derived from the device key."""

    matrix: np.ndarray

    @classmethod
    def from_key(cls, key: bytes | bytearray, dim: int, bits: int) -> SignProjection:
        seed = int.from_bytes(derive(key, b"limen.vault.transform.projection.v1"), "big")
        rows = np.random.default_rng(seed).standard_normal((bits, dim))
        return cls(rows / np.linalg.norm(rows, axis=1, keepdims=True))

    @property
    def bits(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        """Packed sign bits, shape (n, bits/8) uint8, for embeddings of shape (n, dim)."""
        return np.packbits(np.asarray(embeddings, dtype=np.float64) @ self.matrix.T > 0, axis=-1)


def enrolment_mask(key: bytes | bytearray, seed: bytes, nbytes: int) -> np.ndarray:
    """Secret per-enrolment bit mask (packed uint8) from the device key and the enrolment seed."""
    return np.frombuffer(derive(key, b"limen.vault.transform.mask.v1", nbytes, salt=seed), dtype=np.uint8).copy()


def hamming(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised Hamming distance between two packed bit strings of equal length."""
    return float(np.bitwise_count(np.bitwise_xor(a, b)).sum()) / (8 * a.size)
