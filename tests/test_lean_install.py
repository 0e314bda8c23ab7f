"""`pip install limen` is the lock: the lock's code imports nothing from the `[lab]` extra."""

from __future__ import annotations

import ast
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

# PAD's model check (src/limen/pad/minifasnet_models.py, its graph and checkpoint reader) still imports NumPy at
# module level; nothing else `limen status` runs may.  Remove the entry once PAD imports it lazily.
STATUS_MAY_IMPORT = {"numpy": "limen.pad.minifasnet_models"}


def test_limen_status_imports_no_numpy_opencv_or_model_runtime(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", STATUS], capture_output=True, text=True, timeout=120,
                         env={"LIMEN_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    asked = dict(ast.literal_eval(out.stdout.strip().splitlines()[-1]))
    assert asked.items() <= STATUS_MAY_IMPORT.items(), asked
