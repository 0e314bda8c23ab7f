"""`pip install limen` is the lock: the lock's code imports nothing from the `[lab]` extra."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

LAB_ONLY = ("matplotlib", "sklearn")  # scipy is a lock dependency: PAD's pulse cue

# Every lock-side package imported with the lab's libraries made unimportable.
LOCK = f"""
import importlib, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {LAB_ONLY!r}:
            raise ModuleNotFoundError(f"blocked: {{name}}", name=name)
sys.meta_path.insert(0, Block())
for module in ("limen.runtime", "limen.controller", "limen.recognition", "limen.bio.face", "limen.pad",
               "limen.vault", "limen.audit", "limen.access", "limen.tamper", "limen.door", "limen.service",
               "limen.cli.serve", "limen.cli.status", "limen.cli.face", "limen.cli.access"):
    importlib.import_module(module)
print("ok")
"""


def test_the_lock_imports_without_the_lab_extra() -> None:
    out = subprocess.run([sys.executable, "-c", LOCK], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_a_lab_command_without_the_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    import limen.cli as cli

    plots = typer.Typer()

    @plots.command("plot")
    def plot() -> None:
        raise ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib")

    monkeypatch.setattr(cli, "_load", lambda name: typer.main.get_command(plots))
    monkeypatch.setattr(sys, "argv", ["limen", "lab"])
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code == 1
    assert "pip install 'limen[lab]'" in capsys.readouterr().err


# `limen status` as a user runs it, recording which Limen module first asks for each heavy package.
STATUS = """
import runpy, sys
HEAVY = ("numpy", "cv2", "onnxruntime", "dlib", "scipy", "PIL", "fastapi")
asked = {}
class Who:
    def find_spec(self, name, path=None, target=None):
        if name in HEAVY and name not in asked:
            frame = sys._getframe(1)
            while frame is not None and not frame.f_globals.get("__name__", "").startswith("limen"):
                frame = frame.f_back
            asked[name] = frame.f_globals["__name__"] if frame is not None else "?"
        return None
sys.meta_path.insert(0, Who())
sys.argv = ["limen", "status"]
try:
    runpy.run_module("limen", run_name="__main__")
except SystemExit as stop:
    assert not stop.code, stop.code
print(sorted(asked.items()))
"""

def test_limen_status_imports_no_numpy_opencv_or_model_runtime(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", STATUS], capture_output=True, text=True, timeout=120,
                         env={"LIMEN_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    asked = dict(ast.literal_eval(out.stdout.strip().splitlines()[-1]))
    assert asked == {}, asked  # each heavy package, with the Limen module that first asked for it


def test_limen_status_checks_imported_pad_models_without_numpy(tmp_path: Path) -> None:
    """The model check `limen status` runs reads and hashes imported MiniFASNet files: still no numpy."""
    from limen.pad import onnx_minifasnet as graph

    where = tmp_path / "models" / "minifasnet"
    where.mkdir(parents=True)
    for v in graph.Variant:  # a manifest for bytes that are not the model: found, read, hashed, refused
        (where / f"{v.spec.model}.onnx").write_bytes(b"not a model")
        (where / f"{v.spec.model}.json").write_text(json.dumps({
            "format": 1, "model": v.spec.model, "source_file": v.spec.source_file,
            "source_sha256": v.spec.source_sha256, "converter": graph.CONVERTER_VERSION,
            "onnx_file": f"{v.spec.model}.onnx", "onnx_sha256": "0" * 64}))
    script = STATUS.replace("sys.argv = ", "import limen.pad.minifasnet_models as m\n"
                            "rows = m.status(__import__('pathlib').Path(sys.argv[1]))\n"
                            "assert all(r.imported and not r.verified for r in rows), rows\n"
                            "sys.argv = ")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "models")], capture_output=True, text=True,
                         timeout=120, env={"LIMEN_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    asked = dict(ast.literal_eval(out.stdout.strip().splitlines()[-1]))
    assert "numpy" not in asked, asked


# face_recognition_models' own __init__ imports pkg_resources (setuptools < 81): the lock must never run it.
NO_PKG_RESOURCES = """
import importlib, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "pkg_resources":
            raise ModuleNotFoundError("blocked: pkg_resources", name=name)
sys.meta_path.insert(0, Block())
for module in ("limen.runtime", "limen.recognition", "limen.bio.face", "limen.service.app", "limen.cli.serve",
               "limen.audit.channels", "limen.door.gpio", "limen.tamper.sources", "apprise", "gpiozero"):
    importlib.import_module(module)
import apprise
apprise.Apprise().add("json://127.0.0.1:9/")  # its plugins load without pkg_resources
from limen.bio.face import models
for name in (models.SHAPE_5, models.RESNET):
    assert models.model_path(name).is_file()
assert "face_recognition_models" not in sys.modules
print("ok")
"""


def test_the_lock_finds_its_face_models_without_pkg_resources() -> None:
    """So `setuptools<81` is a development pin (bench's face_recognition), not a dependency of the lock."""
    out = subprocess.run([sys.executable, "-c", NO_PKG_RESOURCES], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
