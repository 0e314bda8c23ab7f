"""Production key store: AES-256 root keys generated inside a PKCS#11 token (python-pkcs11).

Root keys are token objects labelled ``<prefix>-<generation>``, created
non-extractable and sensitive; wrapping and unwrapping of data keys are
AES-GCM operations performed by the token, so a root key never leaves it.
Every PKCS#11 failure (library missing, token absent, wrong PIN, session lost)
becomes `KeyStoreError`; a wrapped key that does not decrypt becomes the opaque
`InvalidSealedTemplate`.  Thread-safe (one session, one lock).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import threading
from typing import Any

import pkcs11
from pkcs11 import Attribute, GCMParams, KeyType, Mechanism, ObjectClass

from limen.errors import InvalidSealedTemplate, KeyStoreError
from limen.vault.hazmat.aead import NONCE_BYTES

_TEMPLATE = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.ENCRYPT: True,
    Attribute.DECRYPT: True,
    Attribute.WRAP: False,
    Attribute.UNWRAP: False,
}
_SIDE_TEMPLATE = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.SIGN: True,
    Attribute.VERIFY: True,
    Attribute.ENCRYPT: False,
    Attribute.DECRYPT: False,
}


class Pkcs11SideKey:
    """An HMAC-SHA256 key computed by the token (see `limen.vault.keystore.sidekeys`)."""

    def __init__(self, name: str, key: Any, store: Pkcs11KeyStore) -> None:
        self.name, self._key, self._store = name, key, store  # the store keeps the session open
        self._lock = store._lock

    def mac(self, data: bytes) -> bytes:
        with self._lock:
            try:
                return bytes(self._key.sign(data, mechanism=Mechanism.SHA256_HMAC))
            except pkcs11.PKCS11Error as exc:
                raise KeyStoreError(f"PKCS#11 HMAC with the {self.name} key failed ({type(exc).__name__})") from None


# PKCS#11 login state is per process: a second session of a logged-in token cannot log in
# again.  Remember a digest of the PIN that logged in, so a later open still checks its PIN.
_LOGINS: dict[tuple[str, str], bytes] = {}


def _pin_digest(module: str, label: str, pin: str) -> bytes:
    return hashlib.sha256(f"{module}\x00{label}\x00{pin}".encode()).digest()


def _open_session(token: Any, module: str, label: str, pin: str) -> Any:
    digest = _pin_digest(module, label, pin)
    try:
        session = token.open(user_pin=pin, rw=True)
    except pkcs11.UserAlreadyLoggedIn:
        known = _LOGINS.get((module, label))
        if known is None or not hmac.compare_digest(known, digest):
            raise pkcs11.PinIncorrect() from None
        return token.open(rw=True)
    _LOGINS[(module, label)] = digest
    return session


class Pkcs11KeyStore:
    """Root keys in a PKCS#11 token; see the module docstring."""

    kind = "pkcs11"

    def __init__(self, module: str, token_label: str, pin: str | None, prefix: str = "limen-vault-root") -> None:
        if not pin:
            raise KeyStoreError("PKCS#11 key store needs a PIN (setting pkcs11_pin); there is no default")
        self.prefix = prefix
        self._lock = threading.Lock()
        try:
            lib = pkcs11.lib(module)
            token = lib.get_token(token_label=token_label)
            self._session: Any = _open_session(token, module, token_label, pin)
        except pkcs11.PinIncorrect:
            raise KeyStoreError(f"PKCS#11 token {token_label!r}: wrong PIN") from None
        except pkcs11.NoSuchToken:
            raise KeyStoreError(f"PKCS#11 token {token_label!r} not present") from None
        except (pkcs11.PKCS11Error, OSError, RuntimeError) as exc:
            raise KeyStoreError(f"PKCS#11 token {token_label!r} unavailable ({type(exc).__name__})") from None
        self._keys: dict[int, Any] = self._scan()

    def _scan(self) -> dict[int, Any]:
        keys: dict[int, Any] = {}
        try:
            for obj in self._session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY}):
                label = str(obj.label or "")
                head, _, tail = label.rpartition("-")
                if head == self.prefix and tail.isdigit():
                    keys[int(tail)] = obj
        except pkcs11.PKCS11Error as exc:
            raise KeyStoreError(f"PKCS#11 token unavailable ({type(exc).__name__})") from None
        return keys

    def generations(self) -> list[int]:
        with self._lock:
            return sorted(self._keys)

    def create_key(self) -> int:
        with self._lock:
            generation = max(self._keys, default=0) + 1
            try:
                key = self._session.generate_key(
                    KeyType.AES, 256, label=f"{self.prefix}-{generation}", store=True, template=_TEMPLATE
                )
            except pkcs11.PKCS11Error as exc:
                raise KeyStoreError(f"PKCS#11 token cannot generate a key ({type(exc).__name__})") from None
            self._keys[generation] = key
            return generation

    def wrap(self, generation: int, key: bytes | bytearray, aad: bytes) -> bytes:
        with self._lock:
            root = self._keys.get(generation)
            if root is None:
                raise KeyStoreError(f"root key generation {generation} is not in the token")
            nonce = os.urandom(NONCE_BYTES)
            try:
                return nonce + bytes(root.encrypt(bytes(key), mechanism=Mechanism.AES_GCM,
                                                  mechanism_param=GCMParams(nonce, aad, 128)))
            except pkcs11.PKCS11Error as exc:
                raise KeyStoreError(f"PKCS#11 wrap failed ({type(exc).__name__})") from None

    def unwrap(self, generation: int, wrapped: bytes, aad: bytes) -> bytearray:
        with self._lock:
            root = self._keys.get(generation)
            if root is None or len(wrapped) <= NONCE_BYTES + 16:
                raise InvalidSealedTemplate()
            nonce, body = wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:]
            try:
                return bytearray(root.decrypt(body, mechanism=Mechanism.AES_GCM,
                                              mechanism_param=GCMParams(nonce, aad, 128)))
            except (pkcs11.PKCS11Error, ValueError):
                raise InvalidSealedTemplate() from None

    def delete_key(self, generation: int) -> None:
        with self._lock:
            key = self._keys.pop(generation, None)
            if key is not None:
                self._destroy(key)

    def destroy_all(self) -> None:
        with self._lock:
            self._keys = {**self._scan(), **self._keys}
            for generation in sorted(self._keys):
                self._destroy(self._keys[generation])
            self._keys.clear()

    def _destroy(self, key: Any) -> None:
        try:
            key.destroy()
        except pkcs11.ObjectHandleInvalid:
            return
        except pkcs11.PKCS11Error as exc:
            raise KeyStoreError(f"PKCS#11 token cannot destroy a key ({type(exc).__name__})") from None

    def side_key(self, name: str) -> Pkcs11SideKey:
        """The HMAC side key `limen-<name>` (never destroyed by `destroy_all`), generated on first use."""
        label = f"limen-{name}"
        with self._lock:
            try:
                key = self._find_side(label)
                if key is None:
                    template = {**_SIDE_TEMPLATE, Attribute.ID: os.urandom(16)}
                    self._session.generate_key(KeyType.GENERIC_SECRET, 256, label=label, store=True,
                                               template=template, mechanism=Mechanism.GENERIC_SECRET_KEY_GEN)
                    key = self._find_side(label)  # two racing processes both settle on the lowest id
            except pkcs11.PKCS11Error as exc:
                raise KeyStoreError(f"PKCS#11 token cannot provide the {name} key ({type(exc).__name__})") from None
        if key is None:
            raise KeyStoreError(f"PKCS#11 token did not keep the {name} key")
        return Pkcs11SideKey(name, key, self)

    def _find_side(self, label: str) -> Any:
        found = list(self._session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: label}))
        return min(found, key=lambda k: bytes(k[Attribute.ID]), default=None)

    def close(self) -> None:
        with self._lock:
            self._keys.clear()
            with contextlib.suppress(pkcs11.PKCS11Error):
                self._session.close()
