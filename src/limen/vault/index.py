"""In-memory 1:N index of protected templates: packed bits, XOR + popcount, two stages.

Rows are the *unmasked* projected sign bits (the enrolment mask is removed
when a record is unsealed), held as uint64 words.  Search first ranks every
row on a prefix of the bits — kept column-major, so the scan is a few
contiguous vectorised XOR + popcount passes — then re-ranks the best
`VAULT_SEARCH_SHORTLIST` candidates on all bits.  The index lives only in
process memory and is overwritten on `clear`.
"""

from __future__ import annotations

import numpy as np

from limen import thresholds


class BitIndex:
    """Packed sign-bit templates of one modality keyed by user id; not thread-safe (callers lock)."""

    def __init__(self, nbytes: int, prefix_bytes: int = thresholds.VAULT_SEARCH_PREFIX_BITS // 8) -> None:
        if nbytes % 8 or prefix_bytes % 8 or not 0 < prefix_bytes <= nbytes:
            raise ValueError("template and prefix sizes must be multiples of 64 bits")
        self.nbits = nbytes * 8
        self._words = nbytes // 8
        self._prefix = prefix_bytes // 8
        self._keys: list[str] = []
        self._rows: dict[str, int] = {}
        self._full = np.zeros((0, self._words), dtype=np.uint64)
        self._head = np.zeros((self._prefix, 0), dtype=np.uint64)  # column-major prefix
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        """Memory held by the index's arrays."""
        return int(self._full.nbytes + self._head.nbytes)

    def _grow(self) -> None:
        cap = max(64, 2 * self._full.shape[0])
        full = np.zeros((cap, self._words), dtype=np.uint64)
        head = np.zeros((self._prefix, cap), dtype=np.uint64)
        full[: self._size], head[:, : self._size] = self._full[: self._size], self._head[:, : self._size]
        self._full.fill(0)
        self._head.fill(0)
        self._full, self._head = full, head

    def add(self, user_id: str, bits: np.ndarray) -> None:
        """Insert or replace one template (`bits`: packed uint8 of the index's size)."""
        words = self._as_words(bits)
        row = self._rows.get(user_id)
        if row is None:
            if self._size == self._full.shape[0]:
                self._grow()
            row = self._size
            self._size += 1
            self._keys.append(user_id)
            self._rows[user_id] = row
        self._full[row] = words
        self._head[:, row] = words[: self._prefix]

    def remove(self, user_id: str) -> bool:
        row = self._rows.pop(user_id, None)
        if row is None:
            return False
        last = self._size - 1
        if row != last:
            moved = self._keys[last]
            self._keys[row] = moved
            self._rows[moved] = row
            self._full[row], self._head[:, row] = self._full[last], self._head[:, last]
        self._keys.pop()
        self._full[last] = 0
        self._head[:, last] = 0
        self._size = last
        return True

    def users(self) -> list[str]:
        return list(self._keys)

    def distance(self, user_id: str, probe: np.ndarray) -> float | None:
        row = self._rows.get(user_id)
        if row is None:
            return None
        return float(np.bitwise_count(np.bitwise_xor(self._full[row], self._as_words(probe))).sum()) / self.nbits

    def search(self, probe: np.ndarray, top_k: int) -> list[tuple[str, float]]:
        """The `top_k` closest rows, closest first, as (user_id, normalised Hamming)."""
        if self._size == 0 or top_k <= 0:
            return []
        words = self._as_words(probe)
        shortlist = self._shortlist(words[: self._prefix], max(top_k, thresholds.VAULT_SEARCH_SHORTLIST))
        dist = np.bitwise_count(np.bitwise_xor(self._full[shortlist], words)).sum(axis=1, dtype=np.int64)
        order = np.argsort(dist, kind="stable")[:top_k]
        return [(self._keys[int(shortlist[i])], float(dist[i]) / self.nbits) for i in order]

    def _shortlist(self, head: np.ndarray, size: int) -> np.ndarray:
        n = self._size
        if size >= n:
            return np.arange(n)
        coarse = np.zeros(n, dtype=np.uint16)
        scratch = np.empty(n, dtype=np.uint64)
        counts = np.empty(n, dtype=np.uint8)
        for j in range(self._prefix):
            np.bitwise_xor(self._head[j, :n], head[j], out=scratch)
            np.bitwise_count(scratch, out=counts)
            np.add(coarse, counts, out=coarse)
        return np.argpartition(coarse, size)[:size]

    def clear(self) -> None:
        """Forget every template and overwrite the buffers."""
        self._full.fill(0)
        self._head.fill(0)
        self._keys, self._rows, self._size = [], {}, 0

    def _as_words(self, bits: np.ndarray) -> np.ndarray:
        packed = np.ascontiguousarray(bits, dtype=np.uint8)
        if packed.shape != (self._words * 8,):
            raise ValueError("template has the wrong size")
        return packed.view(np.uint64)
