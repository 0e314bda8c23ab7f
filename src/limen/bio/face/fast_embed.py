"""dlib's face ResNet on ONNX Runtime: the same weights, the same descriptors, about ten times faster.

`create(backend, fallback)` is what `embed.get_embedder` calls.  On first use
in a process it

1. reads dlib's own model file from `face_recognition_models`
   (`models.model_path(models.RESNET)`) and hashes it (SHA-256);
2. loads the converted network from the cache,
   `<data_dir>/models/resnet-<sha256[:16]>.onnx`, after checking it against its
   record (`.json`: source hash, converter version, hash of the ONNX bytes) —
   or converts the dlib file (`fast_dlibnet` → `fast_onnx`) and writes both
   files atomically (temporary file, fsync, rename);
3. embeds `thresholds.EMBED_SELF_CHECK_CHIPS` deterministic chips with both
   backends and keeps the fast one only when every component agrees to within
   `thresholds.EMBED_MAX_ABS_DIFF`.  dlib's answers are stored next to the
   cached model (`.answers.json`, keyed by model hash and dlib version), so
   later processes check against them without loading dlib's network; a
   process that did load it for the check lets it go once the fast backend
   passes (`models.release_resnet`).

ONNX Runtime's full graph optimisation (blocked NCHWc convolutions) makes the
network about 40 % faster, but a session that optimises at load keeps the
weights twice (≈ 80 MB instead of ≈ 40 MB).  So the optimised graph is
written once next to the cached model (`.opt-<key>.onnx`, keyed by the ONNX
Runtime version and this CPU's model and flags, since the blocked layout is
specific to them, with its own record) and later sessions load it with
optimisation off: the same descriptors, bit for bit, at half the memory.
An optimised file that does not match its record is rebuilt; when it cannot
be written, the session optimises in memory as before.

Anything that goes wrong (onnxruntime or onnx not installed, a corrupted or
unexpected model file, a cache that does not match its record, a failed
self-check) gives one warning line and dlib for `EmbedBackend.AUTO`, and a
`ConfigError` when `EmbedBackend.ONNX` was asked for explicitly: never wrong
embeddings.  A cache that does not match its record is never used; it is
rebuilt from dlib's file.  Nothing is downloaded.

The returned `OnnxEmbedder` is thread-safe (ONNX Runtime sessions are).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from limen import thresholds
from limen.bio.face import models
from limen.bio.face.embed import EMBEDDING_DIM, Embedder
from limen.config import EmbedBackend
from limen.core.onnx import cpu_session, session_options
from limen.errors import BadRequest, ConfigError
from limen.fsio import atomic_write

log = logging.getLogger(__name__)

CONVERTER_VERSION = 1  # bump whenever fast_dlibnet / fast_onnx would write a different graph
CHIP_SHAPE = (150, 150, 3)
CHECK_CHIPS_VERSION = 1  # bump whenever check_chips() would draw different chips


class FastEmbedUnavailable(Exception):
    """Why the fast backend cannot be used (internal: `create` turns it into a fallback or ConfigError)."""


@dataclass(frozen=True)
class ModelInfo:
    """Where the converted model came from and what loading it cost."""

    source_sha256: str
    path: Path | None  # None when the cache could not be written (model kept in memory only)
    converted: bool  # True: converted in this process; False: loaded from the cache
    convert_seconds: float
    load_seconds: float


class OnnxEmbedder:
    """dlib's ResNet on ONNX Runtime; `embed` has the `Embedder` contract of `DlibEmbedder`."""

    name = "onnx"

    def __init__(self, session: Any, info: ModelInfo) -> None:
        self._session = session
        self.info = info
        self._input = session.get_inputs()[0].name
        self._output = session.get_outputs()[0].name

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, EMBEDDING_DIM))
        batch = np.stack([_as_chip(c) for c in chips])
        step = thresholds.EMBED_BATCH
        parts = [
            self._session.run([self._output], {self._input: batch[i : i + step]})[0]
            for i in range(0, len(batch), step)
        ]
        return np.concatenate(parts).astype(np.float64)


def _as_chip(chip: np.ndarray) -> np.ndarray:
    """The chip as `DlibEmbedder` takes it: 150×150×3 RGB, converted to uint8 the same way."""
    arr = np.asarray(chip, dtype=np.uint8)
    if arr.shape != CHIP_SHAPE:
        raise BadRequest("chips", f"each chip must be 150×150×3 uint8 RGB from align.face_chip, got {arr.shape}")
    return arr


# ------------------------------------------------------------------ the factory


