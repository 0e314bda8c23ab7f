"""Import MiniFASNet weights into the models directory, and check them at load.

`import_models(path, models_dir)` takes upstream's `.pth` files (a folder or
one file), checks each against its pinned SHA-256, reads it with the safe
reader (`torchzip`), builds our ONNX graph (`onnx_minifasnet`), runs it once on
a probe (shape, finite logits, probabilities), and writes
`<models_dir>/minifasnet/<model>.onnx` then its manifest `<model>.json` (source
digest, converter version, ONNX digest), each atomically; the manifest is
written last, so a model counts as imported only once both are on disk.
Nothing is written unless every given file passes.

`load_model(models_dir, variant)` returns the verified ONNX bytes:
`ModelNotImported` when there is no manifest, `ConfigError` when the file no
longer matches its manifest (the service must then refuse faces, not fall back).

`run_graph(models_dir, variant)` is the graph the lock runs: the verified
imported graph rewritten by `onnx_minifasnet.run_form` (PRelu as Relus, channel
counts padded to `PAD_MINIFASNET_CHANNEL_MULTIPLE`: the same network, its logits
equal up to float summation order).  The rewrite needs the `onnx` package, ≈ 6 MB
resident in `limen serve` for the rest of its life, so it is stored once next
to the imported model (`<model>.run.onnx`, then its record `<model>.run.json`:
the rewrite's version, its channel multiple and the SHA-256 of the imported
graph it came from and of itself), by `import_models` or by the first load;
later loads only read and hash it.  A stored graph that does not match its
record, or whose record names another imported graph, is rewritten (with a
warning); one stored by an older Limen (another rewrite version or multiple)
is rewritten too, once (so an old models directory loads as it is, needing no
re-import); one that cannot be written is used from memory.

Nothing in the models directory vouches for itself: records and manifests
there can be rewritten by whoever rewrites the graphs (review H6: a run graph
that always says "live", its `run_sha256` fixed up, was loaded as verified).
The conversion is our own builder over the pinned weights, with a fixed IR
version, opset and node names, so it is deterministic (the same bytes on every
import, checked by the tests): the SHA-256 of each imported graph
(`PINNED_ONNX_SHA256`) and of each run graph (`PINNED_RUN_SHA256`, per rewrite
format and channel multiple) are pinned here, in the code.  A file that does
not match its pin is "altered" and faces are refused until it is re-imported;
an import whose conversion gives other bytes (another `onnx`/protobuf
serialising differently) is refused, never written.  A channel multiple with no
pinned run graph is rewritten from the verified imported graph at each load
(needing `onnx`), never read back from the directory.  An older models
directory of the same converter holds the same bytes, so it loads as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from limen import thresholds
from limen.errors import BadModelFile, ConfigError
from limen.fsio import atomic_write
from limen.pad import onnx_minifasnet as graph
from limen.pad.onnx_minifasnet import Variant
from limen.pad.torchzip import MAX_CHECKPOINT_BYTES, read_state_dict

if TYPE_CHECKING:  # numpy loads when a model is converted or run: `limen status` checks digests without it
    import numpy as np

log = logging.getLogger(__name__)

SUBDIR = "minifasnet"
MANIFEST_FORMAT = 1
RUN_FORMAT = "limen.minifasnet.run/2"  # bump whenever run_form would write another graph (1: PRelu as Max)


# SHA-256 of the graphs `import_models` writes from the pinned weights (see the module docstring)
PINNED_ONNX_SHA256: dict[tuple[str, str], str] = {
    (graph.CONVERTER_VERSION, "MiniFASNetV2"): "34e607f07245dd2285538fe9a44005ee6d2fa62e07950ab3d24d01abc7ae5a70",
    (graph.CONVERTER_VERSION, "MiniFASNetV1SE"): "1cfcd26f74d101519dc459cdf5cc5c65c1d5be4b20316ffaf04ab6e6c0af77d2",
}
PINNED_RUN_SHA256: dict[tuple[str, int, str], str] = {
    (RUN_FORMAT, 8, "MiniFASNetV2"): "ba842de4093b440006c59245270d606721a84616a9b4ea05d6ab9c39d49c064d",
    (RUN_FORMAT, 16, "MiniFASNetV2"): "9abd67812e0e656e00fe2a4c45e33bcae48aa43f3845dfddeec93cffc4d821f3",
    (RUN_FORMAT, 32, "MiniFASNetV2"): "6543efd5f79c66f0beaf2fea516d78f0599a818d72806bd72b59313313f09346",
    (RUN_FORMAT, 8, "MiniFASNetV1SE"): "b1e7a3dd5aa9d8d7999a23c12647cf8824475fb59483574a4ad767601e626141",
    (RUN_FORMAT, 16, "MiniFASNetV1SE"): "326b8059c2a3d044ade39075d0a868741acd2a6d8f137dece0a176720123491c",
    (RUN_FORMAT, 32, "MiniFASNetV1SE"): "16bd0ccd67c71bb81f60f95309df409d6ee6f84f9aa7d64fd58cf43270fdc0d2",
}


def pinned_onnx(variant: Variant) -> str | None:
    return PINNED_ONNX_SHA256.get((graph.CONVERTER_VERSION, variant.spec.model))


def pinned_run(variant: Variant) -> str | None:
    """The pinned run graph of `variant` for the configured channel multiple (None: not pinned for it)."""
    return PINNED_RUN_SHA256.get((RUN_FORMAT, thresholds.PAD_MINIFASNET_CHANNEL_MULTIPLE, variant.spec.model))


def _is(digest: str, pin: str | None) -> bool:
    return pin is not None and hmac.compare_digest(digest, pin)


class ModelNotImported(ConfigError):
    """The model was never imported into this models directory."""


@dataclass(frozen=True)
class Manifest:
    """What was imported, from what, by which converter."""

    model: str
    source_file: str
    source_sha256: str
    converter: str
    onnx_file: str
    onnx_sha256: str

    def to_json(self) -> bytes:
        return json.dumps({"format": MANIFEST_FORMAT, **self.__dict__}, indent=2).encode() + b"\n"


@dataclass(frozen=True)
class ModelStatus:
    """One model in the models directory: imported or not, and whether it still verifies."""

    variant: Variant
    imported: bool
    verified: bool
    detail: str


def model_dir(models_dir: Path) -> Path:
    return models_dir / SUBDIR


def import_models(path: Path, models_dir: Path) -> list[Manifest]:
    """Import the MiniFASNet `.pth` files at `path` (a folder or one file); all or nothing."""
    sources = _sources(path)
    built = [(variant, source, _convert(variant, source)) for variant, source in sources]
    written = []
    for variant, source, onnx_bytes in built:
        onnx_file = f"{variant.spec.model}.onnx"
        manifest = Manifest(variant.spec.model, source.name, variant.spec.source_sha256,
                            graph.CONVERTER_VERSION, onnx_file, hashlib.sha256(onnx_bytes).hexdigest())
        try:
            atomic_write(model_dir(models_dir) / onnx_file, onnx_bytes, mode=0o644)
            atomic_write(model_dir(models_dir) / f"{variant.spec.model}.json", manifest.to_json(), mode=0o644)
        except OSError as exc:
            raise ConfigError(f"{model_dir(models_dir)}: cannot write imported models ({exc.strerror})") from None
        written.append(manifest)
    for variant, _, onnx_bytes in built:  # the graph the lock runs, so that it never needs the onnx package
        _store_run_graph(models_dir, variant, onnx_bytes)
    return written


def _sources(path: Path) -> list[tuple[Variant, Path]]:
    by_name = {v.spec.source_file: v for v in Variant}
    if path.is_dir():
        try:
            found = [(by_name[p.name], p) for p in sorted(path.iterdir()) if p.name in by_name]
        except OSError as exc:
            raise BadModelFile(path, f"cannot list ({exc.strerror})") from None
        if not found:
            raise BadModelFile(path, f"holds none of {', '.join(by_name)}")
        return found
    if not path.is_file():
        raise BadModelFile(path, "no such file or folder" if not path.exists() else "not a regular file or folder")
    if path.name in by_name:
        return [(by_name[path.name], path)]
    digest = _sha256_file(path)  # a renamed copy is still recognised by its digest
    for variant in Variant:
        if hmac.compare_digest(digest, variant.spec.source_sha256):
            return [(variant, path)]
    raise BadModelFile(path, f"not one of {', '.join(by_name)} (unknown SHA-256 {digest[:16]}…)")


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(_read(path)).hexdigest()


def _read(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_CHECKPOINT_BYTES:
            raise BadModelFile(path, f"larger than {MAX_CHECKPOINT_BYTES} bytes")
        return path.read_bytes()
    except OSError as exc:
        raise BadModelFile(path, f"cannot read ({exc.strerror})") from None


def _convert(variant: Variant, source: Path) -> bytes:
    data = _read(source)
    digest = hashlib.sha256(data).hexdigest()
    if not hmac.compare_digest(digest, variant.spec.source_sha256):
        raise BadModelFile(source, f"SHA-256 {digest[:16]}… is not the pinned {variant.spec.model} weights "
                                   f"({variant.spec.source_sha256[:16]}…); truncated or altered")
    model = graph.build(read_state_dict(data, str(source)), variant, str(source))
    onnx_bytes: bytes = model.SerializeToString()
    if not _is(hashlib.sha256(onnx_bytes).hexdigest(), pinned_onnx(variant)):
        raise BadModelFile(source, f"converted to a graph that is not the pinned {variant.spec.model} graph of "
                                   f"{graph.CONVERTER_VERSION} (another onnx or protobuf version?); nothing written")
    _self_test(onnx_bytes, source)
    return onnx_bytes


def _self_test(onnx_bytes: bytes, source: Path) -> None:
    """Run the graph on two probe crops: right shape, finite logits that depend on the input."""
    import numpy as np

    logits = run_once(onnx_bytes, probe_crops())
    if logits.shape != (2, graph.CLASSES) or not np.all(np.isfinite(logits)):
        raise BadModelFile(source, f"converted graph gives {logits.shape} logits or non-finite values")
    if np.allclose(logits[0], logits[1]):
        raise BadModelFile(source, "converted graph gives the same logits for different crops")


def probe_crops() -> np.ndarray:
    """Two deterministic 80×80 BGR crops (a smooth gradient and a checkerboard)."""
    import numpy as np

    ramp = np.linspace(0, 255, graph.INPUT_SIZE, dtype=np.float32)
    smooth = np.stack([np.add.outer(ramp, ramp) / 2, np.add.outer(ramp, 255 - ramp) / 2,
                       np.full((graph.INPUT_SIZE, graph.INPUT_SIZE), 128.0)], axis=-1)
    checker = (np.indices((graph.INPUT_SIZE, graph.INPUT_SIZE)).sum(axis=0) % 2 * 255)[..., None].repeat(3, axis=-1)
    return np.stack([smooth, checker]).astype(np.uint8)


def run_once(onnx_bytes: bytes, crops: np.ndarray) -> np.ndarray:
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    return np.asarray(session.run([graph.OUTPUT_NAME], {graph.INPUT_NAME: crops})[0])


def load_model(models_dir: Path, variant: Variant) -> bytes:
    """The imported ONNX bytes of `variant`, verified against its manifest.

    Raises `ModelNotImported` if there is no manifest, `ConfigError` if the
    manifest or the file is damaged, altered, or from another converter.
    """
    where = model_dir(models_dir)
    manifest_path = where / f"{variant.spec.model}.json"
    if not manifest_path.exists():
        raise ModelNotImported(f"{variant.spec.model} is not imported into {models_dir} "
                               f"(run `limen models import <folder with {variant.spec.source_file}>`)")
    manifest = _manifest(manifest_path, variant)
    onnx_path = where / manifest.onnx_file
    try:
        if onnx_path.stat().st_size > MAX_CHECKPOINT_BYTES:
            raise ConfigError(f"{onnx_path}: larger than any imported model can be; re-import it")
        data = onnx_path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{onnx_path}: imported model unreadable ({exc.strerror}); re-import it") from None
    digest = hashlib.sha256(data).hexdigest()
    if not hmac.compare_digest(digest, manifest.onnx_sha256) or not _is(digest, pinned_onnx(variant)):
        raise ConfigError(f"{onnx_path}: does not match its manifest (altered or damaged); faces are refused until "
                          f"it is re-imported with `limen models import`")
    return data


def run_graph(models_dir: Path, variant: Variant) -> bytes:
    """The graph the lock runs for `variant` (see the module docstring); raises as `load_model` does."""
    data = load_model(models_dir, variant)
    source_sha = hashlib.sha256(data).hexdigest()
    path, record_path = run_graph_paths(models_dir, variant)
    pin = pinned_run(variant)
    if pin is None:  # no pinned run graph for this channel multiple: nothing stored can be trusted
        log.info("no pinned %s run graph for channel multiple %d; rewriting it in memory", variant.spec.model,
                 thresholds.PAD_MINIFASNET_CHANNEL_MULTIPLE)
        return _rewrite(variant, data)
    if path.exists() or record_path.exists():
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            run = path.read_bytes() if path.stat().st_size <= MAX_CHECKPOINT_BYTES else b""
        except (OSError, UnicodeDecodeError, ValueError):
            record, run = None, b""
        run_sha = hashlib.sha256(run).hexdigest()
        if record == _run_record(source_sha, run_sha):
            if _is(run_sha, pin):
                return run
            raise ConfigError(f"{path}: does not match the pinned {variant.spec.model} run graph (altered); faces "
                              "are refused until it is re-imported with `limen models import`")
        kind = _run_kind()
        if isinstance(record, dict) and record.get("onnx_sha256") == source_sha and \
                {k: record.get(k) for k in kind} != kind:
            log.info("%s was stored by another version of the rewrite; rewriting it", path.name)
        else:
            log.warning("%s does not match its record or the imported model; rewriting it", path.name)
    return _store_run_graph(models_dir, variant, data)


def run_graph_paths(models_dir: Path, variant: Variant) -> tuple[Path, Path]:
    """The stored run graph of `variant` and its record."""
    where = model_dir(models_dir)
    return where / f"{variant.spec.model}.run.onnx", where / f"{variant.spec.model}.run.json"


def _run_kind() -> dict[str, object]:
    return {"format": RUN_FORMAT, "channel_multiple": thresholds.PAD_MINIFASNET_CHANNEL_MULTIPLE}


def _run_record(source_sha256: str, run_sha256: str) -> dict[str, object]:
    return _run_kind() | {"onnx_sha256": source_sha256, "run_sha256": run_sha256}


def _store_run_graph(models_dir: Path, variant: Variant, data: bytes) -> bytes:
    """Rewrite the verified imported graph `data` and store it with its record (the graph first)."""
    run = _rewrite(variant, data)
    if pinned_run(variant) is None:
        return run  # not pinned: never stored, so never read back
    path, record_path = run_graph_paths(models_dir, variant)
    record = _run_record(hashlib.sha256(data).hexdigest(), hashlib.sha256(run).hexdigest())
    try:
        atomic_write(path, run, mode=0o644)
        atomic_write(record_path, json.dumps(record, indent=2).encode() + b"\n", mode=0o644)
    except OSError as exc:  # a read-only models directory: the rewrite is used from memory
        log.warning("cannot store %s (%s); rewriting it at each start", path.name, exc.strerror)
    return run


def _rewrite(variant: Variant, data: bytes) -> bytes:
    run = graph.run_form(data, thresholds.PAD_MINIFASNET_CHANNEL_MULTIPLE)
    pin = pinned_run(variant)
    if pin is not None and not _is(hashlib.sha256(run).hexdigest(), pin):
        raise ConfigError(f"the {variant.spec.model} run graph rewritten here is not the pinned one (another onnx "
                          "version?); faces are refused")
    return run


def _stored_run_altered(models_dir: Path, variant: Variant) -> str | None:
    """Why the stored run graph would be refused at load (hashes only, no `onnx`); None when it would not be."""
    path, record_path = run_graph_paths(models_dir, variant)
    pin = pinned_run(variant)
    if pin is None or not path.exists():
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        run_sha = hashlib.sha256(path.read_bytes()).hexdigest() if path.stat().st_size <= MAX_CHECKPOINT_BYTES \
            else ""
    except (OSError, UnicodeDecodeError, ValueError):
        return None  # rewritten at load, as a torn write is
    if isinstance(record, dict) and record.get("run_sha256") == run_sha and record.get("format") == RUN_FORMAT \
            and record.get("channel_multiple") == thresholds.PAD_MINIFASNET_CHANNEL_MULTIPLE \
            and not _is(run_sha, pin):
        return (f"{path}: does not match the pinned {variant.spec.model} run graph (altered); faces are refused "
                "until it is re-imported with `limen models import`")
    return None


def _manifest(path: Path, variant: Variant) -> Manifest:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.pop("format") != MANIFEST_FORMAT:
            raise ValueError("unknown manifest format")
        manifest = Manifest(**raw)
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ConfigError(f"{path}: unreadable model manifest ({exc}); re-import the model") from None
    if manifest.model != variant.spec.model or manifest.source_sha256 != variant.spec.source_sha256:
        raise ConfigError(f"{path}: manifest is for other weights than the pinned {variant.spec.model}; re-import")
    if manifest.converter != graph.CONVERTER_VERSION:
        raise ConfigError(f"{path}: converted by {manifest.converter}, this Limen needs {graph.CONVERTER_VERSION}; "
                          f"re-import with `limen models import`")
    if Path(manifest.onnx_file).name != manifest.onnx_file:
        raise ConfigError(f"{path}: manifest names a file outside the models directory")
    return manifest


def status(models_dir: Path) -> list[ModelStatus]:
    """Every known model: imported or not, verified or why not."""
    rows = []
    for variant in Variant:
        try:
            load_model(models_dir, variant)
        except ModelNotImported:
            rows.append(ModelStatus(variant, False, False, "not imported"))
        except ConfigError as exc:
            rows.append(ModelStatus(variant, True, False, str(exc)))
        else:
            altered = _stored_run_altered(models_dir, variant)
            rows.append(ModelStatus(variant, True, altered is None, altered or "verified"))
    return rows
