"""Review findings on the token link key: a wrong PIN must not load the key (nor poison the vault's login check),
and a reference naming another module or token than the lock's settings is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from limen.errors import KeyStoreError, LinkError
from limen.link import pki, token_key
from tests.vault.conftest import softhsm_env  # noqa: F401 - the shared token fixture

from .broker import Broker
from .test_token_key import broker, provision, token  # noqa: F401  (fixtures)


def test_a_wrong_pin_cannot_load_the_link_key_while_the_vault_is_logged_in(
        token: pki.TokenAccess, broker: Broker, tmp_path: Path) -> None:  # noqa: F811
    from limen.vault.keystore.pkcs11 import Pkcs11KeyStore

    files = provision(broker, token, tmp_path, "lock-r1")
    vault = Pkcs11KeyStore(token.module, token.token, token.pin, prefix="limen-vault-review")
    try:
        wrong = pki.TokenAccess(token.module, token.token, "not-the-pin")
        with pytest.raises(LinkError):
            pki.client_context(files.ca, files.cert, files.key, wrong)
        with pytest.raises(KeyStoreError):  # the wrong PIN was not recorded as the one that logged in
            Pkcs11KeyStore(token.module, token.token, "not-the-pin", prefix="limen-vault-review").close()
        Pkcs11KeyStore(token.module, token.token, token.pin, prefix="limen-vault-review").close()
    finally:
        vault.close()


def test_a_reference_to_another_module_or_token_is_refused(
        token: pki.TokenAccess, broker: Broker, tmp_path: Path) -> None:  # noqa: F811
    files = provision(broker, token, tmp_path, "lock-r2")
    ref = token_key.read_reference(files.key)
    for forged in (token_key.TokenKeyRef("/tmp/evil.so", ref.token, ref.key_id),
                   token_key.TokenKeyRef(ref.module, "another-token", ref.key_id),
                   token_key.TokenKeyRef(ref.module, ref.token, "")):
        token_key.write_reference(files.key, forged)
        with pytest.raises(LinkError):
            pki.client_context(files.ca, files.cert, files.key, token)
        with pytest.raises(LinkError):
            pki.link_public_key(files.key, token)


def test_the_tls_context_is_not_reached_into_on_a_debug_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl
    import sys

    monkeypatch.setattr(sys, "gettotalrefcount", lambda: 0, raising=False)  # a debug build's marker
    with pytest.raises(LinkError, match="release build"):
        token_key._ssl_ctx(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), None)  # type: ignore[arg-type]
