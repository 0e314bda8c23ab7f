"""The graph MiniFASNet runs is stored beside the imported model, so the service never imports `onnx`.

Skips when the MiniFASNet weights are absent (`minifasnet_models_dir`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from limen import thresholds
from limen.errors import ConfigError
from limen.pad import minifasnet as mf
from limen.pad import minifasnet_models
from limen.pad.minifasnet_models import RUN_FORMAT, load_model, run_graph, run_graph_paths
from limen.pad.onnx_minifasnet import Variant, run_form


def rewritten(data: bytes) -> bytes:
    """The run graph the lock derives from the imported graph `data`."""
    return run_form(data, thresholds.PAD_MINIFASNET_CHANNEL_MULTIPLE)


@pytest.fixture
def models(minifasnet_models_dir: Path, tmp_path: Path) -> Iterator[Path]:
    """A private copy of the imported models (these tests alter files in it)."""
    mf._forget_sessions()
    yield Path(shutil.copytree(minifasnet_models_dir, tmp_path / "models"))
    mf._forget_sessions()


def test_import_stores_the_rewritten_graph_with_its_record(models: Path) -> None:
    for v in Variant:
        path, record_path = run_graph_paths(models, v)
        imported = load_model(models, v)
        assert path.read_bytes() == rewritten(imported)
        record = json.loads(record_path.read_text())
        assert record["format"] == RUN_FORMAT and record["run_sha256"] != record["onnx_sha256"]
        assert record["channel_multiple"] == thresholds.PAD_MINIFASNET_CHANNEL_MULTIPLE
        assert run_graph(models, v) == path.read_bytes()


SESSIONS = """
import sys
from pathlib import Path
from limen.pad import minifasnet as mf
from limen.pad import minifasnet_models
assert mf.MiniFasNetCue(Path(sys.argv[1])).check()
print("onnx" in sys.modules)
"""


def test_sessions_load_without_the_onnx_package(models: Path) -> None:
    out = subprocess.run([sys.executable, "-c", SESSIONS, str(models)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"
    for v in Variant:  # without the stored graph the same check rewrites it, and so imports onnx
        run_graph_paths(models, v)[0].unlink()
    out = subprocess.run([sys.executable, "-c", SESSIONS, str(models)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "True"
    assert all(run_graph_paths(models, v)[0].is_file() for v in Variant)  # stored again for the next start


def test_an_altered_run_graph_is_rewritten_not_run(models: Path, caplog: pytest.LogCaptureFixture) -> None:
    path, _ = run_graph_paths(models, Variant.V2)
    good = path.read_bytes()
    path.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    assert run_graph(models, Variant.V2) == good
    assert path.read_bytes() == good
    assert "does not match its record" in caplog.text


def test_a_record_for_another_imported_graph_is_rewritten(models: Path) -> None:
    path, record_path = run_graph_paths(models, Variant.V1SE)
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps(record | {"onnx_sha256": "0" * 64}))
    assert run_graph(models, Variant.V1SE) == rewritten(load_model(models, Variant.V1SE))
    assert json.loads(record_path.read_text()) == record


def test_an_altered_imported_model_still_refuses_faces(models: Path) -> None:
    onnx_path = models / "minifasnet" / f"{Variant.V2.spec.model}.onnx"
    onnx_path.write_bytes(onnx_path.read_bytes() + b"\0")
    with pytest.raises(ConfigError, match="does not match its manifest"):
        run_graph(models, Variant.V2)  # the stored run graph and its record are intact: not enough
    with pytest.raises(ConfigError):
        mf.MiniFasNetCue(models).check()


def test_a_models_directory_that_cannot_be_written_rewrites_in_memory(models: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for v in Variant:
        for p in run_graph_paths(models, v):
            p.unlink()

    def read_only(path: Path, data: bytes, mode: int = 0o600) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(minifasnet_models, "atomic_write", read_only)
    assert run_graph(models, Variant.V2) == rewritten(load_model(models, Variant.V2))
    assert not run_graph_paths(models, Variant.V2)[0].exists()
    assert mf.MiniFasNetCue(models).check()


def test_a_run_graph_stored_by_an_older_rewrite_is_replaced_at_load(models: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """A models directory imported before the current rewrite loads as it is: no re-import needed."""
    import logging

    from limen.pad.onnx_minifasnet import prelu_as_relus

    for v in Variant:  # what an older Limen left: another graph, a record of format 1 without a channel multiple
        path, record_path = run_graph_paths(models, v)
        old = prelu_as_relus(load_model(models, v))
        path.write_bytes(old)
        record = json.loads(record_path.read_text())
        del record["channel_multiple"]
        record_path.write_text(json.dumps(record | {"format": "limen.minifasnet.run/1",
                                                    "run_sha256": hashlib.sha256(old).hexdigest()}))
    with caplog.at_level(logging.INFO, logger="limen.pad.minifasnet_models"):
        assert mf.MiniFasNetCue(models).check()
    assert "stored by another version of the rewrite" in caplog.text
    assert "does not match its record" not in caplog.text
    for v in Variant:
        path, record_path = run_graph_paths(models, v)
        assert path.read_bytes() == rewritten(load_model(models, v))
        assert json.loads(record_path.read_text())["format"] == RUN_FORMAT


def _always_live() -> bytes:
    """Review H6 (evilpad.py): a run graph whose logits say "live" (log-odds ≈ 20) whatever the crop."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Cast", ["crops"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("ReduceSum", ["f", "axes"], ["s"], keepdims=0),
             helper.make_node("Mul", ["s", "zero"], ["z"]),
             helper.make_node("Unsqueeze", ["z", "ax1"], ["z1"]),
             helper.make_node("Add", ["z1", "live"], ["logits"])]
    inits = [helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3]),
             helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
             helper.make_tensor("ax1", TensorProto.INT64, [1], [1]),
             helper.make_tensor("live", TensorProto.FLOAT, [1, 3], [0.0, 20.0, 0.0])]
    g = helper.make_graph(nodes, "evil", [helper.make_tensor_value_info("crops", TensorProto.UINT8, ["n", 80, 80, 3])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 3])], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def test_a_run_graph_replaced_with_its_record_fixed_up_is_refused_as_altered(models: Path) -> None:
    """Review H6: the run graph replaced and `run_sha256` in its record updated passed as "verified" and scored
    random noise live; an edit of the models directory alone must not pass."""
    from limen.pad.minifasnet_models import status

    evil = _always_live()
    for v in Variant:
        path, record_path = run_graph_paths(models, v)
        path.write_bytes(evil)
        record = json.loads(record_path.read_text())
        record_path.write_text(json.dumps(record | {"run_sha256": hashlib.sha256(evil).hexdigest()}))
    with pytest.raises(ConfigError, match="altered"):
        run_graph(models, Variant.V2)
    with pytest.raises(ConfigError, match="altered"):
        mf.MiniFasNetCue(models).check()
    rows = status(models)  # what `limen status` and `limen models list` show, without loading onnx
    assert [r.verified for r in rows] == [False, False] and all("altered" in r.detail for r in rows)
    assert run_graph_paths(models, Variant.V2)[0].read_bytes() == evil  # the evidence is left as it was


