"""The fleet PKI: a CA that signs locks' CSRs, revokes, publishes a CRL; TLS 1.3 client contexts.

A lock makes its own P-256 key (`new_key`, written 0600, never sent) and a CSR
naming its lock id (`make_csr`); the fleet CA checks the CSR's signature and
issues a client certificate (`FleetCA.issue`, `LINK_CERT_DAYS`, clientAuth
only).  `needs_rotation` says when less than `LINK_CERT_ROTATE_REMAINING` of
the lifetime is left: the lock then makes a new key and CSR (rotation is a new
key, not a re-signature).  `client_context` is the only TLS setting the link
uses: TLS 1.3 minimum, the fleet CA as the only trust anchor, the broker's
name checked.  No session is resumed: the broker sends TLS 1.3 tickets and
`OP_NO_TICKET` does not make an OpenSSL client refuse them, but the link never
offers one (each connection is made from the context alone), so every
connection runs a fresh ephemeral key exchange.

`Rotation` is the lock's side of automatic rotation: when it is due, a new key
is made beside the current one (`<key>.next`, 0600) and its CSR travels over
the link (`limen/<id>/csr`); the certificate the cloud's CA sends back
(`limen/<id>/cert`) is installed only if the fleet CA issued it, for this lock,
for the pending key, and it is valid now; the same TLS context then loads it,
so the next handshake uses the new key.

Where the vault's keys are in a PKCS#11 token, the link key is made in that
token and never leaves it (`TokenAccess`, `limen.link.token_key`): the key file
then holds only a reference, and every function here that takes a key path
(`new_link_csr`, `link_public_key`, `client_context`, `Rotation`) follows it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from limen import thresholds as T
from limen.errors import BadRequest, LinkError
from limen.link import token_key

if TYPE_CHECKING:
    from limen.config import Settings

PrivateKey = ec.EllipticCurvePrivateKey


# Names the broker's ACL gives more than one lock's topics (`limen_cloud.broker.ACL`): the cloud bridge and the
# Home Assistant user.  A lock's certificate never carries one of them, nor a name that is not a plain id (an
# MQTT wildcard or separator in the CN would widen the ACL's `%u` patterns).
SERVICE_NAMES = frozenset({"limen-cloud", "homeassistant"})
LOCK_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def check_lock_id(name: str) -> str:
    """`name` if it can be a lock's id (and so its certificate's CN); `BadRequest` otherwise."""
    if not LOCK_ID.fullmatch(name) or name in (".", ".."):
        raise BadRequest("csr", "a lock id is 1-64 letters, digits, '.', '_' or '-'")
    if name in SERVICE_NAMES:
        raise BadRequest("csr", f"{name!r} is reserved for the fleet's own services")
    return name


@dataclass(frozen=True)
class TokenAccess:
    """The PKCS#11 token that holds the link key (the vault's token), and its user PIN."""

    module: str
    token: str
    pin: str = field(repr=False)


def token_for(settings: Settings) -> TokenAccess | None:
    """The vault's PKCS#11 token when the lock keeps its keys in one (then the link key lives there too)."""
    from limen.config import KeyStoreKind

    if settings.keystore != KeyStoreKind.PKCS11:
        return None
    if settings.pkcs11_pin is None:
        raise LinkError("keystore = \"pkcs11\" needs pkcs11_pin for the link key")
    return TokenAccess(settings.pkcs11_module, settings.pkcs11_token_label, settings.pkcs11_pin.get_secret_value())


def new_link_csr(path: Path, lock_id: str, token: TokenAccess | None) -> bytes:
    """A new link key at `path` — in `token` when given (a reference file is written), else a 0600 PEM — and its CSR."""
    if token is None:
        return make_csr(new_key(path), lock_id)
    ref = token_key.generate(path, token.module, token.token, token.pin)
    return token_key.make_csr(ref, token.pin, lock_id)


def link_public_key(path: Path, token: TokenAccess | None) -> ec.EllipticCurvePublicKey:
    """The public half of the link key at `path` (a PEM key, or a reference to a token key)."""
    if token_key.is_reference(path):
        return token_key.public_key(_ref(path, token), _pin(path, token))
    return load_key(path).public_key()


def _pin(path: Path, token: TokenAccess | None) -> str:
    if token is None:
        raise LinkError(f"{path}: the link key is in a PKCS#11 token; set keystore = \"pkcs11\" and pkcs11_pin")
    return token.pin


def _ref(path: Path, token: TokenAccess | None) -> token_key.TokenKeyRef:
    """The reference at `path`, refused unless it names the configured module and token (the PIN goes only there)."""
    ref = token_key.read_reference(path)
    _pin(path, token)
    assert token is not None
    if (ref.module, ref.token) != (token.module, token.token):
        raise LinkError(f"{path}: the link key reference names another PKCS#11 module or token than the settings")
    return ref