def create(
    backend: EmbedBackend,
    fallback: Embedder,
    *,
    cache_dir: Path | None = None,
    threads: int | None = None,
) -> Embedder:
    """The fast embedder when it is usable and agrees with `fallback` (dlib); else `fallback`.

    `backend` AUTO falls back with one warning line; ONNX raises `ConfigError`
    instead; DLIB returns `fallback`.  `cache_dir` defaults to
    `<data_dir>/models` (settings / `LIMEN_DATA_DIR`), or the user cache dir
    when the settings cannot be loaded.  `threads` is ONNX Runtime's
    intra-op thread count (None: `thresholds.EMBED_THREADS`).
    """
    if backend is EmbedBackend.DLIB:
        return fallback
    try:
        try:
            fast = load(cache_dir=cache_dir, threads=threads)
            diff = self_check(fast, fallback, answers=answers_path(fast.info))
        except FastEmbedUnavailable:
            raise
        except Exception as exc:  # a bug or an unforeseen failure: still the reference path, never a crash
            raise FastEmbedUnavailable(f"unexpected {type(exc).__name__} while preparing it") from exc
    except FastEmbedUnavailable as exc:
        if backend is EmbedBackend.ONNX:
            raise ConfigError(f"the ONNX embedding backend is unusable: {exc}") from None
        log.warning("face embedding falls back to dlib: %s", exc)
        return fallback
    log.info("face embedding on onnxruntime (self-check max difference %.1e)", diff)
    if getattr(fallback, "name", None) == "dlib":
        models.release_resnet()  # loaded only for the check (no stored answers yet): ≈ 35 MB for the process's life
    return fast


