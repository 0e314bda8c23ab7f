"""The vault's sealed copy of the audit chain head, in `limen.db` (`vault_meta` row ``audit_head``).

A second witness (`limen.audit.witness` has the first): sealed with the
vault's `SecretBox`, so it cannot be forged without the vault's keys, lives in
another file than `audit.db` and the witness file, and is advanced at every
checkpoint.  A crypto-erase removes it (the witness file remains); an erased
or unprovisioned vault witnesses nothing.

A provisioned vault holds the row from its provisioning on (`seal_first_head`,
called by `TemplateVault.provision`, an empty head): deleting the row needs no
key, but an active vault without it has been tampered with, so `read` refuses
it (`AuditError`: a truncation alarm at the next start, `verify` fails) — a
log deleted with the witness file *and* this row no longer looks like a first
start.  What that relies on: the vault's own keys and records (the key store,
the sealed transform) cannot be removed without the vault showing it — see
docs/audit.md, "What the lock cannot see alone".
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import struct

from limen.audit.witness import Head
from limen.errors import AuditError, InvalidSealedTemplate, KeyStoreError, VaultErased
from limen.vault.recipe import TemplateVault

log = logging.getLogger(__name__)

_META = "audit_head"
_LABEL = "audit-head"
_PAYLOAD = struct.Struct(">Q32s")


class SealedHeadWitness:
    name = "vault's sealed head"

    def __init__(self, vault: TemplateVault) -> None:
        self.vault = vault

    def read(self) -> Head | None:
        with self.vault._lock:
            if self.vault.erased() or not self.vault.keystore.generations():
                return None  # erased, unprovisioned or closed: this copy vouches for nothing
            blob = self.vault.records.get_meta(_META)
            if blob is None:  # kept from provisioning on: gone means deleted
                raise AuditError("the vault's sealed audit head was deleted from limen.db (a provisioned vault "
                                 "keeps one from its provisioning on)")
            try:
                payload = self.vault.secrets.unseal(_LABEL, blob)
            except (InvalidSealedTemplate, KeyStoreError):
                raise AuditError("the vault's sealed audit head does not open (forged or foreign)") from None
            if len(payload) != _PAYLOAD.size:
                raise AuditError("the vault's sealed audit head is malformed")
            count, digest = _PAYLOAD.unpack(payload)
            return Head(count, digest.hex() if count else "")

    def identity(self) -> str | None:
        """``vault:<id>`` of the provisioned vault (a hash of its sealed transform secret: a new provision is a
        new vault, whose copy starts empty); None when erased or unprovisioned (it holds nothing, rightly)."""
        with self.vault._lock:
            if self.vault.erased() or not self.vault.keystore.generations():
                return None
            transform = self.vault.records.get_meta("transform")
            if transform is None:
                return None
            return "vault:" + hashlib.sha256(b"limen.audit.witness.vault\0" + transform).hexdigest()[:16]

    def advance(self, head: Head) -> None:
        with self.vault._lock:
            try:
                current = self.read()
            except AuditError as exc:  # kept for the next start to report (it alarms, then resets this copy):
                log.error("vault's copy of the audit head not updated (%s)", exc)  # rewritten now, it would
                return  # vouch for a log cut while the lock ran
            if current is None or current.count < head.count:
                self._write(head)

    def reset(self, head: Head) -> None:
        with self.vault._lock:
            self._write(head)

    def _write(self, head: Head) -> None:
        if self.vault.erased() or not self.vault.keystore.generations():
            return  # nothing to seal under; the witness file still follows the chain
        digest = bytes.fromhex(head.hash) if head.count else bytes(32)
        try:
            blob = self.vault.secrets.seal(_LABEL, _PAYLOAD.pack(head.count, digest))
        except VaultErased:
            return
        self._store(blob)

    def _store(self, blob: bytes) -> None:
        """Write through a connection that never waits: a caller holding `limen.db`'s write lock while it
        appends to the audit log must not stall (or deadlock) on its own witness; a skipped write is a
        witness lagging until the next checkpoint, which `compare` accepts."""
        files = [row[2] for row in self.vault.records.conn.execute("PRAGMA database_list") if row[1] == "main"]
        conn = sqlite3.connect(files[0], timeout=0, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT OR REPLACE INTO vault_meta(name, value) VALUES (?, ?)", (_META, blob))
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            log.info("vault's copy of the audit head not updated now (%s); it follows at the next checkpoint", exc)
        finally:
            conn.close()


def seal_first_head(vault: TemplateVault) -> None:
    """Give a vault being provisioned its empty sealed head, through the vault's own connection (never skipped)."""
    vault.records.set_meta(_META, vault.secrets.seal(_LABEL, _PAYLOAD.pack(0, bytes(32))))
