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