def load(*, cache_dir: Path | None = None, threads: int | None = None, source: Path | None = None) -> OnnxEmbedder:
    """The fast embedder, converting dlib's model on first use; no self-check (see `create`)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise FastEmbedUnavailable("onnxruntime is not installed (pip install onnxruntime)") from None
    try:
        source = source or models.model_path(models.RESNET)
    except ConfigError as exc:
        raise FastEmbedUnavailable(str(exc)) from None
    model, info = _cached_or_converted(source, cache_dir or default_cache_dir())
    start = time.perf_counter()
    try:
        session = _session(ort, model, threads or thresholds.EMBED_THREADS)
    except Exception as exc:  # onnxruntime raises its own unrelated exception types
        raise FastEmbedUnavailable(f"onnxruntime cannot load the converted model ({type(exc).__name__})") from None
    load_seconds = info.load_seconds + time.perf_counter() - start
    return OnnxEmbedder(session, dataclasses.replace(info, load_seconds=load_seconds))


def _session(ort: Any, model: str | bytes, threads: int) -> Any:
    """A session on the optimised copy of a cached model (see the module docstring), else on `model` itself.

    The lock's session options (`limen.core.onnx`): no memory arena, no memory pattern kept between calls.
    """
    optimized = _optimized(ort, Path(model)) if isinstance(model, str) else None
    if optimized is None:
        return cpu_session(model, session_options(threads))
    return cpu_session(optimized, session_options(threads, optimise=False))


def optimized_paths(model_path: Path, ort_version: str) -> tuple[Path, Path]:
    """The optimised copy of a cached model for this ONNX Runtime version and CPU, and its record."""
    cpu = hashlib.sha256(f"{platform.machine()}\n{_cpu_flags()}\n{ort_version}".encode()).hexdigest()[:16]
    stem = model_path.with_suffix("").name
    return (model_path.with_name(f"{stem}.opt-{cpu}.onnx"), model_path.with_name(f"{stem}.opt-{cpu}.json"))


def _cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor()
    lines = [ln for ln in text.splitlines() if ln.split(":")[0].strip() in ("model name", "flags", "Features")]
    return "\n".join(sorted(set(lines)))


def _optimized(ort: Any, model_path: Path) -> Path | None:
    """The verified optimised copy of `model_path`, written now when missing; None when it cannot be."""
    path, record_path = optimized_paths(model_path, ort.__version__)
    model_sha = _sha256_file(model_path)
    if model_sha is None:
        return None
    if path.exists() or record_path.exists():
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            record = None
        opt_sha = _sha256_file(path)
        if opt_sha is not None and record == _optimized_record(model_sha, opt_sha, ort.__version__):
            return path
        log.warning("optimised face model %s does not match its record; rebuilding it", path.name)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3  # not the warning that the file suits this CPU only: it is keyed by it
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(scratch)
        ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        data = scratch.read_bytes()
        record = _optimized_record(model_sha, hashlib.sha256(data).hexdigest(), ort.__version__)
        atomic_write(path, data)
        atomic_write(record_path, json.dumps(record, indent=1).encode())
    except OSError as exc:
        log.warning("cannot store the optimised face model in %s (%s)", path.parent, exc.strerror)
        return None
    except Exception as exc:  # onnxruntime raises its own unrelated types: optimise in memory instead
        log.warning("cannot write the optimised face model (%s)", type(exc).__name__)
        return None
    finally:
        scratch.unlink(missing_ok=True)
    return path


def _optimized_record(model_sha256: str, optimized_sha256: str, ort_version: str) -> dict[str, Any]:
    return {"format": "limen.fast_embed.optimized", "onnx_sha256": model_sha256,
            "optimized_sha256": optimized_sha256, "onnxruntime": ort_version}


def self_check(fast: Embedder, reference: Embedder, *, answers: Path | None = None) -> float:
    """Max |fast − reference| over the check chips; raises `FastEmbedUnavailable` above the tolerance.

    With `answers` (a file next to the cached model) and dlib as the
    reference, dlib's descriptors of the check chips are computed once, stored
    there, and reused by later processes as known answers, so that a
    short-lived process need not load dlib's network.  Stored answers are
    keyed by the model file's hash and dlib's version; if they disagree, the
    check is redone against dlib itself and the file rewritten.
    """
    chips = check_chips()
    key = _answers_key(fast, reference) if answers is not None else None
    stored = _read_answers(answers, key) if answers is not None and key is not None else None
    try:
        got = fast.embed(chips)
    except Exception as exc:  # any failure leaves the fast backend unverified
        raise FastEmbedUnavailable(f"self-check could not run ({type(exc).__name__}: {exc})") from None
    if stored is not None:
        try:
            return _compare(got, stored)
        except FastEmbedUnavailable:
            log.warning("stored self-check answers disagree; checking against dlib again")
    try:
        want = reference.embed(chips)
    except Exception as exc:  # the reference itself is broken: nothing to verify against
        raise FastEmbedUnavailable(f"self-check could not run ({type(exc).__name__}: {exc})") from None
    diff = _compare(got, want)
    if answers is not None and key is not None:
        _write_answers(answers, key, want)
    return diff


def _compare(got: np.ndarray, want: np.ndarray) -> float:
    if got.shape != want.shape or not np.all(np.isfinite(got)):
        raise FastEmbedUnavailable("self-check failed: descriptors of the wrong shape or not finite")
    diff = float(np.max(np.abs(got - want)))
    if not diff <= thresholds.EMBED_MAX_ABS_DIFF:
        raise FastEmbedUnavailable(
            f"self-check failed: max difference {diff:.1e} > {thresholds.EMBED_MAX_ABS_DIFF:.0e}"
        )
    return diff


def answers_path(info: ModelInfo) -> Path | None:
    """Where the known answers for this cached model live (None: the model is not cached)."""
    return None if info.path is None else info.path.with_suffix(".answers.json")


def _answers_key(fast: Embedder, reference: Embedder) -> dict[str, Any] | None:
    """What the stored answers must have been computed with; None when they cannot be reused."""
    if not isinstance(fast, OnnxEmbedder) or getattr(reference, "name", None) != "dlib":
        return None
    try:
        import dlib
    except ImportError:
        return None
    return {
        "format": "limen.fast_embed.answers",
        "source_sha256": fast.info.source_sha256,
        "reference": f"dlib {dlib.__version__}",
        "chips": CHECK_CHIPS_VERSION,
        "count": thresholds.EMBED_SELF_CHECK_CHIPS,
    }


def _read_answers(path: Path, key: dict[str, Any]) -> np.ndarray | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if {k: data.get(k) for k in key} != key:
            return None
        want = np.array(data["descriptors"], dtype=np.float64)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return want if want.shape == (key["count"], EMBEDDING_DIM) else None


def _write_answers(path: Path, key: dict[str, Any], want: np.ndarray) -> None:
    """Store dlib's answers (synthetic chips only: no biometric data); a failure only costs speed later."""
    data = json.dumps({**key, "descriptors": want.tolist()}).encode()
    try:
        atomic_write(path, data)
    except OSError as exc:
        log.warning("cannot store the self-check answers in %s (%s)", path.parent, exc.strerror)


def check_chips(n: int = thresholds.EMBED_SELF_CHECK_CHIPS) -> list[np.ndarray]:
    """Deterministic synthetic 150×150 RGB chips: a smooth face-like pattern, then seeded textures."""
    yy, xx = np.mgrid[0:150, 0:150].astype(np.float64)
    face = 200.0 * np.exp(-(((xx - 75) / 45) ** 2 + ((yy - 80) / 60) ** 2))
    for cx in (52, 98):  # two dark eyes and a mouth on a skin-toned oval
        face -= 120.0 * np.exp(-(((xx - cx) / 8) ** 2 + ((yy - 62) / 5) ** 2))
    face -= 90.0 * np.exp(-(((xx - 75) / 20) ** 2 + ((yy - 112) / 4) ** 2))
    chips = [np.clip(np.stack([face + 40, face * 0.8 + 25, face * 0.65 + 15], axis=2), 0, 255).astype(np.uint8)]
    rng = np.random.default_rng(20_170_212)  # fixed: the check must be the same everywhere
    while len(chips) < n:
        noise = rng.normal(0.0, 40.0, size=CHIP_SHAPE)
        chips.append(np.clip(chips[0] + noise, 0, 255).astype(np.uint8))
    return chips[:n]


