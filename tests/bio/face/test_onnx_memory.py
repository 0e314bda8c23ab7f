"""The face embedder's ONNX Runtime session keeps no memory between calls (limen.core.onnx) and embeds the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from limen.bio.face import fast_embed
from limen.core import onnx

ort = pytest.importorskip("onnxruntime")


def test_the_lock_s_session_options_keep_no_arena_and_no_memory_pattern() -> None:
    options = onnx.session_options(3)
    assert (options.enable_cpu_mem_arena, options.enable_mem_pattern) == (False, False)
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (3, 1)
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert onnx.session_options(optimise=False).graph_optimization_level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL


def test_the_embedder_runs_with_them_and_embeds_as_a_default_session(tmp_path: Path) -> None:
    fast = fast_embed.load(cache_dir=tmp_path)
    used = fast._session.get_session_options()
    assert (used.enable_cpu_mem_arena, used.enable_mem_pattern) == (False, False)
    # the same graph under ONNX Runtime's defaults (arena and memory pattern on) gives the same descriptors
    assert fast.info.path is not None
    model = str(fast_embed.optimized_paths(fast.info.path, ort.__version__)[0])  # what the session loaded
    default = ort.SessionOptions()
    default.intra_op_num_threads = 1
    default.graph_optimization_level = used.graph_optimization_level
    reference = ort.InferenceSession(model, default, providers=onnx.PROVIDERS)
    chips = fast_embed.check_chips(3)
    want = reference.run(None, {reference.get_inputs()[0].name: np.stack(chips)})[0]
    for _ in range(2):  # a second call reuses nothing from the first
        assert np.array_equal(fast.embed(chips), want.astype(np.float64))
