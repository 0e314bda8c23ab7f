"""The ONNX Runtime face embedder: same descriptors as dlib, safe fallbacks on every kind of bad input."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from limen import thresholds
from limen.bio.face import align, detect, embed, fast_dlibnet, fast_embed, fast_onnx, models
from limen.bio.face.embed import DlibEmbedder
from limen.capture import load_image
from limen.config import EmbedBackend
from limen.errors import BadRequest, ConfigError
from tests.conftest import shared

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="session")
def source_bytes() -> bytes:
    return models.model_path(models.RESNET).read_bytes()


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fast-embed-cache")


@pytest.fixture(scope="session")
def fast(cache_dir: Path) -> fast_embed.OnnxEmbedder:
    """Converted once per test session into a throw-away cache."""
    return fast_embed.load(cache_dir=cache_dir, threads=1)


@pytest.fixture(scope="session")
def dlib_ref() -> DlibEmbedder:
    return DlibEmbedder()


class Disagreeing:
    """A reference whose descriptors are off by 1e-3: the self-check must refuse the fast backend."""

    name = "disagreeing"

    def __init__(self, inner: DlibEmbedder) -> None:
        self.inner = inner

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        return self.inner.embed(chips) + 1e-3


def _chips_from(paths: list[Path]) -> list[np.ndarray]:
    chips = []
    for path in paths:
        rgb = load_image(path)
        found = detect.detect_faces(rgb)
        if found:
            chips.append(align.face_chip(rgb, align.landmarks(rgb, found[0].box)))
    return chips


# ------------------------------------------------------------------ the dlib file reader


def test_reader_walks_the_whole_file(source_bytes: bytes) -> None:
    net = fast_dlibnet.parse(source_bytes)
    first, last = net.ops[0], net.ops[-1]
    assert isinstance(first, fast_dlibnet.InputRGB)
    assert first.mean_rgb == pytest.approx((122.782, 117.001, 104.298), abs=1e-4)
    assert isinstance(last, fast_dlibnet.FullyConnected) and last.weight.shape == (256, 128)
    convs = [op for op in net.ops if isinstance(op, fast_dlibnet.Conv)]
    assert len(convs) == 29  # 1 stem + 14 residual blocks × 2
    assert convs[0].weight.shape == (32, 3, 7, 7) and convs[0].stride == 2 and convs[0].padding == 0
    assert all(np.all(np.isfinite(op.weight)) for op in convs)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b + b"\x01\x00", id="trailing-bytes"),
        pytest.param(lambda b: b.replace(b"con_4", b"con_9", 1), id="unknown-layer-version"),
        pytest.param(lambda b: b.replace(b"relu_", b"relX_", 1), id="unknown-layer-tag"),
        pytest.param(lambda b: b"\x00" + b[1:], id="bad-integer"),
    ],
)
def test_reader_refuses_damaged_files(source_bytes: bytes, damage) -> None:
    damaged = damage(source_bytes)
    assert damaged != source_bytes
    with pytest.raises(fast_dlibnet.DlibModelError):
        fast_dlibnet.parse(damaged)


def test_reader_refuses_a_size_mismatch(source_bytes: bytes) -> None:
    # the stem convolution's filters are declared (32,3,7,7) after its float parameters; declare
    # (32,3,7,6) instead: the parameter count no longer fits and the reader must refuse it.
    marker = b"\x01\x20\x01\x03\x01\x07\x01\x07"
    at = source_bytes.index(marker, source_bytes.index(b"con_4") + 4 * (32 * 3 * 7 * 7 + 32))
    damaged = source_bytes[:at] + b"\x01\x20\x01\x03\x01\x07\x01\x06" + source_bytes[at + len(marker) :]
    with pytest.raises(fast_dlibnet.DlibModelError):
        fast_dlibnet.parse(damaged)


# ------------------------------------------------------------------ identity with dlib


def test_conversion_is_deterministic(fast: fast_embed.OnnxEmbedder, source_bytes: bytes) -> None:
    assert fast.info.path is not None
    assert fast_embed.convert(source_bytes) == fast.info.path.read_bytes()


def test_same_descriptors_as_dlib_on_synthetic_chips(fast: fast_embed.OnnxEmbedder, dlib_ref: DlibEmbedder) -> None:
    rng = np.random.default_rng(7)
    chips = fast_embed.check_chips(2) + [rng.integers(0, 256, (150, 150, 3), dtype=np.uint8) for _ in range(2)]
    got, want = fast.embed(chips), dlib_ref.embed(chips)
    assert got.shape == want.shape == (4, 128) and got.dtype == np.float64
    assert np.max(np.abs(got - want)) <= thresholds.EMBED_MAX_ABS_DIFF


@pytest.mark.shared
def test_same_descriptors_as_dlib_on_real_faces(fast: fast_embed.OnnxEmbedder, dlib_ref: DlibEmbedder) -> None:
    lfw = sorted(shared("lfw-subset").glob("*/*_0001.jpg"))[:6]
    web = sorted(p for p in shared("pairs-web").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:4]
    chips = _chips_from(lfw + web)
    assert len(chips) >= 8
    diff = np.abs(fast.embed(chips) - dlib_ref.embed(chips))
    assert np.max(diff) <= thresholds.EMBED_MAX_ABS_DIFF


def test_embed_contract(fast: fast_embed.OnnxEmbedder) -> None:
    assert fast.embed([]).shape == (0, 128)
    chips = fast_embed.check_chips(3)
    many = chips * 7  # more than one runtime batch
    assert len(many) > thresholds.EMBED_BATCH
    batched = fast.embed(many)
    single = np.concatenate([fast.embed([c]) for c in chips])
    assert np.max(np.abs(batched[:3] - single)) <= 1e-5
    assert np.max(np.abs(batched[3:6] - single)) <= 1e-5


@pytest.mark.parametrize("shape", [(150, 150), (150, 150, 4), (112, 112, 3), (150, 150, 3, 1)])
def test_wrong_chip_shape_is_refused(fast: fast_embed.OnnxEmbedder, shape: tuple[int, ...]) -> None:
    with pytest.raises(BadRequest, match="150×150×3"):
        fast.embed([np.zeros(shape, np.uint8)])


# ------------------------------------------------------------------ the cache


def test_cache_is_reused_and_keyed_by_source_hash(cache_dir: Path, fast: fast_embed.OnnxEmbedder) -> None:
    again = fast_embed.load(cache_dir=cache_dir, threads=1)
    assert not again.info.converted and again.info.path == fast.info.path
    model, record = fast_embed.cache_paths(cache_dir, again.info.source_sha256)
    assert model == again.info.path and record.is_file()
    assert again.info.source_sha256[:16] in model.name


@pytest.mark.parametrize("target", ["model", "record"])
def test_cache_that_does_not_match_its_record_is_rebuilt(
    cache_dir: Path, fast: fast_embed.OnnxEmbedder, tmp_path: Path, caplog: pytest.LogCaptureFixture, target: str
) -> None:
    local = tmp_path / "models"
    shutil.copytree(cache_dir, local)
    model, record = fast_embed.cache_paths(local, fast.info.source_sha256)
    victim = model if target == "model" else record
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        rebuilt = fast_embed.load(cache_dir=local, threads=1)
    assert rebuilt.info.converted
    assert "does not match its record" in caplog.text
    assert model.read_bytes() == fast.info.path.read_bytes()  # type: ignore[union-attr]


def test_sessions_load_the_optimised_copy_with_the_same_bits(cache_dir: Path, fast: fast_embed.OnnxEmbedder) -> None:
    import onnxruntime as ort

    assert fast.info.path is not None
    optimized, record = fast_embed.optimized_paths(fast.info.path, ort.__version__)
    assert optimized.is_file() and record.is_file()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # optimised at load, as before
    reference = fast_embed.OnnxEmbedder(ort.InferenceSession(str(fast.info.path), options), fast.info)
    chips = fast_embed.check_chips()
    assert np.array_equal(fast_embed.load(cache_dir=cache_dir, threads=1).embed(chips), reference.embed(chips))


def test_an_optimised_copy_that_does_not_match_its_record_is_rebuilt(
    cache_dir: Path, fast: fast_embed.OnnxEmbedder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import onnxruntime as ort

    local = tmp_path / "models"
    shutil.copytree(cache_dir, local)
    model, _ = fast_embed.cache_paths(local, fast.info.source_sha256)
    optimized, _ = fast_embed.optimized_paths(model, ort.__version__)
    damaged = optimized.read_bytes()[:-64] + bytes(64)
    optimized.write_bytes(damaged)
    with caplog.at_level(logging.WARNING):
        again = fast_embed.load(cache_dir=local, threads=1)
    assert "optimised face model" in caplog.text and optimized.read_bytes() != damaged
    chips = fast_embed.check_chips(2)
    assert np.array_equal(again.embed(chips), fast.embed(chips))


def test_an_optimised_copy_that_cannot_be_written_still_gives_the_fast_backend(
    cache_dir: Path, fast: fast_embed.OnnxEmbedder, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "models"
    local.mkdir()
    for f in cache_dir.iterdir():
        if ".opt-" not in f.name:
            shutil.copy(f, local / f.name)
    real = fast_embed.atomic_write

    def read_only(path: Path, data: bytes) -> None:
        if ".opt-" in path.name:
            raise OSError(30, "Read-only file system")
        real(path, data)

    monkeypatch.setattr(fast_embed, "atomic_write", read_only)
    with caplog.at_level(logging.WARNING):
        again = fast_embed.load(cache_dir=local, threads=1)
    assert "cannot store the optimised face model" in caplog.text
    assert not any(".opt-" in f.name for f in local.iterdir())  # nor its scratch file
    chips = fast_embed.check_chips(2)
    assert np.array_equal(again.embed(chips), fast.embed(chips))


def test_unwritable_cache_keeps_the_model_in_memory(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with caplog.at_level(logging.WARNING):
        e = fast_embed.load(cache_dir=blocker / "models", threads=1)
    assert e.info.path is None and "cannot cache" in caplog.text
    assert e.embed(fast_embed.check_chips(1)).shape == (1, 128)


# ------------------------------------------------------------------ create(): choose, check, fall back


def test_auto_picks_the_fast_backend_when_it_agrees(cache_dir: Path, dlib_ref: DlibEmbedder) -> None:
    chosen = fast_embed.create(EmbedBackend.AUTO, dlib_ref, cache_dir=cache_dir)
    assert isinstance(chosen, fast_embed.OnnxEmbedder)
    assert isinstance(fast_embed.create(EmbedBackend.ONNX, dlib_ref, cache_dir=cache_dir), fast_embed.OnnxEmbedder)


def test_dlib_backend_is_the_fallback(cache_dir: Path, dlib_ref: DlibEmbedder) -> None:
    assert fast_embed.create(EmbedBackend.DLIB, dlib_ref, cache_dir=cache_dir) is dlib_ref


def test_failed_self_check_falls_back(
    cache_dir: Path, dlib_ref: DlibEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    reference = Disagreeing(dlib_ref)
    with caplog.at_level(logging.WARNING):
        assert fast_embed.create(EmbedBackend.AUTO, reference, cache_dir=cache_dir) is reference
    assert "self-check failed" in caplog.text
    with pytest.raises(ConfigError, match="self-check failed"):
        fast_embed.create(EmbedBackend.ONNX, reference, cache_dir=cache_dir)


class MustNotRun:
    """A dlib stand-in that fails the test if the self-check has to call it."""

    name = "dlib"

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        raise AssertionError("the stored answers should have been used")


def test_self_check_answers_are_stored_and_reused(tmp_path: Path, dlib_ref: DlibEmbedder) -> None:
    first = fast_embed.create(EmbedBackend.AUTO, dlib_ref, cache_dir=tmp_path)
    assert isinstance(first, fast_embed.OnnxEmbedder)
    answers = fast_embed.answers_path(first.info)
    assert answers is not None and answers.is_file()
    again = fast_embed.create(EmbedBackend.ONNX, MustNotRun(), cache_dir=tmp_path)  # type: ignore[arg-type]
    assert isinstance(again, fast_embed.OnnxEmbedder)


def test_wrong_stored_answers_are_rechecked_against_dlib(
    tmp_path: Path, dlib_ref: DlibEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    first = fast_embed.create(EmbedBackend.AUTO, dlib_ref, cache_dir=tmp_path)
    answers = fast_embed.answers_path(first.info)
    assert answers is not None
    good = answers.read_text()
    data = json.loads(good)
    data["descriptors"][0][0] += 0.01
    answers.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING):
        again = fast_embed.create(EmbedBackend.AUTO, dlib_ref, cache_dir=tmp_path)
    assert isinstance(again, fast_embed.OnnxEmbedder)
    assert "stored self-check answers disagree" in caplog.text
    assert json.loads(answers.read_text()) == json.loads(good)
    answers.write_text(json.dumps(data))  # wrong answers and no dlib to recheck with: refuse
    with pytest.raises(ConfigError, match="self-check could not run"):
        fast_embed.create(EmbedBackend.ONNX, MustNotRun(), cache_dir=tmp_path)  # type: ignore[arg-type]


def test_a_wrong_conversion_is_caught_by_the_self_check(
    tmp_path: Path, dlib_ref: DlibEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fold = fast_onnx._fold

    def fold_without_shift(conv, affine):  # a plausible converter bug: batch-norm shift forgotten
        w, b = real_fold(conv, affine)
        return w, b if affine is None else (b - affine.beta).astype(np.float32)

    monkeypatch.setattr(fast_onnx, "_fold", fold_without_shift)
    assert fast_embed.create(EmbedBackend.AUTO, dlib_ref, cache_dir=tmp_path) is dlib_ref


def test_corrupted_model_file_falls_back(
    tmp_path: Path, source_bytes: bytes, dlib_ref: DlibEmbedder, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    corrupt = tmp_path / models.RESNET
    corrupt.write_bytes(source_bytes[: len(source_bytes) - 1000])
    monkeypatch.setattr(models, "model_path", lambda name: corrupt)
    with caplog.at_level(logging.WARNING):
        assert fast_embed.create(EmbedBackend.AUTO, dlib_ref, cache_dir=tmp_path / "cache") is dlib_ref
    assert "unexpected dlib model file" in caplog.text
    assert not list((tmp_path / "cache").glob("*.onnx"))
    with pytest.raises(ConfigError, match="unexpected dlib model file"):
        fast_embed.create(EmbedBackend.ONNX, dlib_ref, cache_dir=tmp_path / "cache")


def test_missing_model_file_falls_back(tmp_path: Path, dlib_ref: DlibEmbedder, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> Path:
        raise ConfigError("face model missing")

    monkeypatch.setattr(models, "model_path", missing)
    assert fast_embed.create(EmbedBackend.AUTO, dlib_ref, cache_dir=tmp_path) is dlib_ref


def test_runtime_not_installed_falls_back(
    cache_dir: Path, dlib_ref: DlibEmbedder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` raise ImportError
    with caplog.at_level(logging.WARNING):
        assert fast_embed.create(EmbedBackend.AUTO, dlib_ref, cache_dir=cache_dir) is dlib_ref
    assert "onnxruntime is not installed" in caplog.text
    with pytest.raises(ConfigError, match="onnxruntime is not installed"):
        fast_embed.create(EmbedBackend.ONNX, dlib_ref, cache_dir=cache_dir)


def test_get_embedder_uses_the_data_dir(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embed, "_chosen", {})
    chosen = embed.get_embedder(EmbedBackend.AUTO)
    assert chosen.name == "onnx"
    assert list((data_dir / "models").glob("resnet-*.onnx"))
    assert embed.get_embedder(EmbedBackend.AUTO) is chosen


def test_an_unforeseen_error_falls_back(
    cache_dir: Path, dlib_ref: DlibEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args, **kwargs):
        raise KeyError("surprise")

    monkeypatch.setattr(fast_embed, "_cached_or_converted", broken)
    assert fast_embed.create(EmbedBackend.AUTO, dlib_ref, cache_dir=cache_dir) is dlib_ref
    with pytest.raises(ConfigError, match="unexpected KeyError"):
        fast_embed.create(EmbedBackend.ONNX, dlib_ref, cache_dir=cache_dir)


def test_onnx_is_needed_only_to_convert(
    cache_dir: Path, fast: fast_embed.OnnxEmbedder, tmp_path: Path, dlib_ref: DlibEmbedder,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert isinstance(fast_embed.create(EmbedBackend.AUTO, dlib_ref, cache_dir=cache_dir), fast_embed.OnnxEmbedder)
    with caplog.at_level(logging.WARNING):
        assert fast_embed.create(EmbedBackend.AUTO, dlib_ref, cache_dir=tmp_path) is dlib_ref
    assert "onnx is not installed" in caplog.text
