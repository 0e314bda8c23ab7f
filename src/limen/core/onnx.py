"""ONNX Runtime sessions as the lock runs them: one thread, no memory kept between calls.

Every model the lock runs on ONNX Runtime (the face embedder, PAD's MiniFASNet)
builds its session with `session_options()` and `cpu_session()`.

Memory: by default a session keeps a CPU memory arena that grows to the
largest activations ever seen and never shrinks, and a memory pattern planned
per input shape.  A lock idles between unlocks, so both are off here: the
activations are malloc'ed for each call and freed after it.  Measured on
`limen serve`'s models (bench/unlock.py, section 6, and an in-process run of
five-frame unlocks): PAD's MiniFASNet sessions grew the service by
≈ 49 MB over the first three unlocks with the defaults and by ≈ 15 MB without;
the CPU time of a call is the same within the noise (embedding 3.16 vs 3.16 ms,
both MiniFASNet variants 5.78 vs 5.75 ms, median of 60 interleaved calls).

onnxruntime is imported when a session is built, never at import of this
module (`limen status` loads no model runtime).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PROVIDERS = ["CPUExecutionProvider"]


def session_options(threads: int = 1, *, optimise: bool = True) -> Any:
    """`onnxruntime.SessionOptions` for one of the lock's models.

    `threads` is the intra-op thread count (inter-op: 1, sequential).
    `optimise=False` loads a graph as it is (one optimised ahead of time).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.enable_cpu_mem_arena = False  # the arena keeps its peak for good: a lock idles most of the time
    options.enable_mem_pattern = False  # nor a buffer plan per input shape
    if not optimise:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return options


def cpu_session(model: str | Path | bytes, options: Any | None = None) -> Any:
    """An `onnxruntime.InferenceSession` on the CPU for `model` (a path or the ONNX bytes)."""
    import onnxruntime as ort

    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, options if options is not None else session_options(),
                                providers=PROVIDERS)
