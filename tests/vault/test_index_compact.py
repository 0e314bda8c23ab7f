"""The compact 1:N index: exact distances from a small in-memory row, and a zeroize that races its first load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from limen import thresholds
from limen.bio.templates import Modality
from limen.config import load_settings
from limen.errors import VaultErased
from limen.vault import index as index_mod
from limen.vault import open_template_store
from limen.vault.index import BitIndex
from tests.vault.conftest import synthetic_faces

NBYTES = 4096  # 32,768 bits, the face template


def _gallery(n: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 256, (n, NBYTES), dtype=np.uint8)
    return rows, {f"u{i}": r for i, r in enumerate(rows)}


def _near(row: np.ndarray, share: float, seed: int) -> np.ndarray:
    flips = np.random.default_rng(seed).random(NBYTES * 8) < share
    return np.bitwise_xor(row, np.packbits(flips))


def _hamming(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.unpackbits(np.bitwise_xor(a, b)).sum()) / (NBYTES * 8)


def test_a_compact_index_returns_the_full_templates_distances() -> None:
    rows, full = _gallery(3000, seed=1)
    fetched: list[np.ndarray] = []

    def fetch(uid: str) -> np.ndarray | None:
        fetched.append(full[uid].copy())
        return fetched[-1]

    index = BitIndex(NBYTES, fetch=fetch)
    for uid, row in full.items():
        index.add(uid, row)
    for k, target in enumerate((7, 1500, 2999)):
        probe = _near(rows[target], 0.08, seed=k)
        twin = _near(rows[target], 0.10, seed=k + 10)  # a second, slightly farther near-match
        index.add("twin", twin)
        full["twin"] = twin
        brute = sorted((_hamming(r, probe), uid) for uid, r in full.items())[:2]
        assert index.search(probe, 2) == [(uid, d) for d, uid in brute]
        assert index.distance(f"u{target}", probe) == _hamming(rows[target], probe)
    assert index.distance("nobody", rows[0]) is None
    assert all(not f.any() for f in fetched), "fetched full templates are overwritten after use"


def test_a_compact_index_holds_about_1_kib_a_person() -> None:
    index = BitIndex(NBYTES, fetch=lambda uid: None)
    rows, _ = _gallery(2000, seed=2)
    for i, row in enumerate(rows):
        index.add(f"u{i}", row)
    per_person = index.nbytes / len(index)
    kept = (thresholds.VAULT_INDEX_KEEP_BITS + thresholds.VAULT_SEARCH_PREFIX_BITS) / 8
    assert per_person <= kept * 1.15
    assert per_person * 100_000 <= 150 * 2**20  # the 150 MB budget at 100,000 people


def test_a_wiped_index_is_zero_and_takes_no_more_rows() -> None:
    rows, _ = _gallery(100, seed=3)
    index = BitIndex(NBYTES, fetch=lambda uid: None)
    for i, row in enumerate(rows):
        index.add(f"u{i}", row)
    full, head = index._full, index._head
    index.wipe()
    assert not full.any() and not head.any() and len(index) == 0
    with pytest.raises(VaultErased):
        index.add("late", rows[0])


@pytest.fixture
def vault_store(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = open_template_store(load_settings(tmp_path / "data"))
    x, _ = synthetic_faces(5, 1, seed=4)
    for i, emb in enumerate(x):
        store.put(f"user{i}", Modality.FACE, emb)
    yield store, x
    store.close()


def test_a_zeroize_during_the_first_index_load_leaves_no_bits(vault_store, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:  # type: ignore[no-untyped-def]
    store, x = vault_store
    store._drop_index()  # as after a restart: the next search loads the index
    built: list[BitIndex] = []

    class Recorded(BitIndex):
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(index_mod, "BitIndex", Recorded)  # the store imports it at first use
    unsealed = list(store.vault.templates())  # decrypted before the erase, as a loader in flight holds them

    def racing_templates():  # type: ignore[no-untyped-def]
        for i, item in enumerate(unsealed):
            if i == 2:
                store.zeroize()  # another thread's tamper response, in the middle of the load
            yield item

    monkeypatch.setattr(store.vault, "templates", racing_templates)
    with pytest.raises(VaultErased):
        store.search(Modality.FACE, x[0], top_k=1)
    assert store._index is None
    assert built and all(not b._full.any() and not b._head.any() and len(b) == 0 for b in built)
    assert all(not bits.any() for _, _, bits in unsealed), "the unsealed rows were overwritten too"


def test_vault_search_scores_on_all_bits(vault_store) -> None:  # type: ignore[no-untyped-def]
    store, x = vault_store
    found = store.search(Modality.FACE, x[3], top_k=2)
    assert found[0].user_id == "user3"
    assert found[0].distance == store.distance("user3", Modality.FACE, x[3]) == 0.0
    assert found[1].distance > found[0].distance


# ------------------------------------------------------------------ float32 projection = float64 bits


def _float64_bits(projection, x: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.packbits(np.asarray(x, dtype=np.float64) @ projection.matrix.T > 0, axis=-1)


@pytest.fixture(scope="module")
def real_embeddings() -> np.ndarray:
    """dlib descriptors of 40 lfw-subset photos and 40 nuaa-dev webcam frames (development data)."""
    from limen.bio.face import FaceEngine, FaceSample
    from limen.capture import load_image
    from tests.conftest import shared

    files = sorted(shared("lfw-subset").glob("*/*.jpg"))[::2][:40]
    files += sorted(shared("nuaa-dev", "live").glob("*/*.jpg"))[::20][:40]
    engine = FaceEngine()
    out = [engine.extract(load_image(f)) for f in files]
    return np.array([s.embedding for s in out if isinstance(s, FaceSample)])


def test_float32_projection_gives_the_float64_bits_of_real_embeddings(real_embeddings: np.ndarray) -> None:
    from limen.vault.hazmat.transforms import SignProjection

    assert len(real_embeddings) >= 60
    for key in (b"a" * 32, b"b" * 32):
        projection = SignProjection.from_key(key, 128, thresholds.VAULT_FACE_BITS)
        fast = projection.project(real_embeddings)
        want = _float64_bits(projection, real_embeddings)
        assert np.array_equal(fast, want)  # identical sign bits, hence identical Hamming distances
        one = np.array([projection.project(e) for e in real_embeddings])
        assert np.array_equal(one, want)


def test_float32_projection_settles_values_at_the_edge_in_float64() -> None:
    from limen.vault.hazmat.transforms import SignProjection

    projection = SignProjection.from_key(b"c" * 32, 128, 4096)
    rng = np.random.default_rng(5)
    x, _ = synthetic_faces(20, 1, seed=6)
    edge = []
    for i, e in enumerate(x):  # each embedding placed a hair off one secret direction's hyperplane
        row = projection.matrix[i * 17]
        e = e - (e @ row) * row + rng.choice([-1.0, 1.0]) * 1e-9 * row
        edge.append(e)
    edge_x = np.array(edge)
    want = _float64_bits(projection, edge_x)
    assert np.array_equal(projection.project(edge_x), want)
    naive = np.packbits(edge_x.astype(np.float32) @ projection.matrix32.T > 0, axis=-1)
    assert not np.array_equal(naive, want), "the edge cases must be ones float32 alone gets wrong"
