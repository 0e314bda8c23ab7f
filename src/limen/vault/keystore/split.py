"""`SplitKeyStore`: every data key wrapped twice — by the token's root key and by a software companion key.

SoftHSM2 "destroys" a key object by unlinking its file, so a copy of the token
directory taken before a zeroize (or the blocks left on disk) brings the root
key back.  Wrapping each data key first under a software companion key of the
same generation (a 0600 key file shredded — overwritten, fsynced, unlinked —
by `destroy_all`) and then under the token's key means a disk remnant of
either alone recovers nothing: the restored token opens only the outer layer.

    wrapped = token.wrap(g, companion.wrap(g, dek, aad), aad)

A hardware token (secure element, TPM, smartcard) adds what neither file can:
the root key never exists outside the chip and its destruction is final.
Generations created before this store existed (no companion key) are opened by
the token alone; `limen vault rotate` moves them under a split generation.
"""

from __future__ import annotations

from limen.errors import InvalidSealedTemplate, KeyStoreError
from limen.vault.keystore.base import KeyStore
from limen.vault.keystore.software import SoftwareKeyStore

COMPANION_KEY = "vault-companion.key"  # in keys_dir, beside the other key files


class SplitKeyStore:
    """A token key store plus a software companion (see the module docstring).  Thread-safe if both are."""

    def __init__(self, token: KeyStore, companion: SoftwareKeyStore) -> None:
        self.token, self.companion = token, companion
        self.kind = token.kind

    def generations(self) -> list[int]:
        return self.token.generations()

    def create_key(self) -> int:
        generation = self.token.create_key()
        self.companion.create_key(generation)
        return generation

    def wrap(self, generation: int, key: bytes | bytearray, aad: bytes) -> bytes:
        if generation not in self.companion.generations():
            if generation not in self.token.generations():  # no companion key for a generation that isn't
                raise KeyStoreError(f"root key generation {generation} is not in the key store")
            self.companion.create_key(generation)  # a legacy generation: new records are split from now on
        return self.token.wrap(generation, self.companion.wrap(generation, key, aad), aad)

    def unwrap(self, generation: int, wrapped: bytes, aad: bytes) -> bytearray:
        inner = self.token.unwrap(generation, wrapped, aad)
        try:
            return self.companion.unwrap(generation, bytes(inner), aad)
        except InvalidSealedTemplate:
            if generation in self.companion.generations():
                raise
            return bytearray(inner)  # wrapped by the token alone, before the companion existed
        finally:
            inner[:] = bytes(len(inner))

    def delete_key(self, generation: int) -> None:
        self.companion.delete_key(generation)
        self.token.delete_key(generation)

    def destroy_all(self) -> None:
        """Shred the companion file first (a local overwrite), then destroy the token's keys."""
        try:
            self.companion.destroy_all()
        finally:
            self.token.destroy_all()

    def close(self) -> None:
        try:
            self.companion.close()
        finally:
            self.token.close()
