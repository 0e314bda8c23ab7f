"""The contract every `KeyStore` passes (software file, PKCS#11 token, split token + companion).

A runner subclasses `KeyStoreContract` and provides `make()` (a store over the
test's storage) and `reopen(ks)` (the same storage opened afresh, as after a
restart).  Runners: `test_keystore.py` (software, PKCS#11, split over a
software token) and `test_split.py` (split over a PKCS#11 token).
"""

from __future__ import annotations

import os
import threading

import pytest

from limen.errors import InvalidSealedTemplate, KeyStoreError
from limen.vault.keystore.base import KeyStore


class KeyStoreContract:
    """Behaviour every `KeyStore` must have; subclasses provide `make()` and `reopen()`."""

    def make(self) -> KeyStore:
        raise NotImplementedError

    def reopen(self, ks: KeyStore) -> KeyStore:
        raise NotImplementedError

    def test_is_a_keystore(self) -> None:
        ks = self.make()
        assert isinstance(ks, KeyStore) and ks.kind in ("software", "pkcs11")

    def test_wrap_unwrap_round_trip(self) -> None:
        ks = self.make()
        gen = ks.create_key()
        dek = os.urandom(32)
        wrapped = ks.wrap(gen, dek, b"aad")
        assert dek not in wrapped
        opened = ks.unwrap(gen, wrapped, b"aad")
        assert isinstance(opened, bytearray) and bytes(opened) == dek  # a bytearray: the caller can wipe it
        assert bytes(ks.unwrap(gen, ks.wrap(gen, bytearray(dek), b"aad"), b"aad")) == dek

    def test_wrap_is_randomised(self) -> None:
        ks = self.make()
        gen = ks.create_key()
        dek = os.urandom(32)
        first, second = ks.wrap(gen, dek, b"aad"), ks.wrap(gen, dek, b"aad")
        assert first != second
        assert bytes(ks.unwrap(gen, first, b"aad")) == bytes(ks.unwrap(gen, second, b"aad")) == dek

    def test_unwrap_failures_are_opaque(self) -> None:
        ks = self.make()
        gen = ks.create_key()
        wrapped = ks.wrap(gen, os.urandom(32), b"aad")
        bad = [(gen, wrapped, b"other"), (gen, wrapped[:-1], b"aad"), (gen + 7, wrapped, b"aad"),
               (gen, wrapped[:5], b"aad"), (gen, b"", b"aad"), (gen, bytes([wrapped[0] ^ 1]) + wrapped[1:], b"aad"),
               (gen, wrapped[:-1] + bytes([wrapped[-1] ^ 1]), b"aad")]
        for g, w, aad in bad:
            with pytest.raises(InvalidSealedTemplate):
                ks.unwrap(g, w, aad)

    def test_wrap_under_an_unknown_generation_is_refused_and_leaves_no_trace(self) -> None:
        ks = self.make()
        gen = ks.create_key()
        with pytest.raises(KeyStoreError):
            ks.wrap(gen + 1, os.urandom(32), b"aad")
        assert ks.generations()[-1] == gen
        assert ks.create_key() == gen + 1  # the refused wrap did not claim the next generation

    def test_generations_rotate_and_delete(self) -> None:
        ks = self.make()
        g1 = ks.create_key()
        g2 = ks.create_key()
        assert g2 > g1 and ks.generations()[-2:] == [g1, g2]
        w1 = ks.wrap(g1, b"k" * 32, b"a")
        w2 = ks.wrap(g2, b"j" * 32, b"a")
        ks.delete_key(g1)
        ks.delete_key(g1)  # idempotent
        ks.delete_key(g2 + 50)  # a generation that never existed: nothing to do
        assert g1 not in ks.generations()
        with pytest.raises(InvalidSealedTemplate):
            ks.unwrap(g1, w1, b"a")
        assert bytes(ks.unwrap(g2, w2, b"a")) == b"j" * 32  # the other generation is untouched
        assert bytes(self.reopen(ks).unwrap(g2, w2, b"a")) == b"j" * 32

    def test_destroy_all_is_crypto_erase_and_idempotent(self) -> None:
        ks = self.make()
        gen = ks.create_key()
        wrapped = ks.wrap(gen, b"k" * 32, b"a")
        ks.destroy_all()
        ks.destroy_all()
        assert ks.generations() == []
        with pytest.raises(InvalidSealedTemplate):
            ks.unwrap(gen, wrapped, b"a")
        reopened = self.reopen(ks)
        assert reopened.generations() == []
        with pytest.raises(InvalidSealedTemplate):
            reopened.unwrap(gen, wrapped, b"a")

    def test_a_new_key_after_destroy_all_opens_nothing_old(self) -> None:
        ks = self.make()
        gen = ks.create_key()
        wrapped = ks.wrap(gen, b"k" * 32, b"a")
        ks.destroy_all()
        fresh = ks.create_key()
        assert ks.generations() == [fresh]
        with pytest.raises(InvalidSealedTemplate):
            ks.unwrap(fresh, wrapped, b"a")
        assert bytes(ks.unwrap(fresh, ks.wrap(fresh, b"n" * 32, b"a"), b"a")) == b"n" * 32

    def test_keys_survive_reopen(self) -> None:
        ks = self.make()
        gen = ks.create_key()
        wrapped = ks.wrap(gen, b"k" * 32, b"a")
        again = self.reopen(ks)
        assert again.generations()[-1] == gen
        assert bytes(again.unwrap(gen, wrapped, b"a")) == b"k" * 32

    def test_concurrent_wraps_all_open(self) -> None:
        ks = self.make()
        gen = ks.create_key()
        results: list[tuple[bytes, bytes]] = []
        errors: list[BaseException] = []

        def work(seed: int) -> None:
            try:
                for i in range(10):
                    dek = bytes([seed, i]) * 16
                    results.append((dek, ks.wrap(gen, dek, b"a")))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and len(results) == 40
        assert all(bytes(ks.unwrap(gen, w, b"a")) == dek for dek, w in results)
