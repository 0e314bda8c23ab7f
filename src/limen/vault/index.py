"""In-memory 1:N index of protected templates: packed bits, XOR + popcount, three stages.

Rows are the *unmasked* projected sign bits (the enrolment mask is removed
when a record is unsealed).  To stay small at 100,000 people, a row keeps
only its first `VAULT_INDEX_KEEP_BITS` bits when the index is given `fetch`
(the vault's way to unseal one user's full template); without it every bit
is kept.  Search

1. ranks everyone on the first `VAULT_SEARCH_PREFIX_BITS` bits, kept
   column-major so the scan is a few contiguous XOR + popcount passes, and
   takes the `VAULT_SEARCH_SHORTLIST` best by a counting sort;
2. re-ranks that shortlist on the kept bits;
3. scores the best `VAULT_SEARCH_EXACT` (at least `top_k`) on all bits,
   fetched from the vault and overwritten after use, so that every distance
   returned is the full template's, as without the index.

`distance` (1:1) fetches the one full template.  `wipe` overwrites every
buffer and retires the index: a later `add` raises `VaultErased`, so a row
can never land in an index that a zeroize has already dropped.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from limen import thresholds
from limen.errors import VaultErased

Fetch = Callable[[str], "np.ndarray | None"]  # user id -> full packed bits (caller's copy), None if absent


class BitIndex:
    """Packed sign-bit templates of one modality keyed by user id; not thread-safe (callers lock)."""

    def __init__(self, nbytes: int, prefix_bytes: int = thresholds.VAULT_SEARCH_PREFIX_BITS // 8,
                 fetch: Fetch | None = None, keep_bytes: int = thresholds.VAULT_INDEX_KEEP_BITS // 8) -> None:
        keep = nbytes if fetch is None else min(nbytes, keep_bytes)
        if nbytes % 8 or keep % 8 or prefix_bytes % 8 or not 0 < prefix_bytes <= keep:
            raise ValueError("template, kept and prefix sizes must be multiples of 64 bits, prefix ≤ kept")
        self.nbits = nbytes * 8
        self._fetch = fetch
        self._bytes = nbytes
        self._words = keep // 8  # words kept per row
        self._prefix = prefix_bytes // 8
        self._keys: list[str] = []
        self._rows: dict[str, int] = {}
        self._full = np.zeros((0, self._words), dtype=np.uint64)  # kept bits, row-major
        self._head = np.zeros((self._prefix, 0), dtype=np.uint64)  # first-stage prefix, column-major
        self._size = 0
        self._wiped = False

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        """Memory held by the index's arrays."""
        return int(self._full.nbytes + self._head.nbytes)

    def add(self, user_id: str, bits: np.ndarray) -> None:
        """Insert or replace one template (`bits`: packed uint8 of the full template size)."""
        if self._wiped:
            raise VaultErased("the template index was wiped by a zeroize")
        words = self._as_words(bits)[: self._words]
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

    def _grow(self) -> None:
        cap = self._size + max(64, self._size // 8)  # ≤ 12.5 % slack: the index is most of a big lock's memory
        full = np.zeros((cap, self._words), dtype=np.uint64)
        head = np.zeros((self._prefix, cap), dtype=np.uint64)
        full[: self._size], head[:, : self._size] = self._full[: self._size], self._head[:, : self._size]
        self._full.fill(0)
        self._head.fill(0)
        self._full, self._head = full, head

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

    def distance(self, user_id: str, probe: np.ndarray) -> float | None:
        """Normalised Hamming distance on all bits; None when `user_id` has no row."""
        if user_id not in self._rows:
            return None
        words = self._as_words(probe)
        if self._fetch is None:
            return self._hamming(self._full[self._rows[user_id]], words)
        return self._exact(user_id, words)

    def search(self, probe: np.ndarray, top_k: int) -> list[tuple[str, float]]:
        """The `top_k` closest rows, closest first, as (user_id, normalised Hamming on all bits)."""
        if self._size == 0 or top_k <= 0:
            return []
        words = self._as_words(probe)
        shortlist = self._shortlist(words[: self._prefix], max(top_k, thresholds.VAULT_SEARCH_SHORTLIST))
        kept = np.bitwise_count(np.bitwise_xor(self._full[shortlist], words[: self._words])).sum(axis=1)
        rank = np.argsort(kept, kind="stable")
        order = shortlist[rank]
        if self._fetch is None:
            top = range(min(top_k, len(rank)))
            return [(self._keys[int(order[i])], float(kept[rank[i]]) / self.nbits) for i in top]
        best = [self._keys[int(i)] for i in order[: max(top_k, thresholds.VAULT_SEARCH_EXACT)]]
        scored = [(uid, d) for uid in best if (d := self._exact(uid, words)) is not None]
        return sorted(scored, key=lambda c: c[1])[:top_k]

    def _shortlist(self, head: np.ndarray, size: int) -> np.ndarray:
        """Rows of the `size` smallest prefix distances (ties at the cut broken by row order)."""
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
        cut = int(np.searchsorted(np.cumsum(np.bincount(coarse)), size))  # the size-th smallest value
        below = np.flatnonzero(coarse < cut)
        at_cut = np.flatnonzero(coarse == cut)[: size - len(below)]
        return np.concatenate([below, at_cut])

    def _exact(self, user_id: str, words: np.ndarray) -> float | None:
        assert self._fetch is not None
        full = self._fetch(user_id)
        if full is None:
            return None
        try:
            return self._hamming(self._as_words(full), words)
        finally:
            full.fill(0)

    def _hamming(self, row: np.ndarray, words: np.ndarray) -> float:
        return float(np.bitwise_count(np.bitwise_xor(row, words[: row.size])).sum()) / (row.size * 64)

    def wipe(self) -> None:
        """Overwrite every buffer and forget every template; the index accepts no row afterwards."""
        self._wiped = True
        self._full.fill(0)
        self._head.fill(0)
        self._keys, self._rows, self._size = [], {}, 0

    clear = wipe

    def _as_words(self, bits: np.ndarray) -> np.ndarray:
        packed = np.ascontiguousarray(bits, dtype=np.uint8)
        if packed.shape != (self._bytes,):
            raise ValueError("template has the wrong size")
        return packed.view(np.uint64)
