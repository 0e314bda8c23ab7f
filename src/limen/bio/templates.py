"""The one interface through which biometric references are stored and matched.

Scores are distances on the store's own scale (lower = more alike) and the
store says which threshold gives an operating point, because a protected
store (vault) matches in a transformed domain with its own calibration.
Implementations: `InMemoryTemplateStore` (lab and tests; never persists) and
`limen.vault.VaultTemplateStore` (protected, sealed, persistent).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from limen import thresholds
from limen.errors import BadRequest, NotFound

if TYPE_CHECKING:  # the in-memory store loads NumPy when used (`limen status` imports this module, not NumPy)
    import numpy as np

FACE_DIM = 128  # a face reference: dlib's descriptor (bio.face.embed.EMBEDDING_DIM, not imported: no cv2 here)


class Modality(StrEnum):
    FACE = "face"
    FINGERPRINT = "fingerprint"


class OperatingPoint(StrEnum):
    """Named decision points; each store maps them to its own threshold."""

    DEFAULT = "default"
    FMR_1E3 = "fmr_1e3"
    FMR_1E4 = "fmr_1e4"


@dataclass(frozen=True)
class Candidate:
    user_id: str
    distance: float


@runtime_checkable
class TemplateStore(Protocol):
    """Store, match and delete references; never exposes a stored reference."""

    def put(self, user_id: str, modality: Modality, reference: np.ndarray) -> None:
        """Store (or replace) the reference of `user_id`; atomic."""

    def distance(self, user_id: str, modality: Modality, probe: np.ndarray) -> float:
        """Distance between `probe` and the stored reference; `NotFound` if none."""

    def search(self, modality: Modality, probe: np.ndarray, top_k: int = 5) -> list[Candidate]:
        """The `top_k` closest references, closest first (1:N identification)."""

    def delete(self, user_id: str) -> int:
        """Remove every reference of `user_id`; return how many were removed."""

    def threshold(self, modality: Modality, point: OperatingPoint = OperatingPoint.DEFAULT) -> float:
        """Distance at or below which a probe matches, at `point`."""


_RAW_FACE_THRESHOLDS = {
    OperatingPoint.DEFAULT: thresholds.FACE_MATCH_DEFAULT,
    OperatingPoint.FMR_1E3: thresholds.FACE_MATCH_FMR_1E3,
    OperatingPoint.FMR_1E4: thresholds.FACE_MATCH_FMR_1E4,
}


class InMemoryTemplateStore:
    """Raw embeddings in process memory: for the lab and tests, never written to disk."""

    def __init__(self) -> None:
        self._refs: dict[tuple[str, Modality], np.ndarray] = {}

    def put(self, user_id: str, modality: Modality, reference: np.ndarray) -> None:
        import numpy as np

        ref = np.array(reference, dtype=np.float64)  # a copy: the caller's array may change
        same = [r for (_, m), r in self._refs.items() if m == modality]
        dim = FACE_DIM if modality is Modality.FACE else (same[0].shape[0] if same else ref.size)
        if ref.shape != (dim,) or not np.all(np.isfinite(ref)):
            raise BadRequest("reference", f"expected a finite {dim}-d {modality} reference")
        self._refs[(user_id, modality)] = ref

    def distance(self, user_id: str, modality: Modality, probe: np.ndarray) -> float:
        import numpy as np

        ref = self._refs.get((user_id, modality))
        if ref is None:
            raise NotFound(f"no {modality} reference for user {user_id}")
        return float(np.linalg.norm(ref - probe))

    def search(self, modality: Modality, probe: np.ndarray, top_k: int = 5) -> list[Candidate]:
        import numpy as np

        found = [Candidate(uid, float(np.linalg.norm(ref - probe)))
                 for (uid, m), ref in self._refs.items() if m == modality]
        return sorted(found, key=lambda c: c.distance)[:top_k]

    def delete(self, user_id: str) -> int:
        keys = [k for k in self._refs if k[0] == user_id]
        for k in keys:
            del self._refs[k]
        return len(keys)

    def threshold(self, modality: Modality, point: OperatingPoint = OperatingPoint.DEFAULT) -> float:
        return _RAW_FACE_THRESHOLDS[point]