# ------------------------------------------------------------------ the converted-model cache


def default_cache_dir() -> Path:
    """`<data_dir>/models`, or the user cache dir when the settings cannot be loaded."""
    from limen.config import load_settings

    try:
        return load_settings().data_dir / "models"
    except ConfigError:
        import platformdirs

        return Path(platformdirs.user_cache_dir("limen", appauthor=False)) / "models"


def cache_paths(cache_dir: Path, source_sha256: str) -> tuple[Path, Path]:
    """The converted model and its record for a source file with this hash."""
    stem = f"resnet-{source_sha256[:16]}"
    return cache_dir / f"{stem}.onnx", cache_dir / f"{stem}.json"


def _cached_or_converted(source: Path, cache_dir: Path) -> tuple[str | bytes, ModelInfo]:
    """The verified cache file's path, or freshly converted bytes (written to the cache when possible)."""
    start = time.perf_counter()
    sha = _sha256_file(source)
    if sha is None:
        raise FastEmbedUnavailable("cannot read the dlib model file")
    model_path, record_path = cache_paths(cache_dir, sha)
    if _cache_matches(model_path, record_path, sha):
        return str(model_path), ModelInfo(sha, model_path, False, 0.0, time.perf_counter() - start)
    try:
        source_bytes = source.read_bytes()
    except OSError as exc:
        raise FastEmbedUnavailable(f"cannot read the dlib model file ({exc.strerror})") from None
    sha = hashlib.sha256(source_bytes).hexdigest()  # the bytes actually converted name the cache entry
    model_path, record_path = cache_paths(cache_dir, sha)
    model_bytes = convert(source_bytes)
    del source_bytes
    convert_seconds = time.perf_counter() - start
    if _write_cache(model_path, record_path, sha, model_bytes):
        return str(model_path), ModelInfo(sha, model_path, True, convert_seconds, 0.0)
    return model_bytes, ModelInfo(sha, None, True, convert_seconds, 0.0)


def convert(source_bytes: bytes) -> bytes:
    """dlib's serialised ResNet → ONNX bytes; raises `FastEmbedUnavailable` on anything unexpected."""
    from limen.bio.face import fast_dlibnet, fast_onnx

    try:
        net = fast_dlibnet.parse(source_bytes)
        model = fast_onnx.build(net)
    except fast_dlibnet.DlibModelError as exc:
        raise FastEmbedUnavailable(f"unexpected dlib model file: {exc}") from None
    except ImportError:
        raise FastEmbedUnavailable("onnx is not installed (pip install onnx)") from None
    except Exception as exc:  # onnx.checker's errors: the graph we built is not valid ONNX
        raise FastEmbedUnavailable(f"converted model is not valid ONNX ({type(exc).__name__})") from None
    data: bytes = model.SerializeToString()
    return data


def _sha256_file(path: Path) -> str | None:
    try:
        with path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return None


def _record(source_sha256: str, onnx_sha256: str) -> dict[str, Any]:
    return {
        "format": "limen.fast_embed.cache",
        "converter": CONVERTER_VERSION,
        "source_sha256": source_sha256,
        "onnx_sha256": onnx_sha256,
    }


def _cache_matches(model_path: Path, record_path: Path, source_sha256: str) -> bool:
    """True when the cached model's bytes match its record exactly; False (and a warning) otherwise.

    The session is then loaded from that file: the data directory is trusted
    storage (the vault's keys live there), so the window between this check
    and the load is not a boundary; the self-check runs after the load anyway.
    """
    if not model_path.exists() and not record_path.exists():
        return False
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        record = None
    onnx_sha = _sha256_file(model_path)
    if onnx_sha is None or record != _record(source_sha256, onnx_sha):
        log.warning("cached face model %s does not match its record; rebuilding it from dlib's file", model_path.name)
        return False
    return True


def _write_cache(model_path: Path, record_path: Path, source_sha256: str, model_bytes: bytes) -> bool:
    """Write the model then its record, each atomically; False (and a warning) when the dir is unusable."""
    record = json.dumps(_record(source_sha256, hashlib.sha256(model_bytes).hexdigest()), indent=1).encode()
    try:
        model_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(model_path, model_bytes)
        atomic_write(record_path, record)
    except OSError as exc:
        log.warning("cannot cache the converted face model in %s (%s); keeping it in memory", model_path.parent,
                    exc.strerror)
        return False
    return True


