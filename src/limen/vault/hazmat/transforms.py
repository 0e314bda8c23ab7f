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

from dataclasses import dataclass, field

import numpy as np

from limen.vault.hazmat.kdf import derive

# float32 products of a row r and x are within (dim + 2)·2⁻²⁴·‖r‖·‖x‖ of the exact value (Cauchy–Schwarz);
# values closer to zero than this many times that bound are recomputed in float64.
_FLOAT32_GUARD = 4.0


@dataclass(frozen=True)
class SignProjection:
    """A secret (bits × dim) projection; never persisted, re-derived from the device key.

    `project` computes in float32 (half the memory traffic of float64, which
    is most of a 1:N probe's cost) and recomputes in float64 every value whose
    float32 result is too close to zero for its sign to be certain, so the
    bits are those of the float64 product.
    """

    matrix: np.ndarray
    matrix32: np.ndarray = field(init=False, repr=False, compare=False)
    row_norms: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "matrix32", np.ascontiguousarray(self.matrix, dtype=np.float32))
        object.__setattr__(self, "row_norms", np.linalg.norm(self.matrix, axis=1).astype(np.float32))

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

    def wipe(self) -> None:
        """Overwrite the secret directions (both copies)."""
        self.matrix.fill(0.0)
        self.matrix32.fill(0.0)
        self.row_norms.fill(0.0)

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        """Packed sign bits, shape (n, bits/8) uint8, for embeddings of shape (n, dim)."""
        x = np.asarray(embeddings, dtype=np.float64)
        values = x.astype(np.float32) @ self.matrix32.T
        scale = np.float32(_FLOAT32_GUARD * (self.dim + 2) * 2.0**-24) * np.linalg.norm(x, axis=-1, keepdims=True)
        bound = scale.astype(np.float32) * self.row_norms
        unsure = np.nonzero(np.abs(values) <= bound)
        if unsure[0].size:
            rows = x[unsure[:-1]] if x.ndim > 1 else x[None].repeat(unsure[0].size, axis=0)
            exact = np.einsum("ij,ij->i", rows, self.matrix[unsure[-1]])
            values[unsure] = np.where(exact > 0, 1.0, -1.0)
        return np.packbits(values > 0, axis=-1)


def enrolment_mask(key: bytes | bytearray, seed: bytes, nbytes: int) -> np.ndarray:
    """Secret per-enrolment bit mask (packed uint8) from the device key and the enrolment seed."""
    return np.frombuffer(derive(key, b"limen.vault.transform.mask.v1", nbytes, salt=seed), dtype=np.uint8).copy()


def hamming(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised Hamming distance between two packed bit strings of equal length."""
    return float(np.bitwise_count(np.bitwise_xor(a, b)).sum()) / (8 * a.size)
