"""One contract suite, run against the software store and against PKCS#11 (SoftHSM2)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from limen.errors import InvalidSealedTemplate, KeyStoreError
from limen.vault.keystore.base import KeyStore
from limen.vault.keystore.software import SoftwareKeyStore
from tests.vault.conftest import SOFTHSM_MODULE, TOKEN_LABEL, TOKEN_PIN


class KeyStoreContract:
    """Behaviour every `KeyStore` must have; subclasses provide `make()`."""

    def make(self) -> KeyStore:
        raise NotImplementedError

    def test_is_a_keystore(self) -> None:
        assert isinstance(self.make(), KeyStore)

    def test_wrap_unwrap_round_trip(self) -> None:
        ks = self.make()
        gen = ks.create_key()
        dek = os.urandom(32)
        wrapped = ks.wrap(gen, dek, b"aad")
        assert dek not in wrapped
        assert bytes(ks.unwrap(gen, wrapped, b"aad")) == dek

    def test_unwrap_failures_are_opaque(self) -> None:
        ks = self.make()
        gen = ks.create_key()
        wrapped = ks.wrap(gen, os.urandom(32), b"aad")
        bad = [(gen, wrapped, b"other"), (gen, wrapped[:-1], b"aad"), (gen + 7, wrapped, b"aad"),
               (gen, wrapped[:5], b"aad"), (gen, bytes([wrapped[0] ^ 1]) + wrapped[1:], b"aad")]
        for g, w, aad in bad:
            with pytest.raises(InvalidSealedTemplate):
                ks.unwrap(g, w, aad)

    def test_generations_rotate_and_delete(self) -> None:
        ks = self.make()
        g1 = ks.create_key()
        g2 = ks.create_key()
        assert g2 > g1 and ks.generations()[-2:] == [g1, g2]
        w1 = ks.wrap(g1, b"k" * 32, b"a")
        ks.delete_key(g1)
        ks.delete_key(g1)  # idempotent
        assert g1 not in ks.generations()
        with pytest.raises(InvalidSealedTemplate):
            ks.unwrap(g1, w1, b"a")

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

    def test_keys_survive_reopen(self) -> None:
        ks = self.make()
        gen = ks.create_key()
        wrapped = ks.wrap(gen, b"k" * 32, b"a")
        again = self.reopen(ks)
        assert bytes(again.unwrap(gen, wrapped, b"a")) == b"k" * 32

    def reopen(self, ks: KeyStore) -> KeyStore:
        raise NotImplementedError


class TestSoftwareKeyStore(KeyStoreContract):
    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> None:
        self.path = tmp_path / "keys" / "vault-root.key"

    def make(self) -> KeyStore:
        return SoftwareKeyStore(self.path)

    def reopen(self, ks: KeyStore) -> KeyStore:
        ks.close()
        return SoftwareKeyStore(self.path)

    def test_key_file_is_private_and_shredded(self) -> None:
        ks = SoftwareKeyStore(self.path)
        ks.create_key()
        assert stat.S_IMODE(self.path.stat().st_mode) == 0o600
        held = ks._keys[1]
        ks.destroy_all()
        assert not self.path.exists()
        assert held == bytearray(32)  # the in-memory buffer was overwritten

    def test_corrupt_key_file_is_refused(self) -> None:
        ks = SoftwareKeyStore(self.path)
        ks.create_key()
        raw = bytearray(self.path.read_bytes())
        raw[6] ^= 1
        self.path.write_bytes(bytes(raw))
        broken = SoftwareKeyStore(self.path)
        with pytest.raises(KeyStoreError):
            broken.generations()
        with pytest.raises(KeyStoreError):
            broken.create_key()
        broken.destroy_all()  # a broken store can still be crypto-erased
        assert not self.path.exists() and broken.generations() == []


@pytest.mark.usefixtures("softhsm_env")
class TestPkcs11KeyStore(KeyStoreContract):
    @pytest.fixture(autouse=True)
    def _clean(self, softhsm_env: dict[str, str], request: pytest.FixtureRequest) -> None:
        from limen.vault.keystore.pkcs11 import Pkcs11KeyStore

        self.prefix = f"t-{request.node.name[:40]}"
        Pkcs11KeyStore(SOFTHSM_MODULE, TOKEN_LABEL, TOKEN_PIN, prefix=self.prefix).destroy_all()

    def make(self) -> KeyStore:
        from limen.vault.keystore.pkcs11 import Pkcs11KeyStore

        return Pkcs11KeyStore(SOFTHSM_MODULE, TOKEN_LABEL, TOKEN_PIN, prefix=self.prefix)

    def reopen(self, ks: KeyStore) -> KeyStore:
        return self.make()

    def test_root_key_is_not_extractable(self) -> None:
        import pkcs11

        ks = self.make()
        gen = ks.create_key()
        key = ks._keys[gen]  # type: ignore[attr-defined]
        assert key[pkcs11.Attribute.EXTRACTABLE] is False
        assert key[pkcs11.Attribute.SENSITIVE] is True
        with pytest.raises(pkcs11.PKCS11Error):
            key[pkcs11.Attribute.VALUE]

    def test_wrong_pin_absent_token_and_missing_module(self) -> None:
        from limen.vault.keystore.pkcs11 import Pkcs11KeyStore

        cases = [(SOFTHSM_MODULE, TOKEN_LABEL, "wrong-pin"), (SOFTHSM_MODULE, "no-such", TOKEN_PIN),
                 ("/nonexistent/libpkcs11.so", TOKEN_LABEL, TOKEN_PIN), (SOFTHSM_MODULE, TOKEN_LABEL, None)]
        for module, label, pin in cases:
            with pytest.raises(KeyStoreError) as info:
                Pkcs11KeyStore(module, label, pin)
            assert TOKEN_PIN not in str(info.value) and "wrong-pin" not in str(info.value)
