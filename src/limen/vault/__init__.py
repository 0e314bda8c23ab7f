"""The template vault: irreversible, renewable, sealed templates; keys in a key store; crypto-erase.

Public API:

* `open_template_store(settings) -> VaultTemplateStore` – what the CLI and the
  service call.  It finishes any interrupted zeroize first, then opens (or, on
  a brand-new data directory, provisions) the vault.
* `VaultTemplateStore` – the `TemplateStore` of the face pipeline plus
  `status()`, `zeroize()`, `rotate()`, `reprovision()`, `close()`.
* `TemplateVault`, `VaultStatus` – the recipe underneath.

Where things live (defaults): root keys in `<data_dir>/keys/vault-root.key`
(software store) or in the PKCS#11 token, each data key wrapped also under a
companion key in `<data_dir>/keys/vault-companion.key` (`keystore.split`); sealed records in the `vault_records`
table of `limen.db`, or, with `fragments_n > 1`, as AONT-RS fragments in
`fragment_dirs` (index in `limen.db`); state markers in `<data_dir>/vault/`.
"""

from __future__ import annotations

from pathlib import Path

from limen.config import KeyStoreKind, Settings
from limen.db import open_db
from limen.errors import ConfigError
from limen.vault import files, secrets
from limen.vault.fragments import DirectoryLocation, FragmentLocation
from limen.vault.journal import Journal
from limen.vault.keystore import KeyStore, SoftwareKeyStore
from limen.vault.keystore.sidekeys import PIN_PEPPER, TOKEN_PEPPER_MARKER, SideKey, open_side_key
from limen.vault.keystore.software import default_key_path
from limen.vault.keystore.split import COMPANION_KEY, SplitKeyStore
from limen.vault.recipe import TemplateVault, VaultStatus, ZeroizeTiming
from limen.vault.records import FINGERPRINTS, FragmentedRecords, FragmentSet, RecordStore, SqliteRecords, register_side
from limen.vault.store import VaultTemplateStore

__all__ = [
    "TemplateVault", "VaultStatus", "VaultTemplateStore", "ZeroizeTiming", "open_keystore", "open_template_store",
]


def open_keystore(settings: Settings) -> KeyStore:
    """The key store named by `settings.keystore` (`KeyStoreError` if it cannot be opened)."""
    if settings.keystore == KeyStoreKind.PKCS11:
        from limen.vault.keystore.pkcs11 import Pkcs11KeyStore

        pin = settings.pkcs11_pin.get_secret_value() if settings.pkcs11_pin is not None else None
        token = Pkcs11KeyStore(settings.pkcs11_module, settings.pkcs11_token_label, pin)
        return SplitKeyStore(token, SoftwareKeyStore(settings.keys_dir / COMPANION_KEY))
    return SoftwareKeyStore(default_key_path(settings.keys_dir))


def _records(settings: Settings) -> RecordStore:
    """The vault's own connection: `open_template_store` is the first thing `open_runtime` does (recovery path)."""
    conn = open_db(settings.db_path)
    conn.execute("PRAGMA secure_delete=ON")  # a deleted record's pages are zeroed, whatever the build's default
    if settings.fragments_n == 1 and settings.fragments_k == 1 and not settings.fragment_dirs:
        return SqliteRecords(conn)
    dirs: list[Path] = list(settings.fragment_dirs)
    if len(dirs) != settings.fragments_n or not 1 <= settings.fragments_k <= settings.fragments_n:
        conn.close()
        raise ConfigError(
            f"fragments: need fragments_n ({settings.fragments_n}) fragment_dirs and 1 <= k <= n"
            f" (got {len(dirs)} dirs, k={settings.fragments_k})"
        )
    locations: list[FragmentLocation] = [DirectoryLocation(d) for d in dirs]
    fingers = FragmentSet([DirectoryLocation(d / FINGERPRINTS) for d in dirs], settings.fragments_k)
    return FragmentedRecords(conn, locations, settings.fragments_k, side=[fingers])


def _token_pepper(settings: Settings) -> SideKey | None:
    """On a PKCS#11 lock, the PIN pepper in the token — unless PINs were already peppered by a key file.

    The marker `keys/pin-pepper.token` records the choice on disk, so every process of
    this lock agrees (an `AccessStore` built without the vault then refuses PIN work).
    """
    if settings.keystore != KeyStoreKind.PKCS11 or (settings.keys_dir / f"{PIN_PEPPER}.key").exists():
        return None
    pepper = open_side_key(settings, PIN_PEPPER)
    marker = settings.keys_dir / TOKEN_PEPPER_MARKER
    if not marker.exists():
        files.atomic_write(marker, f"{settings.pkcs11_token_label}\n".encode())
    return pepper


def open_template_store(settings: Settings) -> VaultTemplateStore:
    """Open the vault of `settings.data_dir`: recover an interrupted erase first, then open or provision."""
    records = _records(settings)
    keystore = open_keystore(settings)
    vault = TemplateVault(keystore, records, Journal(settings.data_dir / "vault"))
    try:
        vault.open()
    except BaseException:
        keystore.close()
        raise
    secrets.register(settings.db_path, vault.secrets, _token_pepper(settings))  # codes, TOTP seeds, PIN pepper
    side = records.side[0] if isinstance(records, FragmentedRecords) and records.side else None
    register_side(settings.data_dir, FINGERPRINTS, side)  # the fingerprint references' shares (bio.finger)
    store = VaultTemplateStore(vault)
    secrets.register_templates(settings.db_path, store)  # for an opted-in backup's export and restore
    return store
