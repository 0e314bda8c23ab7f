from __future__ import annotations

from pathlib import Path

import pytest

from limen.errors import InvalidSealedTemplate
from limen.vault import sealed
from limen.vault.keystore.software import SoftwareKeyStore

BIND = sealed.Binding("template", "user-1", "face")


@pytest.fixture
def ks(tmp_path: Path) -> SoftwareKeyStore:
    store = SoftwareKeyStore(tmp_path / "root.key")
    store.create_key()
    return store


def test_round_trip_and_version_byte_first(ks: SoftwareKeyStore) -> None:
    blob = sealed.seal(ks, 1, BIND, b"template bits")
    assert blob[0] == sealed.FORMAT_V1
    assert sealed.unseal(ks, BIND, blob) == b"template bits"
    assert b"template bits" not in blob


def _variants(blob: bytes) -> list[bytes]:
    flipped = [bytes(blob[:i]) + bytes([blob[i] ^ 1]) + blob[i + 1 :] for i in (0, 2, 6, 10, len(blob) - 1)]
    return [*flipped, blob[:-1], blob[:20], b"", bytes([9]) + blob[1:]]


def test_every_failure_is_the_same_opaque_error(ks: SoftwareKeyStore, tmp_path: Path) -> None:
    blob = sealed.seal(ks, 1, BIND, b"x" * 64)
    other = SoftwareKeyStore(tmp_path / "other.key")
    other.create_key()
    cases = [(ks, BIND, b) for b in _variants(blob)]
    cases += [(other, BIND, blob)]  # wrong key
    cases += [(ks, sealed.Binding("template", "user-2", "face"), blob)]  # swapped user
    cases += [(ks, sealed.Binding("template", "user-1", "fingerprint"), blob)]  # swapped modality
    messages = set()
    for store, binding, data in cases:
        with pytest.raises(InvalidSealedTemplate) as info:
            sealed.unseal(store, binding, data)
        messages.add(str(info.value))
    assert messages == {"invalid sealed template"}


def test_rewrap_moves_to_new_generation_without_touching_body(ks: SoftwareKeyStore) -> None:
    blob = sealed.seal(ks, 1, BIND, b"payload")
    gen = ks.create_key()
    moved = sealed.rewrap(ks, BIND, blob, gen)
    assert sealed.generation_of(moved) == gen
    assert moved[-30:] == blob[-30:]
    ks.delete_key(1)
    assert sealed.unseal(ks, BIND, moved) == b"payload"
    with pytest.raises(InvalidSealedTemplate):
        sealed.unseal(ks, BIND, blob)