def _discard(path: Path, token: TokenAccess | None) -> None:
    """Remove a link key: the token's key pair where `path` refers to one, then the file."""
    if token_key.is_reference(path):
        token_key.destroy(_ref(path, token), _pin(path, token))
    path.unlink(missing_ok=True)


def load_chain(context: ssl.SSLContext, cert_file: Path, key_file: Path, token: TokenAccess | None) -> None:
    """Make `context` present `cert_file` with the key at `key_file` (a PEM key or a token reference)."""
    try:
        if token_key.is_reference(key_file):
            token_key.load_into(context, cert_file, _ref(key_file, token), _pin(key_file, token))
        else:
            context.load_cert_chain(str(cert_file), str(key_file))
    except (OSError, ssl.SSLError) as exc:
        raise LinkError(f"cannot load the link's certificates ({exc})") from exc


def new_key(path: Path | None = None) -> PrivateKey:
    """A fresh P-256 key; written as PEM with mode 0600 when `path` is given (the lock's own, never sent)."""
    key = ec.generate_private_key(ec.SECP256R1())
    if path is not None:
        write_key(path, key)
    return key


def write_key(path: Path, key: PrivateKey) -> None:
    """Write `key` as unencrypted PEM readable by its owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem(key))


def make_csr(key: PrivateKey, lock_id: str) -> bytes:
    """The PEM CSR for `lock_id` (common name), signed by the lock's key."""
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, lock_id)]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM)


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def needs_rotation(cert: x509.Certificate, at: datetime) -> bool:
    """True when less than `LINK_CERT_ROTATE_REMAINING` of the certificate's lifetime is left (or it expired)."""
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    return cert.not_valid_after_utc - at < life * T.LINK_CERT_ROTATE_REMAINING


@dataclass
class FleetCA:
    """The fleet's certificate authority (key + self-signed certificate) and its revocation list."""

    key: PrivateKey
    cert: x509.Certificate
    revoked: dict[int, datetime] = field(default_factory=dict)

    @classmethod
    def create(cls, name: str, at: datetime, days: int = 3650) -> FleetCA:
        key = new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(at - timedelta(minutes=5)).not_valid_after(at + timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                               critical=True)
                .sign(key, hashes.SHA256()))
        return cls(key, cert)

    def issue(self, csr_pem: bytes, at: datetime, days: int = T.LINK_CERT_DAYS, *,
              not_before: datetime | None = None, service: bool = False) -> x509.Certificate:
        """A client certificate for the lock whose CSR this is (its signature is checked; CN kept).

        The CN must be a plain lock id, not a service's name (`check_lock_id`); `service=True` issues for one of
        `SERVICE_NAMES` instead (the cloud bridge's own certificate, `limen_cloud.broker.issue_cloud_client`)."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError as exc:
            raise BadRequest("csr", "not a PEM certificate signing request") from exc
        if not csr.is_signature_valid:
            raise BadRequest("csr", "the CSR's signature does not verify")
        names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if len(names) != 1:
            raise BadRequest("csr", "exactly one common name (the lock id) is required")
        name = str(names[0].value)
        if service:
            if name not in SERVICE_NAMES:
                raise BadRequest("csr", f"{name!r} is not one of the fleet's services")
        else:
            check_lock_id(name)
        start = not_before or at - timedelta(minutes=5)
        return self._build(csr.subject, csr.public_key(), start, start + timedelta(days=days),
                           x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]))

    def issue_server(self, hostname: str, at: datetime, days: int = 365) -> tuple[PrivateKey, x509.Certificate]:
        """A key and certificate for the broker at `hostname` (an IP address or a DNS name)."""
        key = new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
        cert = self._build(subject, key.public_key(), at - timedelta(minutes=5), at + timedelta(days=days),
                           x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), san=_san(hostname))
        return key, cert

    def revoke(self, cert: x509.Certificate, at: datetime) -> None:
        self.revoked[cert.serial_number] = at

    def crl(self, at: datetime, days: int = 7) -> bytes:
        """The signed CRL (PEM) listing every revoked serial; the broker loads it (`crlfile`)."""
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.cert.subject)
                   .last_update(at - timedelta(minutes=5)).next_update(at + timedelta(days=days)))
        for serial, when in sorted(self.revoked.items()):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build())
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    def _build(self, subject: x509.Name, public: ec.EllipticCurvePublicKey | object, start: datetime,
               end: datetime, usage: x509.ExtendedKeyUsage,
               san: x509.SubjectAlternativeName | None = None) -> x509.Certificate:
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise BadRequest("csr", "a P-256 key is required")
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(self.cert.subject)
                   .public_key(public).serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(usage, critical=False))
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        return builder.sign(self.key, hashes.SHA256())


def _san(hostname: str) -> x509.SubjectAlternativeName:
    try:
        return x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(hostname))])
    except ValueError:
        return x509.SubjectAlternativeName([x509.DNSName(hostname)])


def client_context(ca_file: Path, cert_file: Path | None, key_file: Path | None,
                   token: TokenAccess | None = None) -> ssl.SSLContext:
    """TLS 1.3 only, the fleet CA only, broker name checked; our certificate if given (no session is kept: a
    connection made from it without `session=` is never resumed).

    A `key_file` that refers to a PKCS#11 key is used through `token` (the key signs inside it).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.options |= ssl.OP_NO_TICKET
    try:
        ctx.load_verify_locations(cafile=str(ca_file))
        if cert_file is not None and key_file is None:
            ctx.load_cert_chain(str(cert_file))
    except (OSError, ssl.SSLError) as exc:
        raise LinkError(f"cannot load the link's certificates ({exc})") from exc
    if cert_file is not None and key_file is not None:
        load_chain(ctx, cert_file, key_file, token)
    return ctx


