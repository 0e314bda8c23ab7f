"""Known-answer vector for sealed format v1 (tests/vault/vectors/sealed_v1.json): old records keep opening."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest

from limen.errors import InvalidSealedTemplate
from limen.vault import sealed
from limen.vault.keystore.software import SoftwareKeyStore

VECTOR = json.loads((Path(__file__).parent / "vectors" / "sealed_v1.json").read_text())


def _store(tmp_path: Path) -> SoftwareKeyStore:
    body = b"LMK1" + struct.pack(">I32s", VECTOR["root_key_generation"], bytes.fromhex(VECTOR["root_key_hex"]))
    path = tmp_path / "vector.key"
    path.write_bytes(body + hashlib.sha256(body).digest())
    return SoftwareKeyStore(path)


def test_v1_vector_opens(tmp_path: Path) -> None:
    binding = sealed.Binding(**VECTOR["binding"])
    blob = bytes.fromhex(VECTOR["sealed_hex"])
    assert blob[0] == VECTOR["format_version"] == sealed.FORMAT_V1
    assert sealed.unseal(_store(tmp_path), binding, blob) == bytes.fromhex(VECTOR["plaintext_hex"])


def test_v1_vector_is_bound_to_its_user(tmp_path: Path) -> None:
    other = sealed.Binding(VECTOR["binding"]["kind"], "someone-else", VECTOR["binding"]["modality"])
    with pytest.raises(InvalidSealedTemplate):
        sealed.unseal(_store(tmp_path), other, bytes.fromhex(VECTOR["sealed_hex"]))
