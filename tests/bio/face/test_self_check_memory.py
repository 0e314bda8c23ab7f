"""The embedder's self-check leaves nothing of dlib's network behind once the fast backend is chosen."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from limen.bio.face import fast_embed, models
from limen.bio.face.embed import DlibEmbedder
from limen.config import EmbedBackend

pytest.importorskip("onnxruntime")


class _Watched(DlibEmbedder):
    """dlib's embedder, remembering (weakly) the network each call used."""

    def __init__(self) -> None:
        self.nets: list[weakref.ref[Any]] = []

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        self.nets.append(weakref.ref(models.resnet()))
        return super().embed(chips)


def test_dlib_s_network_is_released_after_a_passed_self_check(tmp_path: Path) -> None:
    reference = _Watched()
    chosen = fast_embed.create(EmbedBackend.AUTO, reference, cache_dir=tmp_path)  # no stored answers: dlib runs
    assert isinstance(chosen, fast_embed.OnnxEmbedder)
    assert reference.nets, "the check should have run dlib (no stored answers)"
    gc.collect()
    assert all(net() is None for net in reference.nets)
    assert models.resnet.cache_info().currsize == 0
    # the next process checks against the stored answers: dlib's network is not even loaded
    again = _Watched()
    assert isinstance(fast_embed.create(EmbedBackend.AUTO, again, cache_dir=tmp_path), fast_embed.OnnxEmbedder)
    assert again.nets == []


def test_dlib_s_network_stays_when_dlib_is_the_embedder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = _Watched()

    def fails(*args: Any, **kwargs: Any) -> float:
        reference.embed(fast_embed.check_chips(1))
        raise fast_embed.FastEmbedUnavailable("self-check failed (test)")

    monkeypatch.setattr(fast_embed, "self_check", fails)
    assert fast_embed.create(EmbedBackend.AUTO, reference, cache_dir=tmp_path) is reference
    gc.collect()
    assert reference.nets[0]() is not None  # kept: it is the embedder now
