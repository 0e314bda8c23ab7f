"""Key stores for the vault's root keys: software (development) and PKCS#11 (production)."""

from limen.vault.keystore.base import KeyStore
from limen.vault.keystore.software import SoftwareKeyStore

__all__ = ["KeyStore", "SoftwareKeyStore"]