def load_key(path: Path) -> PrivateKey:
    """The lock's link key from `path` (PEM, unencrypted, 0600)."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise LinkError(f"{path}: cannot load the link key ({exc})") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise LinkError(f"{path}: not a P-256 key")
    return key


@dataclass(frozen=True)
class LinkFiles:
    """Where a lock keeps its link's trust anchor, certificate and key (all PEM; the key 0600).

    With `token`, the key file refers to a key pair inside that PKCS#11 token (`limen.link.token_key`).
    """

    ca: Path
    cert: Path
    key: Path
    token: TokenAccess | None = None

    @property
    def pending_key(self) -> Path:
        return self.key.with_name(self.key.name + ".next")


def finish_rotation(files: LinkFiles) -> bool:
    """Complete an install interrupted after the certificate was replaced (call before loading); True if so."""
    pending = files.pending_key
    if not pending.exists():
        return False
    try:
        current = x509.load_pem_x509_certificate(files.cert.read_bytes())
    except (OSError, ValueError):
        return False
    if current.public_key() != link_public_key(pending, files.token):
        return False
    old = _ref(files.key, files.token) if token_key.is_reference(files.key) else None
    os.replace(pending, files.key)
    if old is not None:
        token_key.destroy(old, _pin(files.key, files.token))
    return True


class Rotation:
    """Automatic rotation of the lock's link certificate (a new key each time; the old one is replaced).

    Crash-safe: the certificate is replaced first, then the key; `finish_rotation()` at start completes an
    install that stopped between the two (the certificate already matches the pending key).  Not thread-safe.
    """

    def __init__(self, lock_id: str, files: LinkFiles, context: ssl.SSLContext) -> None:
        self.lock_id, self.files, self.context = lock_id, files, context

    def current(self) -> x509.Certificate:
        try:
            return x509.load_pem_x509_certificate(self.files.cert.read_bytes())
        except (OSError, ValueError) as exc:
            raise LinkError(f"{self.files.cert}: no usable link certificate ({exc})") from exc

    def due(self, at: datetime) -> bool:
        return needs_rotation(self.current(), at)

    def request(self) -> bytes:
        """A new pending key (replacing an older pending one) and its CSR to send to the fleet CA."""
        if self.files.pending_key.exists():
            _discard(self.files.pending_key, self.files.token)
        return new_link_csr(self.files.pending_key, self.lock_id, self.files.token)

    def install(self, cert_pem: bytes, at: datetime) -> x509.Certificate:
        """Check and install a certificate for the pending key; `BadRequest` (nothing changed) otherwise."""
        cert = self._checked(cert_pem, at)
        tmp = self.files.cert.with_name(self.files.cert.name + ".tmp")
        tmp.write_bytes(pem(cert))
        old = _ref(self.files.key, self.files.token) if token_key.is_reference(self.files.key) else None
        os.replace(tmp, self.files.cert)  # first the certificate (recover() completes a crash here) …
        os.replace(self.files.pending_key, self.files.key)  # … then the key
        load_chain(self.context, self.files.cert, self.files.key, self.files.token)
        if old is not None:  # the replaced key pair leaves the token (a crash before this leaves an unused key)
            token_key.destroy(old, _pin(self.files.key, self.files.token))
        return cert

    def _checked(self, cert_pem: bytes, at: datetime) -> x509.Certificate:
        if not self.files.pending_key.exists():
            raise BadRequest("certificate", "no rotation is pending")
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
            anchor = x509.load_pem_x509_certificate(self.files.ca.read_bytes())
            cert.verify_directly_issued_by(anchor)
        except (OSError, ValueError, TypeError, InvalidSignature) as exc:
            raise BadRequest("certificate", "not a certificate issued by the fleet CA") from exc
        names = [n.value for n in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if names != [self.lock_id]:
            raise BadRequest("certificate", "issued for another lock")
        if cert.public_key() != link_public_key(self.files.pending_key, self.files.token):
            raise BadRequest("certificate", "not for this lock's pending key")
        if not cert.not_valid_before_utc <= at + timedelta(seconds=T.LINK_CLOCK_SKEW_S) < cert.not_valid_after_utc:
            raise BadRequest("certificate", "not valid now")
        return cert
