from __future__ import annotations

import numpy as np

from limen.vault.index import BitIndex


def _bits(rng: np.random.Generator, n: int, nbytes: int) -> np.ndarray:
    return rng.integers(0, 256, (n, nbytes), dtype=np.uint8)


def test_search_matches_brute_force_and_remove_keeps_rows_consistent() -> None:
    rng = np.random.default_rng(3)
    rows = _bits(rng, 300, 64)
    index = BitIndex(64, prefix_bytes=16)
    for i, r in enumerate(rows):
        index.add(f"u{i}", r)
    for i in range(0, 300, 3):
        assert index.remove(f"u{i}")
    assert not index.remove("u0")
    probe = rows[10].copy()
    probe[:4] ^= 0xFF
    found = index.search(probe, 5)
    live = {f"u{i}": r for i, r in enumerate(rows) if i % 3}
    brute = sorted((np.unpackbits(r ^ probe).sum() / 512, uid) for uid, r in live.items())[:5]
    assert found[0] == ("u10", brute[0][0])
    assert [d for _, d in found] == [d for d, _ in brute]
    assert index.distance("u10", probe) == brute[0][0]
    assert index.distance("u0", probe) is None
    assert len(index) == 200


def test_replace_and_clear() -> None:
    rng = np.random.default_rng(4)
    index = BitIndex(64, prefix_bytes=16)
    a, b = _bits(rng, 2, 64)
    index.add("x", a)
    index.add("x", b)
    assert len(index) == 1
    assert index.distance("x", b) == 0.0
    index.clear()
    assert len(index) == 0 and index.search(b, 3) == []
