from __future__ import annotations

import numpy as np
import pytest
from cryptography.exceptions import InvalidTag

from limen.vault.hazmat import aead
from limen.vault.hazmat.kdf import derive
from limen.vault.hazmat.transforms import SignProjection, enrolment_mask, hamming


def test_aead_round_trip_and_tamper() -> None:
    key = aead.new_key()
    blob = aead.encrypt(key, b"payload", b"aad")
    assert aead.decrypt(key, blob, b"aad") == b"payload"
    with pytest.raises(InvalidTag):
        aead.decrypt(key, blob, b"other aad")
    flipped = bytearray(blob)
    flipped[-1] ^= 1
    with pytest.raises(InvalidTag):
        aead.decrypt(key, bytes(flipped), b"aad")
    with pytest.raises(ValueError):
        aead.decrypt(key, blob[:10], b"aad")


def test_wipe_overwrites_buffer() -> None:
    key = aead.new_key()
    aead.wipe(key)
    assert key == bytearray(aead.KEY_BYTES)


def test_kdf_separates_purposes() -> None:
    assert derive(b"k" * 32, b"a") != derive(b"k" * 32, b"b")
    assert derive(b"k" * 32, b"a") == derive(b"k" * 32, b"a")


def test_projection_rows_are_unit_and_keyed() -> None:
    p = SignProjection.from_key(b"k" * 32, 128, 512)
    assert p.matrix.shape == (512, 128)
    assert np.allclose(np.linalg.norm(p.matrix, axis=1), 1.0)
    assert np.array_equal(p.matrix, SignProjection.from_key(b"k" * 32, 128, 512).matrix)
    assert not np.allclose(p.matrix, SignProjection.from_key(b"j" * 32, 128, 512).matrix)


def test_hamming_estimates_angle() -> None:
    rng = np.random.default_rng(1)
    p = SignProjection.from_key(b"k" * 32, 128, 8192)
    a, b = rng.normal(size=128), rng.normal(size=128)
    angle = np.arccos(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    bits = p.project(np.stack([a, b]))
    assert abs(hamming(bits[0], bits[1]) - angle / np.pi) < 0.03


def test_enrolment_masks_differ_per_seed() -> None:
    m1 = enrolment_mask(b"k" * 32, b"s" * 16, 1024)
    m2 = enrolment_mask(b"k" * 32, b"t" * 16, 1024)
    assert 0.4 < hamming(m1, m2) < 0.6
