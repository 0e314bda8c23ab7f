"""The projection keeps one copy of its directions (float32) and still gives the float64 matrix's bits."""

from __future__ import annotations

import numpy as np
import pytest

from limen import thresholds
from limen.vault.hazmat.kdf import derive
from limen.vault.hazmat.transforms import BLOCK_ROWS, SignProjection


def reference_matrix(key: bytes, dim: int, bits: int) -> np.ndarray:
    """The float64 matrix as the vault always defined it: every row drawn at once, then normalised."""
    seed = int.from_bytes(derive(key, b"limen.vault.transform.projection.v1"), "big")
    rows = np.random.default_rng(seed).standard_normal((bits, dim))
    return np.asarray(rows / np.linalg.norm(rows, axis=1, keepdims=True))


@pytest.mark.parametrize("bits", [thresholds.VAULT_FACE_BITS, 4 * BLOCK_ROWS + 3])  # the last block short
def test_same_matrices_and_bits_as_the_float64_definition(bits: int) -> None:
    key = bytes(range(32))
    want = reference_matrix(key, 128, bits)
    projection = SignProjection.from_key(key, 128, bits)
    assert np.array_equal(projection.matrix32, want.astype(np.float32))
    assert np.array_equal(projection.matrix, want)
    x = np.random.default_rng(1).standard_normal((64, 128))
    edge = x[0] - (x[0] @ want[9]) * want[9]  # orthogonal to row 9: its float32 value is unsure, settled in float64
    probes = np.vstack([x, edge[None], -x[:3]])
    assert np.array_equal(projection.project(probes), np.packbits(probes @ want.T > 0, axis=-1))
    assert np.array_equal(projection.project(x[0]), np.packbits(x[0] @ want.T > 0))


def test_no_float64_copy_is_held_and_wipe_clears_what_rederives_it() -> None:
    projection = SignProjection.from_key(b"k" * 32, 128, 1024)
    held = [v for v in vars(projection).values() if isinstance(v, np.ndarray)]
    assert sum(a.nbytes for a in held) < 1024 * 128 * 4 * 1.2  # the float32 matrix and small per-row state
    assert not any(a.dtype == np.float64 and a.size >= 1024 * 128 for a in held)
    projection.wipe()
    assert not any(a.any() for a in held)
    with pytest.raises(ValueError, match="at least one"):
        SignProjection(1, 0, 8)
