"""`TemplateVault`: the recipe that composes the hazmat primitives (like pyca's Fernet).

It makes every security choice itself:

* **protect** – a 128-d embedding becomes `VAULT_FACE_BITS` sign bits of a
  secret orthogonal projection derived from the device transform secret, XORed
  with a mask derived from that secret and a random per-enrolment seed.  No
  raw embedding is ever written.  A new seed (re-enrolment) or a new device
  secret (re-provision) gives an unrelated template: that is revocation.
* **seal** – the protected template (seed ‖ masked bits) is sealed with
  AES-256-GCM under a per-record data key wrapped by the key store's root key
  (`limen.vault.sealed`); the device transform secret is sealed the same way.
* **export / import for a backup** – only when the owner opted in:
  `export_for_backup` hands the transform secret and every record's payload
  (seed ‖ masked bits) to the backup sealer, in memory, as wipeable buffers;
  `import_from_backup` seals them under *this* vault's root key (a replacement
  lock's own key store or token).  The transform itself cannot be renewed on
  import: the sign bits are irreversible by design, so a new transform needs
  the person's face again (re-enrolment).
* **zeroize** – intent journaled, root keys destroyed, then every wrapped data
  key wiped, then the vault is marked erased.  Idempotent; `recover()` finishes
  an interrupted erase and must run before anything else.

Erased rule: once erased the vault stays erased (every template operation
raises `VaultErased`) until an explicit `provision()`; opening never creates
fresh keys over existing records.
"""

from __future__ import annotations

import hmac
import os
import struct
import threading
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from limen import thresholds
from limen.errors import BadRequest, Conflict, InvalidSealedTemplate, KeyStoreError, VaultErased
from limen.vault import sealed
from limen.vault.hazmat import aead
from limen.vault.journal import Journal
from limen.vault.keystore.base import KeyStore
from limen.vault.records import RecordStore
from limen.vault.secrets import SecretBox

if TYPE_CHECKING:  # NumPy and the projection load with the first template (`limen status` needs neither)
    import numpy as np

    from limen.vault.hazmat.transforms import SignProjection

EMBEDDING_DIM = 128
PAYLOAD_V1 = 1
SEED_BYTES = 16
_PAYLOAD = struct.Struct(">BH16s")  # payload version, number of bits, enrolment seed
_TRANSFORM = sealed.Binding("transform")
_SECRETS = sealed.Binding("secrets")


@dataclass(frozen=True)
class ZeroizeTiming:
    crypto_erase_s: float  # call → root keys durably destroyed
    total_s: float  # call → wrapped keys wiped and the vault marked erased


@dataclass(frozen=True)
class VaultStatus:
    state: str  # "active", "erased" or "unprovisioned"
    keystore: str
    key_generations: list[int]
    records: int
    template_bits: int


@dataclass
class TemplateExport:
    """Vault material for an opted-in backup, in the clear: give it only to the backup sealer, `wipe()` after.

    `records` are (user id, modality, payload) with payload = version ‖ bits ‖ seed ‖ masked bits, the
    sealed record's plaintext; without `transform` they are useless, with it they are the person's template.
    """

    transform: bytearray
    bits: int
    records: list[tuple[str, str, bytearray]] = field(default_factory=list)

    def wipe(self) -> None:
        aead.wipe(self.transform)
        for _, _, payload in self.records:
            aead.wipe(payload)
        self.records.clear()


