"""The vault's transform for evaluation (`limen lab protection`), outside any key store.

`DeviceTransform` is exactly the transform a vault applies, under a throw-away
device secret: `project` gives the unmasked bits a vault matches on, `protect`
the masked bits it seals.  `attacker_view()` hands out the projection matrix,
i.e. what an attacker holding the device transform key knows (ISO/IEC 30136
full-disclosure model).  Lab and tests only: it never touches a data directory.
"""

from __future__ import annotations

import os

import numpy as np

from limen import thresholds
from limen.vault.hazmat.transforms import SignProjection, enrolment_mask
from limen.vault.recipe import EMBEDDING_DIM, SEED_BYTES


class DeviceTransform:
    def __init__(self, secret: bytes | None = None, bits: int = thresholds.VAULT_FACE_BITS) -> None:
        self._secret = secret if secret is not None else os.urandom(32)
        self._projection = SignProjection.from_key(self._secret, EMBEDDING_DIM, bits)

    @property
    def bits(self) -> int:
        return self._projection.bits

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        """Unmasked protected bits, (n, bits/8) packed uint8."""
        return self._projection.project(np.atleast_2d(embeddings))

    def protect(self, embeddings: np.ndarray) -> np.ndarray:
        """Masked bits as sealed by a vault, each row under a fresh enrolment seed."""
        bits = self.project(embeddings)
        masks = [enrolment_mask(self._secret, os.urandom(SEED_BYTES), bits.shape[1]) for _ in range(len(bits))]
        return np.bitwise_xor(bits, np.stack(masks))

    def attacker_view(self) -> np.ndarray:
        """The (bits × 128) projection an attacker holding the device key can rebuild."""
        return self._projection.matrix.copy()


def hamming_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Normalised Hamming distance between every row of `a` and every row of `b` (packed uint8)."""
    wa, wb = np.ascontiguousarray(a).view(np.uint64), np.ascontiguousarray(b).view(np.uint64)
    out = np.empty((len(wa), len(wb)))
    for i, row in enumerate(wa):
        out[i] = np.bitwise_count(np.bitwise_xor(wb, row)).sum(axis=1)
    return out / (8 * a.shape[1])
