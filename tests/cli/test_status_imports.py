"""`limen status` reads PAD's model files without importing the PAD pipeline, the face code or OpenCV."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

STATUS = """
import sys
from typer.testing import CliRunner
from limen.cli import app
out = CliRunner().invoke(app, ["status"])
assert out.exit_code == 0, out.output
assert "pad" in out.output
print(sorted(m for m in sys.modules if m in {"cv2", "PIL", "limen.pad.pipeline", "limen.bio.face", "limen.pad.fusion"}))
"""


def test_status_imports_no_pad_pipeline_or_opencv(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", STATUS], capture_output=True, text=True, timeout=120,
                         env={"LIMEN_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_pad_package_names_load_on_use() -> None:
    import limen.pad
    from limen.pad import pipeline
    from limen.pad.contract import Purpose

    assert limen.pad.assess is pipeline.assess
    assert limen.pad.Purpose is Purpose
    assert set(limen.pad.__all__) <= set(dir(limen.pad))
    assert all(getattr(limen.pad, name) is not None for name in limen.pad.__all__)
    with pytest.raises(AttributeError):
        limen.pad.no_such_name  # noqa: B018


def test_building_pads_cues_imports_no_scipy() -> None:
    code = ("import sys\nfrom limen.pad.pipeline import default_cues\nfrom limen.pad.pulse import sps\n"
            "default_cues()\nprint('scipy' in sys.modules)\nsps.butter\nprint('scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "True"]  # SciPy loads with the first pulse filtered, not before
