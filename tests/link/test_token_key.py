"""The link key inside a PKCS#11 token (SoftHSM2): made there, never exported, and it signs real TLS 1.3 handshakes."""

from __future__ import annotations

import ssl
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from limen.errors import KeyStoreError, LinkError
from limen.link import pki, token_key
from limen.link.mqtt import MqttLink
from tests.vault.conftest import SOFTHSM_MODULE, TOKEN_LABEL, TOKEN_PIN, softhsm_env  # noqa: F401 - shared token

from .broker import Broker, start_broker

PIN = TOKEN_PIN


@pytest.fixture(scope="module")
def token(request: pytest.FixtureRequest) -> pki.TokenAccess:
    """The suite's shared SoftHSM2 token (SoftHSM reads its configuration once per process, so every test
    module uses the same one); skips where SoftHSM2 or libp11's OpenSSL engine is not installed."""
    request.getfixturevalue("softhsm_env")
    if not any(Path(p).exists() for p in token_key.ENGINE_PATHS):
        pytest.skip(f"the OpenSSL PKCS#11 engine is not installed (apt-get install {token_key.ENGINE_PACKAGE})")
    return pki.TokenAccess(SOFTHSM_MODULE, TOKEN_LABEL, TOKEN_PIN)


@pytest.fixture  # one per test: persistent MQTT sessions must not carry a message into the next test
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from start_broker(tmp_path_factory.mktemp("broker"))


def key_objects(access: pki.TokenAccess, ref: token_key.TokenKeyRef) -> list[dict[str, object]]:
    """The token's objects with the reference's CKA_ID, with the attributes that say whether they can leave."""
    from pkcs11 import Attribute, ObjectClass

    with token_key._session(ref, access.pin) as session:
        found = []
        for obj in session.get_objects({Attribute.ID: bytes.fromhex(ref.key_id)}):
            entry: dict[str, object] = {"class": obj[Attribute.CLASS]}
            if obj[Attribute.CLASS] == ObjectClass.PRIVATE_KEY:
                entry |= {"sensitive": obj[Attribute.SENSITIVE], "extractable": obj[Attribute.EXTRACTABLE]}
            found.append(entry)
        return found


def provision(broker: Broker, access: pki.TokenAccess, tmp_path: Path, name: str,
              days: int = 30, not_before: datetime | None = None) -> pki.LinkFiles:
    files = pki.LinkFiles(broker.ca_file, tmp_path / f"{name}.pem", tmp_path / f"{name}.key", access)
    csr = pki.new_link_csr(files.key, name, access)
    cert = broker.ca.issue(csr, datetime.now(UTC), days, not_before=not_before)
    files.cert.write_bytes(pki.pem(cert))
    return files


def test_the_key_is_made_in_the_token_and_only_a_reference_is_on_disk(token: pki.TokenAccess,
                                                                       tmp_path: Path) -> None:
    key_file = tmp_path / "link-client.key"
    csr = pki.new_link_csr(key_file, "lock-t1", token)
    text = key_file.read_text()
    assert text.startswith(token_key.BEGIN) and "PRIVATE KEY" not in text and PIN not in text
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    ref = token_key.read_reference(key_file)
    objects = key_objects(token, ref)
    private = [o for o in objects if "sensitive" in o]
    assert len(objects) == 2 and private == [{"class": private[0]["class"], "sensitive": True, "extractable": False}]
    issued = pki.FleetCA.create("ca", datetime.now(UTC)).issue(csr, datetime.now(UTC))  # the CSR's signature checks
    assert issued.public_key() == pki.link_public_key(key_file, token)


def test_a_token_key_signs_a_tls_1_3_handshake_with_mosquitto(token: pki.TokenAccess, broker: Broker,
                                                               tmp_path: Path) -> None:
    files = provision(broker, token, tmp_path, "lock-t2")
    context = pki.client_context(files.ca, files.cert, files.key, token)
    link = MqttLink("lock-t2", context, broker.host, broker.port).connect(timeout=5)
    try:
        sock = link.client.socket()
        assert isinstance(sock, ssl.SSLSocket) and sock.version() == "TLSv1.3"
    finally:
        link.close()


def test_a_rotation_makes_the_new_key_in_the_token_and_destroys_the_old_one(token: pki.TokenAccess,
                                                                             broker: Broker, tmp_path: Path) -> None:
    files = provision(broker, token, tmp_path, "lock-t3", not_before=datetime.now(UTC) - timedelta(days=25))
    old = token_key.read_reference(files.key)
    context = pki.client_context(files.ca, files.cert, files.key, token)
    rotation = pki.Rotation("lock-t3", files, context)
    assert rotation.due(datetime.now(UTC))
    csr = rotation.request()
    pending = token_key.read_reference(files.pending_key)
    assert pending.key_id != old.key_id and len(key_objects(token, pending)) == 2
    rotation.install(pki.pem(broker.ca.issue(csr, datetime.now(UTC), 30)), datetime.now(UTC))
    assert token_key.read_reference(files.key) == pending and not files.pending_key.exists()
    assert key_objects(token, old) == []  # the replaced key pair left the token
    link = MqttLink("lock-t3", context, broker.host, broker.port).connect(timeout=5)  # the same context, new key
    try:
        peer = link.client.socket()
        assert isinstance(peer, ssl.SSLSocket) and peer.version() == "TLSv1.3"
    finally:
        link.close()


def test_a_certificate_for_another_key_or_a_wrong_pin_is_refused(token: pki.TokenAccess, broker: Broker,
                                                                  tmp_path: Path) -> None:
    files = provision(broker, token, tmp_path, "lock-t4")
    other = provision(broker, token, tmp_path, "lock-t5")
    with pytest.raises(LinkError, match="does not match"):
        pki.client_context(files.ca, other.cert, files.key, token)
    wrong = pki.TokenAccess(token.module, token.token, "not-the-pin")
    with pytest.raises(LinkError):
        pki.link_public_key(files.key, wrong)
    with pytest.raises(LinkError, match="PKCS#11 token"):  # a reference with no token configured
        pki.client_context(files.ca, files.cert, files.key, None)


def test_a_damaged_reference_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "link-client.key"
    bad.write_text(f"{token_key.BEGIN}\nmodule=/x.so\n{token_key.END}\n")
    with pytest.raises(LinkError, match="incomplete"):
        token_key.read_reference(bad)
    assert token_key.is_reference(bad) and not token_key.is_reference(tmp_path / "absent.key")


def test_the_vault_and_the_link_share_one_token_in_one_process(token: pki.TokenAccess, broker: Broker,
                                                               tmp_path: Path) -> None:
    from limen.vault.keystore.pkcs11 import Pkcs11KeyStore

    vault = Pkcs11KeyStore(token.module, token.token, token.pin, prefix="limen-vault-link-test")
    try:
        generation = vault.create_key()
        wrapped = vault.wrap(generation, b"k" * 32, b"aad")
        files = provision(broker, token, tmp_path, "lock-t6")
        link = MqttLink("lock-t6", pki.client_context(files.ca, files.cert, files.key, token),
                        broker.host, broker.port).connect(timeout=5)
        link.close()
        assert bytes(vault.unwrap(generation, wrapped, b"aad")) == b"k" * 32  # the vault's session still works
        with pytest.raises(KeyStoreError):  # and a wrong PIN is still refused while the token is logged in
            Pkcs11KeyStore(token.module, token.token, "not-the-pin")
    finally:
        vault.destroy_all()
        vault.close()
