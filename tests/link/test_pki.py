"""Fleet PKI: CSRs signed by the lock's own key, client-only certificates, rotation, CRL."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from limen import thresholds
from limen.errors import BadRequest
from limen.link import pki

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_a_lock_key_stays_on_the_lock_and_its_csr_becomes_a_client_certificate(tmp_path: Path) -> None:
    ca = pki.FleetCA.create("fleet", NOW)
    key = pki.new_key(tmp_path / "keys" / "link.key")
    assert stat.S_IMODE((tmp_path / "keys" / "link.key").stat().st_mode) == 0o600
    csr = pki.make_csr(key, "front-door")
    assert b"PRIVATE" not in csr
    cert = ca.issue(csr, NOW)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "front-door"
    assert cert.public_key() == key.public_key()
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=thresholds.LINK_CERT_DAYS)


def test_a_csr_with_a_bad_signature_or_no_name_is_refused() -> None:
    ca = pki.FleetCA.create("fleet", NOW)
    good = pki.make_csr(pki.new_key(), "front-door")
    with pytest.raises(BadRequest):
        ca.issue(good.replace(b"MI", b"MJ", 1), NOW)
    nameless = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(
        pki.new_key(), pki.hashes.SHA256())
    with pytest.raises(BadRequest, match="common name"):
        ca.issue(nameless.public_bytes(pki.serialization.Encoding.PEM), NOW)


def test_rotation_is_due_when_a_third_of_the_lifetime_remains() -> None:
    ca = pki.FleetCA.create("fleet", NOW)
    cert = ca.issue(pki.make_csr(pki.new_key(), "front-door"), NOW, days=90)
    assert not pki.needs_rotation(cert, NOW + timedelta(days=50))
    assert pki.needs_rotation(cert, NOW + timedelta(days=61))
    assert pki.needs_rotation(cert, NOW + timedelta(days=100))


def test_the_crl_lists_revoked_serials_and_is_signed_by_the_ca() -> None:
    ca = pki.FleetCA.create("fleet", NOW)
    cert = ca.issue(pki.make_csr(pki.new_key(), "stolen"), NOW)
    ca.revoke(cert, NOW)
    crl = x509.load_pem_x509_crl(ca.crl(NOW))
    assert crl.is_signature_valid(ca.cert.public_key())  # type: ignore[arg-type]
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None


@pytest.mark.parametrize("name", ["limen-cloud", "homeassistant", "a/b", "lock+", "#", "..", "d oor", "door\u00e9"])
def test_the_ca_does_not_sign_a_lock_csr_naming_a_service_or_a_topic_pattern(name: str) -> None:
    """A lock CSR with CN `limen-cloud` would be the cloud to the broker's ACL (every lock's commands)."""
    ca = pki.FleetCA.create("fleet", NOW)
    with pytest.raises(BadRequest):
        ca.issue(pki.make_csr(pki.new_key(), name), NOW)


def test_the_service_certificate_is_issued_only_for_a_service_name() -> None:
    ca = pki.FleetCA.create("fleet", NOW)
    cert = ca.issue(pki.make_csr(pki.new_key(), "limen-cloud"), NOW, service=True)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "limen-cloud"
    with pytest.raises(BadRequest):
        ca.issue(pki.make_csr(pki.new_key(), "front-door"), NOW, service=True)
