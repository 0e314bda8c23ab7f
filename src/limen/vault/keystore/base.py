"""The `KeyStore` interface: root keys that wrap per-record data keys.

Root keys are numbered by generation (1, 2, …; newest last).  A store never
exposes a root key: callers hand it a data key to wrap and get bytes back.
Failures of `unwrap` for any reason that depends on the data (wrong key,
tampered bytes, unknown generation) raise the opaque `InvalidSealedTemplate`;
an unusable store (token absent, wrong PIN, corrupt key file) raises
`KeyStoreError`.  `destroy_all` is crypto-erase: idempotent, fast, no prompt.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class KeyStore(Protocol):
    kind: str

    def generations(self) -> list[int]:
        """Generations of the root keys present, oldest first."""

    def create_key(self) -> int:
        """Generate a new root key inside the store; return its generation."""

    def wrap(self, generation: int, key: bytes | bytearray, aad: bytes) -> bytes:
        """Encrypt and authenticate `key` under root key `generation`, bound to `aad`."""

    def unwrap(self, generation: int, wrapped: bytes, aad: bytes) -> bytearray:
        """Inverse of `wrap`; `InvalidSealedTemplate` on any mismatch."""

    def delete_key(self, generation: int) -> None:
        """Destroy one root key (after rotation); idempotent."""

    def destroy_all(self) -> None:
        """Destroy every root key, durably; idempotent."""

    def close(self) -> None:
        """Release the store and overwrite any key material held in memory."""
