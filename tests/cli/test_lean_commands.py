"""What `limen status` and `limen serve` load: status no heavy library it does not use; serve caps malloc arenas."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys
from pathlib import Path

import pytest

from limen.cli.serve import limit_malloc_arenas

STATUS = """
import sys
from typer.testing import CliRunner
from limen.cli import app
out = CliRunner().invoke(app, ["status"])
assert out.exit_code == 0, out.output
assert "pad" in out.output
print(sorted({m.split(".")[0] for m in sys.modules} & {"scipy", "onnxruntime", "dlib", "fastapi", "sklearn"}))
"""


def test_status_imports_no_model_runtime_or_scipy(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", STATUS], capture_output=True, text=True, timeout=120,
                         env={"LIMEN_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.skipif(not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None,
                    reason="glibc's mallopt only")
def test_serve_caps_malloc_arenas_on_glibc() -> None:
    assert limit_malloc_arenas() is True
