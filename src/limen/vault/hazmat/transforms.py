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

from collections.abc import Mapping
from typing import Any

import numpy as np

from limen.vault.hazmat.kdf import derive

# float32 products of a row r and x are within (dim + 2)·2⁻²⁴·‖r‖·‖x‖ of the exact value (Cauchy–Schwarz);
# values closer to zero than this many times that bound are recomputed in float64.
_FLOAT32_GUARD = 4.0
# rows re-derived together when a value needs its float64 row: the generator's state is kept at each block's
# start (4 words a block), so a block costs BLOCK_ROWS × dim normals to re-derive
BLOCK_ROWS = 8
_PCG64 = "PCG64"


class SignProjection:
    """A secret (bits × dim) projection; never persisted, re-derived from the device key.

    The directions are the rows of `standard_normal((bits, dim))` from a PCG64
    generator seeded by the key, each divided by its float64 norm (the float64
    matrix).  Only their float32 rounding is kept (`matrix32`, half the memory
    of the float64 matrix, a quarter of both): `project` computes in float32
    and recomputes in float64 every value whose float32 result is too close to
    zero for its sign to be certain, re-deriving just the float64 rows it needs
    from the generator state kept at each block of `BLOCK_ROWS` rows.  The bits
    are those of the float64 matrix's product, as before.
    """

    def __init__(self, seed: int, dim: int, bits: int) -> None:
        if dim < 1 or bits < 1:
            raise ValueError("a projection needs at least one dimension and one bit")
        generator = np.random.Generator(np.random.PCG64(seed))
        blocks = -(-bits // BLOCK_ROWS)
        self._dim = dim
        self._states = np.zeros((blocks, 4), dtype=np.uint64)  # state hi/lo, increment hi/lo
        self._norms = np.zeros(bits, dtype=np.float64)  # float64 norm of each raw Gaussian row
        self.matrix32 = np.zeros((bits, dim), dtype=np.float32)
        self.row_norms = np.zeros(bits, dtype=np.float32)
        for b in range(blocks):
            self._states[b] = _pack_state(generator.bit_generator.state)
            lo, hi = b * BLOCK_ROWS, min(bits, (b + 1) * BLOCK_ROWS)
            raw = generator.standard_normal((hi - lo, dim))
            self._norms[lo:hi] = np.linalg.norm(raw, axis=1)
            rows = raw / self._norms[lo:hi, None]
            self.matrix32[lo:hi] = rows
            self.row_norms[lo:hi] = np.linalg.norm(rows, axis=1)
            raw.fill(0.0)
            rows.fill(0.0)

    @classmethod
    def from_key(cls, key: bytes | bytearray, dim: int, bits: int) -> SignProjection:
        return cls(int.from_bytes(derive(key, b"limen.vault.transform.projection.v1"), "big"), dim, bits)

    @property
    def bits(self) -> int:
        return int(self.matrix32.shape[0])

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def matrix(self) -> np.ndarray:
        """The float64 matrix, re-derived in full (evaluation and tests; the lock's path re-derives rows only)."""
        return self._rows(np.arange(self.bits))

    def wipe(self) -> None:
        """Overwrite the secret directions and the generator states that re-derive them."""
        self.matrix32.fill(0.0)
        self.row_norms.fill(0.0)
        self._states.fill(0)
        self._norms.fill(0.0)

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        """Packed sign bits, shape (n, bits/8) uint8, for embeddings of shape (n, dim)."""
        x = np.asarray(embeddings, dtype=np.float64)
        values = x.astype(np.float32) @ self.matrix32.T
        scale = np.float32(_FLOAT32_GUARD * (self.dim + 2) * 2.0**-24) * np.linalg.norm(x, axis=-1, keepdims=True)
        bound = scale.astype(np.float32) * self.row_norms
        unsure = np.nonzero(np.abs(values) <= bound)
        if unsure[0].size:
            rows = x[unsure[:-1]] if x.ndim > 1 else x[None].repeat(unsure[0].size, axis=0)
            exact = np.einsum("ij,ij->i", rows, self._rows(unsure[-1]))
            values[unsure] = np.where(exact > 0, 1.0, -1.0)
        return np.packbits(values > 0, axis=-1)

    def _rows(self, indices: np.ndarray) -> np.ndarray:
        """Float64 rows `indices` of the matrix (the same values `standard_normal` gave at the start)."""
        out = np.empty((len(indices), self._dim), dtype=np.float64)
        blocks = np.asarray(indices) // BLOCK_ROWS
        bit_generator = np.random.PCG64(0)  # its state is replaced before every draw
        generator = np.random.Generator(bit_generator)
        for b in np.unique(blocks):
            bit_generator.state = _unpack_state(self._states[b])
            lo = int(b) * BLOCK_ROWS
            raw = generator.standard_normal((min(self.bits, lo + BLOCK_ROWS) - lo, self._dim))
            rows = raw / self._norms[lo:lo + len(raw), None]
            where = np.nonzero(blocks == b)[0]
            out[where] = rows[np.asarray(indices)[where] - lo]
            raw.fill(0.0)
            rows.fill(0.0)
        return out


def _pack_state(state: Mapping[str, Any]) -> list[int]:
    if state["bit_generator"] != _PCG64 or state["has_uint32"]:
        raise ValueError("unexpected generator state")  # standard_normal draws whole 64-bit words
    words = state["state"]
    mask = (1 << 64) - 1
    return [words["state"] >> 64, words["state"] & mask, words["inc"] >> 64, words["inc"] & mask]


def _unpack_state(packed: np.ndarray) -> Any:  # numpy types it as a private TypedDict
    hi, lo, inc_hi, inc_lo = (int(w) for w in packed)
    return {"bit_generator": _PCG64, "state": {"state": hi << 64 | lo, "inc": inc_hi << 64 | inc_lo},
            "has_uint32": 0, "uinteger": 0}


def enrolment_mask(key: bytes | bytearray, seed: bytes, nbytes: int) -> np.ndarray:
    """Secret per-enrolment bit mask (packed uint8) from the device key and the enrolment seed."""
    return np.frombuffer(derive(key, b"limen.vault.transform.mask.v1", nbytes, salt=seed), dtype=np.uint8).copy()


def hamming(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised Hamming distance between two packed bit strings of equal length."""
    return float(np.bitwise_count(np.bitwise_xor(a, b)).sum()) / (8 * a.size)
