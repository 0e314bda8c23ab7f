"""The `TemplateStore` contract, run against every implementation.

Each implementation subclasses `TemplateStoreContract` and provides `store`.
Distances are on the store's own scale; the contract only relies on the
store's own thresholds (same person at or below `threshold`, another above).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from limen.bio.templates import InMemoryTemplateStore, Modality, OperatingPoint, TemplateStore
from limen.config import load_settings
from limen.errors import InputError, NotFound
from limen.vault import open_template_store
from tests.vault.conftest import SOFTHSM_MODULE, TOKEN_LABEL, TOKEN_PIN, synthetic_faces


@pytest.fixture(scope="module")
def faces() -> tuple[np.ndarray, np.ndarray]:
    """Two samples each of 6 synthetic people: rows 2i and 2i + 1 are person i."""
    x, _ = synthetic_faces(6, 2, seed=11)
    return x[0::2], x[1::2]


class TemplateStoreContract:
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[TemplateStore]:
        raise NotImplementedError

    def test_is_a_template_store(self, store: TemplateStore) -> None:
        assert isinstance(store, TemplateStore)

    def test_same_person_matches_and_others_do_not(self, store: TemplateStore, faces) -> None:  # type: ignore[no-untyped-def]
        enrolled, probes = faces
        for i, ref in enumerate(enrolled):
            store.put(f"p{i}", Modality.FACE, ref)
        threshold = store.threshold(Modality.FACE)
        for i, probe in enumerate(probes):
            assert store.distance(f"p{i}", Modality.FACE, probe) <= threshold
            others = [store.distance(f"p{j}", Modality.FACE, probe) for j in range(len(enrolled)) if j != i]
            assert min(others) > threshold

    def test_search_is_closest_first_and_agrees_with_distance(self, store: TemplateStore, faces) -> None:  # type: ignore[no-untyped-def]
        enrolled, probes = faces
        for i, ref in enumerate(enrolled):
            store.put(f"p{i}", Modality.FACE, ref)
        found = store.search(Modality.FACE, probes[2], top_k=3)
        assert [c.user_id for c in found][:1] == ["p2"] and len(found) == 3
        assert [c.distance for c in found] == sorted(c.distance for c in found)
        for c in found:
            assert c.distance == pytest.approx(store.distance(c.user_id, Modality.FACE, probes[2]))
        assert len(store.search(Modality.FACE, probes[2], top_k=100)) == len(enrolled)

    def test_put_replaces(self, store: TemplateStore, faces) -> None:  # type: ignore[no-untyped-def]
        enrolled, probes = faces
        store.put("p", Modality.FACE, enrolled[0])
        store.put("p", Modality.FACE, enrolled[1])
        assert store.distance("p", Modality.FACE, probes[1]) <= store.threshold(Modality.FACE)
        assert store.distance("p", Modality.FACE, probes[0]) > store.threshold(Modality.FACE)
        assert len(store.search(Modality.FACE, probes[1], top_k=5)) == 1

    def test_delete_removes_every_reference(self, store: TemplateStore, faces) -> None:  # type: ignore[no-untyped-def]
        enrolled, probes = faces
        store.put("gone", Modality.FACE, enrolled[0])
        store.put("kept", Modality.FACE, enrolled[1])
        assert store.delete("gone") == 1
        assert store.delete("gone") == 0
        with pytest.raises(NotFound):
            store.distance("gone", Modality.FACE, probes[0])
        assert [c.user_id for c in store.search(Modality.FACE, probes[0], top_k=5)] == ["kept"]

    def test_unknown_user_and_empty_store(self, store: TemplateStore, faces) -> None:  # type: ignore[no-untyped-def]
        _, probes = faces
        assert store.search(Modality.FACE, probes[0], top_k=3) == []
        with pytest.raises(NotFound):
            store.distance("nobody", Modality.FACE, probes[0])

    def test_stricter_points_have_lower_thresholds(self, store: TemplateStore) -> None:
        loose, strict = store.threshold(Modality.FACE, OperatingPoint.FMR_1E3), store.threshold(
            Modality.FACE, OperatingPoint.FMR_1E4)
        assert strict <= loose
        assert store.threshold(Modality.FACE) == store.threshold(Modality.FACE, OperatingPoint.DEFAULT)

    @pytest.mark.parametrize("bad", [np.zeros(127), np.full(128, np.nan), np.zeros((2, 128))])
    def test_bad_references_are_refused_and_nothing_is_stored(self, store: TemplateStore, bad: np.ndarray) -> None:
        with pytest.raises(InputError):
            store.put("bad", Modality.FACE, bad)
        with pytest.raises(NotFound):
            store.distance("bad", Modality.FACE, np.ones(128))

    def test_the_caller_cannot_change_a_stored_reference(self, store: TemplateStore, faces) -> None:  # type: ignore[no-untyped-def]
        enrolled, probes = faces
        ref = enrolled[0].copy()
        store.put("p", Modality.FACE, ref)
        ref[:] = enrolled[3]
        assert store.distance("p", Modality.FACE, probes[0]) <= store.threshold(Modality.FACE)


class TestInMemoryTemplateStore(TemplateStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[TemplateStore]:
        yield InMemoryTemplateStore()


class TestVaultTemplateStore(TemplateStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[TemplateStore]:
        store = open_template_store(load_settings(tmp_path / "data"))
        yield store
        store.close()


class TestVaultTemplateStoreReopened(TemplateStoreContract):
    """The vault store whose index is rebuilt from the sealed records after every write (as after a restart)."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[TemplateStore]:
        store = open_template_store(load_settings(tmp_path / "data"))
        put = store.put

        def put_then_forget(user_id: str, modality: Modality, reference: np.ndarray) -> None:
            put(user_id, modality, reference)
            store._drop_index()

        store.put = put_then_forget  # type: ignore[method-assign]
        yield store
        store.close()


class TestVaultTemplateStoreFragmented(TemplateStoreContract):
    """The vault store whose sealed records are split 2-of-3 across fragment folders (`FragmentedRecords`)."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[TemplateStore]:
        from limen.vault.records import FragmentedRecords

        dirs = [tmp_path / f"frag{i}" for i in range(3)]
        store = open_template_store(load_settings(tmp_path / "data", fragments_n=3, fragments_k=2,
                                                  fragment_dirs=dirs))
        assert isinstance(store.vault.records, FragmentedRecords)
        yield store
        store.close()

    def test_references_live_in_the_fragments(self, store: TemplateStore, faces, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
        enrolled, _ = faces
        store.put("p", Modality.FACE, enrolled[0])
        assert all(any(p.is_file() for p in (tmp_path / f"frag{i}").rglob("*")) for i in range(3))


@pytest.mark.usefixtures("softhsm_env")
class TestVaultTemplateStoreOnToken(TemplateStoreContract):
    """The vault store whose root keys are in a PKCS#11 token (SoftHSM2; `SplitKeyStore` over it)."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[TemplateStore]:
        from limen.vault.keystore.split import SplitKeyStore

        settings = load_settings(tmp_path / "data", keystore="pkcs11", pkcs11_module=SOFTHSM_MODULE,
                                 pkcs11_token_label=TOKEN_LABEL, pkcs11_pin=TOKEN_PIN)
        store = open_template_store(settings)
        assert isinstance(store.vault.keystore, SplitKeyStore)
        yield store
        store.zeroize()  # the token is shared by the session: leave no root key behind
        store.close()
