"""The device's Ed25519 signing keys for the audit trail and the alarm webhook.

The audit key is separate from the template vault's keys: a tamper erase
destroys the vault's keys and keeps this one, so the trail stays verifiable.
It lives in `settings.keys_dir / "audit_ed25519"` (PKCS#8 PEM, mode 0600) with
the raw public key beside it (`audit_ed25519.pub`, base64).  Creation is atomic:
the key is written to a private temporary file, fsynced and hard-linked into
place, so two processes racing end up with the same key and a power cut leaves
either no key or a whole one.  On real hardware the private key would live in
the secure element (ATECC608 / TPM) and only signatures would leave it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from limen.errors import AuditError

AUDIT_KEY_NAME = "audit_ed25519"
WEBHOOK_KEY_NAME = "alert_ed25519"


def key_id(public: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 over the raw public key: names a key in checkpoints."""
    return hashlib.sha256(public_bytes(public)).hexdigest()[:16]


def public_bytes(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_b64(public: Ed25519PublicKey) -> str:
    return base64.b64encode(public_bytes(public)).decode("ascii")


def load_public_b64(text: str) -> Ed25519PublicKey:
    """A raw Ed25519 public key in base64 (the `.pub` file and export format)."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise AuditError("not an Ed25519 public key (expected 32 bytes, base64)") from exc


def verify_signature(public: Ed25519PublicKey, signature_b64: str, message: bytes) -> bool:
    try:
        public.verify(base64.b64decode(signature_b64, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class SigningKey:
    """One Ed25519 key pair; `sign` returns base64."""

    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private.sign(message)).decode("ascii")


def load_or_create_key(keys_dir: Path, name: str = AUDIT_KEY_NAME) -> SigningKey:
    """Load `keys_dir/name`, creating it atomically (0600) if absent; write the public key beside it."""
    path = keys_dir / name
    try:
        keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            _create_atomically(path)
        private = _load_private(path)
        _write_public(path.with_name(name + ".pub"), private.public_key())
    except OSError as exc:
        raise AuditError(f"{path}: cannot read or create the signing key ({exc.strerror})") from exc
    return SigningKey(private)


def known_public_keys(keys_dir: Path, name: str = AUDIT_KEY_NAME) -> dict[str, Ed25519PublicKey]:
    """Every public key kept for `name` (current and retired `name.<key_id>.pub`), by key id."""
    keys: dict[str, Ed25519PublicKey] = {}
    for pub in sorted(keys_dir.glob(f"{name}*.pub")):
        with contextlib.suppress(OSError, AuditError):
            public = load_public_b64(pub.read_text(encoding="ascii"))
            keys[key_id(public)] = public
    return keys


def _create_atomically(path: Path) -> None:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # created 0600
    try:
        os.write(fd, pem)
        os.fsync(fd)
        os.close(fd)
        with contextlib.suppress(FileExistsError):  # another process won the race: use its key
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    _fsync_dir(path.parent)


def _load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise AuditError(f"{path}: signing key is unreadable") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditError(f"{path}: not an Ed25519 key")
    return key


def _write_public(path: Path, public: Ed25519PublicKey) -> None:
    """Write the current `.pub` and a copy named by key id, so retired keys stay known."""
    text = public_b64(public) + "\n"
    for target in (path, path.with_name(path.name[: -len(".pub")] + f".{key_id(public)}.pub")):
        if target.exists() and target.read_text(encoding="ascii") == text:
            continue
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
