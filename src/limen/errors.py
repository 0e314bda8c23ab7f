"""Limen's error tree.

Business outcomes (a refused face, a wrong PIN, a spoof) are *values* (`Decision`,
`PadVerdict`), never exceptions.  Exceptions are for things that stop the work:
bad input, broken storage, a missing key.  Anything secret fails with one opaque
error so that an attacker learns nothing from which check failed.

    LimenError
    ├── ConfigError                 invalid settings, unusable data directory
    ├── InputError                  the caller gave something we cannot use
    │   ├── BadImage                unreadable/hostile image or video (names file + reason)
    │   ├── BadRequest              invalid argument (names field + reason)
    │   ├── BadModelFile            a model file that is not what it claims (names file + reason)
    │   └── ConsentRequired         enrolment without explicit consent
    ├── NotFound                    unknown user, credential, record
    ├── Conflict                    duplicate name, credential, index
    ├── StorageError                SQLite/file failure, migration problem
    ├── VaultError
    │   ├── InvalidSealedTemplate   opaque: every unseal failure
    │   ├── KeyStoreError           token absent, wrong PIN, key missing
    │   ├── VaultErased             the vault was crypto-erased (zeroized)
    │   └── FragmentError           too few fragments to rebuild a record
    ├── AuditError
    │   └── ChainBroken             first broken record (index + reason)
    ├── SensorUnavailable           camera SDK not installed or device absent/stopped (names package + device)
    ├── LinkError                   the cloud link (MQTT/TLS, provisioning) failed; wraps paho-mqtt and ssl errors
    │   └── CommandRefused          a remote command the lock will not execute (names the refusal)
    └── LockdownActive              the lock is in tamper lockdown
"""

from __future__ import annotations

from pathlib import Path


class LimenError(Exception):
    """Base of every error Limen raises on purpose."""


class ConfigError(LimenError):
    """Settings are invalid or the data directory cannot be used."""


class InputError(LimenError):
    """The caller gave input that cannot be used."""


class BadImage(InputError):
    """An image, video or folder of frames that cannot be decoded safely."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class BadRequest(InputError):
    """An argument is out of range or malformed."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class BadModelFile(InputError):
    """A model file (weights to import) that is corrupt, hostile or not the expected one."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ConsentRequired(InputError):
    """Biometric enrolment was attempted without explicit, recorded consent."""


class NotFound(LimenError):
    """The named user, credential or record does not exist."""


class Conflict(LimenError):
    """The change would duplicate something that must be unique."""


class StorageError(LimenError):
    """The embedded store failed (disk, SQLite, migrations)."""


class VaultError(LimenError):
    """Base of template-vault failures."""


class InvalidSealedTemplate(VaultError):
    """A sealed template could not be opened.

    Deliberately opaque: wrong key, tampered bytes, truncation and unknown
    version all raise this same error with the same message.
    """

    def __init__(self) -> None:
        super().__init__("invalid sealed template")


class KeyStoreError(VaultError):
    """The key store is unavailable (token absent, wrong PIN, key missing)."""


class VaultErased(VaultError):
    """The vault's keys were destroyed; templates are unrecoverable by design."""


class FragmentError(VaultError):
    """Too few intact fragments remain to rebuild a record."""


class AuditError(LimenError):
    """Base of audit-trail failures."""


class ChainBroken(AuditError):
    """The audit hash chain or a signed checkpoint does not verify."""

    def __init__(self, index: int, reason: str) -> None:
        self.index = index
        self.reason = reason
        super().__init__(f"audit chain broken at record {index}: {reason}")


class SensorUnavailable(LimenError):
    """A camera SDK is not installed, or the device is absent or stopped (names both)."""

    def __init__(self, device: str, reason: str, package: str = "") -> None:
        self.device = device
        self.package = package
        self.reason = reason
        hint = f" (Python package: {package})" if package else ""
        super().__init__(f"{device}: {reason}{hint}")


class LockdownActive(LimenError):
    """The lock is in tamper lockdown until the owner re-provisions it."""


class LinkError(LimenError):
    """The cloud link failed: broker unreachable, TLS refused, a certificate or CSR unusable."""


class CommandRefused(LinkError):
    """A remote command was refused (unsigned, forged, replayed, expired, re-targeted, not allowed).

    `refusal` is a `limen.link.commands.Refusal` value; the message names it, never a secret.
    """

    def __init__(self, refusal: str, detail: str) -> None:
        self.refusal = refusal
        self.detail = detail
        super().__init__(f"command refused ({refusal}): {detail}")