class TemplateVault:
    """Protect, seal, open, erase.  Thread-safe; holds the transform secret in memory only."""

    def __init__(self, keystore: KeyStore, records: RecordStore, journal: Journal,
                 bits: int = thresholds.VAULT_FACE_BITS) -> None:
        self.keystore, self.records, self.journal, self.bits = keystore, records, journal, bits
        self._lock = threading.RLock()
        self._secret: bytearray | None = None
        self._projection: SignProjection | None = None
        self._secrets_key: bytearray | None = None
        self.secrets = SecretBox(self._load_secrets_key)

    # ------------------------------------------------------------ lifecycle
    def recover(self) -> None:
        """Finish an interrupted zeroize, then drop crash leftovers; run before anything else."""
        with self._lock:
            if self.journal.zeroize_pending():
                self._erase()
            if not self.journal.erased():
                self.records.collect_garbage()

    def open(self) -> None:
        """Recover, then open (or provision a brand-new) vault; refuse to invent keys over existing records."""
        with self._lock:
            self._open()
            if not self.erased():
                self._load_secrets_key()  # created now, so later seals only read `vault_meta`

    def _open(self) -> None:
        with self._lock:
            self.recover()
            self.journal.arm()
            if self.journal.erased():
                return
            if self.keystore.generations():
                if self.records.get_meta("transform") is not None:
                    return
                if self.records.count():
                    raise KeyStoreError("vault transform secret missing; re-provision the vault")
                self.provision()  # a first provision was interrupted: nothing to lose
                return
            if self.records.count() or self.records.get_meta("transform") is not None:
                raise KeyStoreError("vault root key missing from the key store; templates cannot be opened")
            self.provision()

    def provision(self) -> None:
        """Fresh root key and transform secret; allowed on a new or erased vault only."""
        with self._lock:
            provisioned = self.keystore.generations() and self.records.get_meta("transform") is not None
            if provisioned and not self.journal.erased():
                raise Conflict("vault is already provisioned; use rotate")
            self.keystore.destroy_all()
            self.records.wipe()
            generation = self.keystore.create_key()
            self.journal.clear_erased()
            self._forget()
            self._load_secrets_key()  # a fresh secrets key: what was sealed before the erase stays lost
            from limen.vault.witness import seal_first_head  # (it imports this module)

            seal_first_head(self)  # before the transform, which makes the vault provisioned: from then on the
            secret = aead.new_key()  # audit head is kept, its row missing is tampering (a crash before: redone)
            try:
                self.records.set_meta("transform", sealed.seal(self.keystore, generation, _TRANSFORM, bytes(secret)))
            finally:
                aead.wipe(secret)

    def status(self) -> VaultStatus:
        with self._lock:
            if self.journal.erased() or self.journal.zeroize_pending():
                state = "erased"
            elif self.keystore.generations():
                state = "active"
            else:
                state = "unprovisioned"
            count = self.records.count() if state == "active" else 0
            return VaultStatus(state, self.keystore.kind, self.keystore.generations(), count, self.bits)

    def zeroize(self) -> ZeroizeTiming:
        """Crypto-erase: journal intent, destroy root keys, wipe wrapped keys, mark erased.  Idempotent.

        Needs no interaction and no unlocked state (tamper response calls it).
        Returns when every step is durable; the timing says when the root keys
        were gone (the crypto-erase point) and when the whole erase finished.
        """
        with self._lock:
            started = time.perf_counter()
            try:
                self.journal.begin_zeroize()
            except OSError:
                # A journal that cannot be written (read-only or failing disk, perhaps provoked)
                # must not stop the erase: destroy the keys anyway; only the power-cut recovery
                # of this one erase is lost.  The error is raised once the keys are gone.
                self._erase(started)
                raise
            return self._erase(started)

    def _erase(self, started: float | None = None) -> ZeroizeTiming:
        started = time.perf_counter() if started is None else started
        if self._secret is not None:
            aead.wipe(self._secret)  # 32 bytes now; the big projection buffer after the keys are gone
        if self._secrets_key is not None:
            aead.wipe(self._secrets_key)
        try:
            self.keystore.destroy_all()
            keys_gone = time.perf_counter()
        finally:
            self._forget()  # whatever happened to the key store, nothing decrypted stays in memory
        self.records.wipe()
        self.journal.finish_zeroize()
        return ZeroizeTiming(keys_gone - started, time.perf_counter() - started)

    def forget(self) -> None:
        """Drop the decrypted transform secret and projection from memory (they reload if still valid)."""
        with self._lock:
            self._forget()

    def holds_secrets(self) -> bool:
        return self._secret is not None or self._projection is not None

    def erased(self) -> bool:
        """Whether an erase was started or finished (by this or any other process): two file checks."""
        return self.journal.erased() or self.journal.zeroize_pending()

    def _forget(self) -> None:
        if self._secrets_key is not None:
            aead.wipe(self._secrets_key)
            self._secrets_key = None
        if self._secret is not None:
            aead.wipe(self._secret)
        if self._projection is not None:
            self._projection.wipe()
        self._secret, self._projection = None, None

    def rotate(self) -> int:
        """New root key; every data key re-wrapped under it; old root keys destroyed.  Returns records moved."""
        with self._lock:
            self._check_active()
            old = self.keystore.generations()
            new = self.keystore.create_key()
            moved = 0
            for user_id, modality, blob in self.records.items():
                binding = sealed.Binding("template", user_id, modality)
                if sealed.generation_of(blob) != new:
                    self.records.put(user_id, modality, sealed.rewrap(self.keystore, binding, blob, new))
                    moved += 1
            for name, binding in (("transform", _TRANSFORM), ("secrets", _SECRETS)):
                meta = self.records.get_meta(name)
                if meta is not None and sealed.generation_of(meta) != new:
                    self.records.set_meta(name, sealed.rewrap(self.keystore, binding, meta, new))
            for generation in old:
                self.keystore.delete_key(generation)
            return moved

    # ------------------------------------------------------------ templates
    def _check_active(self) -> None:
        if self.journal.erased() or self.journal.zeroize_pending():
            raise VaultErased("the template vault was zeroized; re-provision it (limen vault rotate --reprovision)")
        if not self.keystore.generations():
            raise KeyStoreError("vault root key missing from the key store")

    def _transform(self) -> tuple[bytearray, SignProjection]:
        self._check_active()
        if self._secret is None or self._projection is None:
            meta = self.records.get_meta("transform")
            if meta is None:
                raise KeyStoreError("vault transform secret missing; re-provision the vault")
            from limen.vault.hazmat.transforms import SignProjection

            self._secret = bytearray(sealed.unseal(self.keystore, _TRANSFORM, meta))
            self._projection = SignProjection.from_key(self._secret, EMBEDDING_DIM, self.bits)
        return self._secret, self._projection

    def _load_secrets_key(self) -> bytearray:
        """The secrets key of `SecretBox`, created on first use (racing processes keep the first one stored)."""
        with self._lock:
            self._check_active()
            if self._secrets_key is None:
                meta = self.records.get_meta("secrets")
                if meta is None:
                    fresh = aead.new_key()
                    try:
                        blob = sealed.seal(self.keystore, self.keystore.generations()[-1], _SECRETS, bytes(fresh))
                    finally:
                        aead.wipe(fresh)
                    meta = self.records.add_meta(name="secrets", value=blob)
                self._secrets_key = bytearray(sealed.unseal(self.keystore, _SECRETS, meta))
            return self._secrets_key

    def project(self, embedding: np.ndarray) -> np.ndarray:
        """Unmasked protected bits of a probe (packed uint8); never stored."""
        with self._lock:
            _, projection = self._transform()
            return projection.project(_checked(embedding)[None])[0]

    def enrol(self, user_id: str, modality: str, embedding: np.ndarray) -> np.ndarray:
        """Protect and seal `embedding` for (user, modality), replacing any previous record; return its bits."""
        if not user_id or not user_id.isprintable() or len(user_id) > 128:
            raise BadRequest("user_id", "must be 1-128 printable characters")
        import numpy as np

        from limen.vault.hazmat.transforms import enrolment_mask

        with self._lock:
            secret, projection = self._transform()
            bits = projection.project(_checked(embedding)[None])[0]
            seed = os.urandom(SEED_BYTES)
            masked = np.bitwise_xor(bits, enrolment_mask(secret, seed, bits.size))
            payload = _PAYLOAD.pack(PAYLOAD_V1, self.bits, seed) + masked.tobytes()
            generation = self.keystore.generations()[-1]
            blob = sealed.seal(self.keystore, generation, sealed.Binding("template", user_id, modality), payload)
            self.records.put(user_id, modality, blob)
            return bits

    def templates(self) -> Iterator[tuple[str, str, np.ndarray]]:
        """Every stored template unsealed and unmasked: (user_id, modality, packed bits)."""
        with self._lock:
            secret, _ = self._transform()
            for user_id, modality, blob in self.records.items():
                payload = sealed.unseal(self.keystore, sealed.Binding("template", user_id, modality), blob)
                yield user_id, modality, self._unmask(secret, payload)

    def template(self, user_id: str, modality: str) -> np.ndarray | None:
        """One stored template unsealed and unmasked (packed bits; the caller overwrites it), None if absent."""
        with self._lock:
            secret, _ = self._transform()
            blob = self.records.get(user_id, modality)
            if blob is None:
                return None
            payload = sealed.unseal(self.keystore, sealed.Binding("template", user_id, modality), blob)
            return self._unmask(secret, payload)

    def _unmask(self, secret: bytearray, payload: bytes) -> np.ndarray:
        import numpy as np

        from limen.vault.hazmat.transforms import enrolment_mask

        if len(payload) != _PAYLOAD.size + self.bits // 8:
            raise InvalidSealedTemplate()
        version, nbits, seed = _PAYLOAD.unpack_from(payload)
        if version != PAYLOAD_V1 or nbits != self.bits:
            raise InvalidSealedTemplate()
        masked = np.frombuffer(payload, dtype=np.uint8, offset=_PAYLOAD.size)
        return np.bitwise_xor(masked, enrolment_mask(secret, seed, masked.size))

    def delete(self, user_id: str) -> int:
        with self._lock:
            self._check_active()
            return self.records.delete_user(user_id)

    # ------------------------------------------------------------ backup (owner's opt-in only)
    def export_for_backup(self) -> TemplateExport:
        """The transform secret and every record's payload, unsealed (see `TemplateExport`); never logged."""
        with self._lock:
            secret, _ = self._transform()
            out = TemplateExport(bytearray(secret), self.bits)
            try:
                for user_id, modality, blob in self.records.items():
                    payload = sealed.unseal(self.keystore, sealed.Binding("template", user_id, modality), blob)
                    out.records.append((user_id, modality, bytearray(payload)))
            except BaseException:
                out.wipe()
                raise
            return out

    def import_from_backup(self, material: TemplateExport, users: Collection[str]) -> int:
        """Seal the records of `users` from `material` under this vault's own root key; return how many.

        The backup's transform secret becomes this vault's (sealed under this key store) when the vault holds
        no template yet; a vault that holds templates under another transform refuses (`Conflict`): they
        would no longer match.  A payload of another format raises `InvalidSealedTemplate`.
        """
        if material.bits != self.bits or len(material.transform) != aead.KEY_BYTES:
            raise BadRequest("backup", f"templates of another vault format ({material.bits} bits, "
                                       f"this vault uses {self.bits})")
        with self._lock:
            secret, _ = self._transform()
            if not hmac.compare_digest(secret, material.transform):
                if self.records.count():
                    raise Conflict("this vault already holds templates under another transform: "
                                   "erase them first, or enrol again")
                generation = self.keystore.generations()[-1]
                self.records.set_meta("transform", sealed.seal(self.keystore, generation, _TRANSFORM,
                                                               bytes(material.transform)))
                self._forget()  # the projection of the old transform goes; the next use loads the imported one
                secret, _ = self._transform()
            chosen = [(u, m, p) for u, m, p in material.records if u in users]
            for _user, _modality, payload in chosen:
                self._unmask(secret, bytes(payload)).fill(0)  # the format is checked before anything is sealed
            generation = self.keystore.generations()[-1]
            for user_id, modality, payload in chosen:
                binding = sealed.Binding("template", user_id, modality)
                self.records.put(user_id, modality, sealed.seal(self.keystore, generation, binding, bytes(payload)))
            return len(chosen)

    def close(self) -> None:
        with self._lock:
            self.secrets.closed = True
            self._forget()
            self.keystore.close()


def _checked(embedding: np.ndarray) -> np.ndarray:
    import numpy as np

    vec = np.asarray(embedding, dtype=np.float64)
    if vec.shape != (EMBEDDING_DIM,) or not np.all(np.isfinite(vec)):
        raise BadRequest("reference", f"expected a finite {EMBEDDING_DIM}-d embedding")
    return vec