def test_an_imported_graph_replaced_with_its_manifest_fixed_up_is_refused_as_altered(models: Path) -> None:
    from limen.pad.minifasnet_models import status

    onnx_path = models / "minifasnet" / f"{Variant.V2.spec.model}.onnx"
    manifest_path = models / "minifasnet" / f"{Variant.V2.spec.model}.json"
    evil = _always_live()
    onnx_path.write_bytes(evil)
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps(manifest | {"onnx_sha256": hashlib.sha256(evil).hexdigest()}))
    with pytest.raises(ConfigError, match="altered"):
        load_model(models, Variant.V2)
    with pytest.raises(ConfigError):
        mf.MiniFasNetCue(models).check()
    assert not status(models)[0].verified


def test_the_conversion_gives_the_pinned_graphs(models: Path) -> None:
    """The pins hold only because the import is deterministic: the session's import gave exactly these bytes."""
    from limen.pad.minifasnet_models import pinned_onnx, pinned_run

    for v in Variant:
        imported = load_model(models, v)
        assert hashlib.sha256(imported).hexdigest() == pinned_onnx(v)
        assert hashlib.sha256(rewritten(imported)).hexdigest() == pinned_run(v)


def test_a_channel_multiple_without_a_pin_never_reads_the_stored_graph(models: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thresholds, "PAD_MINIFASNET_CHANNEL_MULTIPLE", 4)
    path, record_path = run_graph_paths(models, Variant.V2)
    evil = _always_live()
    path.write_bytes(evil)
    record_path.write_text(json.dumps(json.loads(record_path.read_text()) | {
        "channel_multiple": 4, "run_sha256": hashlib.sha256(evil).hexdigest()}))
    assert run_graph(models, Variant.V2) == run_form(load_model(models, Variant.V2), 4)
