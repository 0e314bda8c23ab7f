"""`VaultTemplateStore`: the face pipeline's `TemplateStore`, backed by the template vault.

Distances are normalised Hamming distances between protected templates
(0 = identical bits, ≈0.5 = unrelated); thresholds come from the `VAULT_*`
section of `limen.thresholds`.  Sealed records are opened once, on first use,
into an in-memory `BitIndex` per modality (unmasked sign bits, never
persisted); every write goes to the vault first and to the index after.
Thread-safe.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from limen import thresholds
from limen.bio.templates import Candidate, Modality, OperatingPoint
from limen.errors import BadRequest, NotFound, VaultErased
from limen.vault.recipe import TemplateExport, TemplateVault, VaultStatus, ZeroizeTiming

if TYPE_CHECKING:  # NumPy and the index load with the first search (`limen status` needs neither)
    import numpy as np

    from limen.vault.index import BitIndex

_FACE_THRESHOLDS = {
    OperatingPoint.DEFAULT: thresholds.VAULT_FACE_MATCH_DEFAULT,
    OperatingPoint.FMR_1E3: thresholds.VAULT_FACE_MATCH_FMR_1E3,
    OperatingPoint.FMR_1E4: thresholds.VAULT_FACE_MATCH_FMR_1E4,
}


class VaultTemplateStore:
    """Protected, sealed, persistent references (see the module docstring)."""

    def __init__(self, vault: TemplateVault) -> None:
        self.vault = vault
        self._lock = threading.RLock()
        self._index: dict[str, BitIndex] | None = None
        self._swap = threading.Lock()  # guards `_index` and `_epoch` only: a zeroize never waits for a search
        self._epoch = 0  # bumped by every drop of the index

    def _loaded(self) -> dict[str, BitIndex]:
        """The index, built on first use; a zeroize during the build wipes it and raises `VaultErased`."""
        if self._index is None:
            epoch = self._epoch
            index: dict[str, BitIndex] = {}
            try:
                for user_id, modality, bits in self.vault.templates():
                    try:
                        self._index_for(index, modality).add(user_id, bits)
                    finally:
                        bits.fill(0)
                with self._swap:
                    if self._epoch != epoch:
                        raise VaultErased("the template vault was zeroized while its index was loading")
                    self._index = index
            except BaseException:
                _wipe(index)
                raise
        return self._index

    def _index_for(self, index: dict[str, BitIndex], modality: str) -> BitIndex:
        if modality not in index:
            from limen.vault.index import BitIndex

            index[modality] = BitIndex(self.vault.bits // 8, fetch=lambda uid: self.vault.template(uid, modality))
        return index[modality]

    def _check_epoch(self, epoch: int) -> None:
        """Refuse a result computed while a zeroize wiped the index under it."""
        if self._epoch != epoch:
            raise VaultErased("the template vault was zeroized during the search")

    def put(self, user_id: str, modality: Modality, reference: np.ndarray) -> None:
        with self._lock:
            epoch = self._epoch
            index = self._loaded()
            bits = self.vault.enrol(user_id, str(modality), reference)
            try:
                self._index_for(index, str(modality)).add(user_id, bits)
            finally:
                bits.fill(0)
            if self._epoch != epoch:  # erased meanwhile: this index was dropped, leave no row in it
                _wipe(index)
                raise VaultErased("the template vault was zeroized during the enrolment")

    def distance(self, user_id: str, modality: Modality, probe: np.ndarray) -> float:
        with self._lock:
            epoch = self._epoch
            index = self._loaded().get(str(modality))
            found = index.distance(user_id, self.vault.project(probe)) if index is not None else None
            self._check_epoch(epoch)
        if found is None:
            raise NotFound(f"no {modality} reference for user {user_id}")
        return found

    def search(self, modality: Modality, probe: np.ndarray, top_k: int = 5) -> list[Candidate]:
        with self._lock:
            epoch = self._epoch
            index = self._loaded().get(str(modality))
            bits = self.vault.project(probe)
            if index is None:
                return []
            found = [Candidate(uid, d) for uid, d in index.search(bits, top_k)]
            self._check_epoch(epoch)
            return found

    def delete(self, user_id: str) -> int:
        with self._lock:
            index = self._loaded()
            removed = self.vault.delete(user_id)
            for per_modality in index.values():
                per_modality.remove(user_id)
            return removed

    def threshold(self, modality: Modality, point: OperatingPoint = OperatingPoint.DEFAULT) -> float:
        if modality != Modality.FACE:
            raise BadRequest("modality", f"the vault has no calibrated threshold for {modality}")
        return _FACE_THRESHOLDS[point]

    # ------------------------------------------------------------ vault operations
    def status(self) -> VaultStatus:
        return self.vault.status()

    def zeroize(self) -> ZeroizeTiming:
        """Crypto-erase every template now (no prompt; safe to call from tamper response)."""
        try:
            return self.vault.zeroize()
        finally:
            self._drop_index()  # the unmasked search bits go even when the erase failed part-way

    def forget_if_erased(self) -> bool:
        """After an erase by another process (a tamper daemon), drop what this one still holds decrypted.

        Cheap enough to call every second (two file checks); returns True when it dropped something.
        """
        if not self.vault.erased() or (self._index is None and not self.vault.holds_secrets()):
            return False
        with self._lock:
            self._drop_index()
            self.vault.forget()
        return True

    def rotate(self) -> int:
        with self._lock:
            return self.vault.rotate()

    def export_for_backup(self) -> TemplateExport:
        """The vault's material for an opted-in backup (`TemplateVault.export_for_backup`); wipe it after."""
        with self._lock:
            return self.vault.export_for_backup()

    def import_from_backup(self, material: TemplateExport, users: set[str] | frozenset[str]) -> int:
        """Seal a backup's templates of `users` under this vault's keys; the search index reloads after."""
        with self._lock:
            self._drop_index()
            try:
                return self.vault.import_from_backup(material, users)
            finally:
                self._drop_index()

    def reprovision(self) -> None:
        """Fresh keys after a zeroize (or on a new vault); every previous template is gone."""
        with self._lock:
            self._drop_index()
            self.vault.provision()

    def _drop_index(self) -> None:
        with self._swap:
            self._epoch += 1
            index, self._index = self._index, None
        _wipe(index or {})

    def close(self) -> None:
        with self._lock:
            self._drop_index()
            self.vault.close()


def _wipe(index: dict[str, BitIndex]) -> None:
    for per_modality in index.values():
        per_modality.wipe()
