"""Face embedding: 150×150 RGB chips → 128-d descriptors (dlib's ResNet, `face_recognition_models`).

`Embedder` is the backend contract; `DlibEmbedder` is the reference.  Faster
backends (see `get_embedder`) must give the same descriptors to within 1e-4.
"""

from __future__ import annotations

import threading
from typing import Protocol

import numpy as np

from limen.bio.face import models
from limen.config import EmbedBackend

EMBEDDING_DIM = 128


class Embedder(Protocol):
    name: str

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        """(n, 128) float64 descriptors for n aligned 150×150×3 uint8 RGB chips."""
        ...


class DlibEmbedder:
    """dlib's own `face_recognition_model_v1` on aligned chips (the reference path)."""

    name = "dlib"

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, EMBEDDING_DIM))
        net = models.resnet()
        batch = [np.ascontiguousarray(c, dtype=np.uint8) for c in chips]
        return np.array([np.asarray(d, dtype=np.float64) for d in net.compute_face_descriptor(batch)])


_chosen: dict[EmbedBackend, Embedder] = {}
_choose_lock = threading.Lock()


def get_embedder(backend: EmbedBackend = EmbedBackend.AUTO) -> Embedder:
    """The embedder for `backend`, created once per process.

    AUTO picks a fast backend only when it is installed and passes its
    self-check against dlib; otherwise dlib.
    """
    with _choose_lock:
        if backend not in _chosen:
            _chosen[backend] = _create(backend)
        return _chosen[backend]


def _create(backend: EmbedBackend) -> Embedder:
    if backend is EmbedBackend.DLIB:
        return DlibEmbedder()
    try:
        from limen.bio.face import fast_embed  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        if backend is EmbedBackend.ONNX:
            from limen.errors import ConfigError

            raise ConfigError("the ONNX embedding backend is not available in this build") from None
        return DlibEmbedder()
    return fast_embed.create(backend, fallback=DlibEmbedder())
