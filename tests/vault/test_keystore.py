"""Runs the `KeyStore` contract (`keystore_contract.py`) against every implementation, plus each one's own checks.

Software file, PKCS#11 (SoftHSM2), and the split store over a software token
(`test_split.py` runs it over a PKCS#11 token).
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from limen.errors import InvalidSealedTemplate, KeyStoreError
from limen.vault.keystore.base import KeyStore
from limen.vault.keystore.software import SoftwareKeyStore
from limen.vault.keystore.split import SplitKeyStore
from tests.vault.conftest import SOFTHSM_MODULE, TOKEN_LABEL, TOKEN_PIN
from tests.vault.keystore_contract import KeyStoreContract

__all__ = ["KeyStoreContract"]  # test_split.py imports it from here


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


class TestSplitOverSoftwareToken(KeyStoreContract):
    """The split store's layering, without SoftHSM2 (a software store plays the token)."""

    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> None:
        self.token_path = tmp_path / "keys" / "token.key"
        self.companion_path = tmp_path / "keys" / "vault-companion.key"

    def make(self) -> KeyStore:
        return SplitKeyStore(SoftwareKeyStore(self.token_path), SoftwareKeyStore(self.companion_path))

    def reopen(self, ks: KeyStore) -> KeyStore:
        ks.close()
        return self.make()

    def test_both_layers_are_needed(self) -> None:
        ks = self.make()
        gen = ks.create_key()
        wrapped = ks.wrap(gen, b"k" * 32, b"a")
        inner = SoftwareKeyStore(self.token_path).unwrap(gen, wrapped, b"a")
        assert b"k" * 32 not in bytes(inner)  # the token alone opens only the outer layer
        companion = SoftwareKeyStore(self.companion_path)
        with pytest.raises(InvalidSealedTemplate):
            companion.unwrap(gen, wrapped, b"a")  # and the companion alone opens nothing
