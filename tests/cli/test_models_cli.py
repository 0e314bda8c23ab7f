"""`limen models import` and `limen models list` as typed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

SHARED_WEIGHTS = Path(__file__).resolve().parents[3] / "shared" / "models" / "minifasnet"


def limen(data_dir: Path, *args: str, **env: str) -> Result:
    from limen.cli import app
    from limen.cli.common import STATE

    STATE._settings = None
    return CliRunner().invoke(app, list(args), env={"LIMEN_DATA_DIR": str(data_dir), "LIMEN_MODELS_DIR": None,
                                                    **env})


def weights() -> Path:
    if not SHARED_WEIGHTS.is_dir():
        pytest.skip(f"shared models not available: {SHARED_WEIGHTS}")
    return SHARED_WEIGHTS


def test_list_shows_nothing_imported(tmp_path: Path) -> None:
    result = limen(tmp_path / "d", "--json", "models", "list")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["models_dir"] == str(tmp_path / "d" / "models")
    assert [(m["model"], m["imported"]) for m in data["models"]] == [("MiniFASNetV2", False),
                                                                      ("MiniFASNetV1SE", False)]


def test_import_then_list_verified_then_tampered(tmp_path: Path) -> None:
    models = tmp_path / "elsewhere"
    result = limen(tmp_path / "d", "--json", "models", "import", str(weights()), LIMEN_MODELS_DIR=str(models))
    assert result.exit_code == 0, result.output
    imported = json.loads(result.output)
    assert {m["model"] for m in imported["imported"]} == {"MiniFASNetV2", "MiniFASNetV1SE"}
    assert imported["still_missing"] == []
    listed = limen(tmp_path / "d", "models", "list", LIMEN_MODELS_DIR=str(models))
    assert listed.exit_code == 0, listed.output
    assert [line.split()[-1] for line in listed.output.splitlines()[1:]] == ["verified", "verified"]
    onnx = models / "minifasnet" / "MiniFASNetV1SE.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-1] + b"\0")
    tampered = limen(tmp_path / "d", "models", "list", LIMEN_MODELS_DIR=str(models))
    assert tampered.exit_code == 1 and "does not match its manifest" in tampered.output


def test_importing_one_model_says_the_other_is_missing(tmp_path: Path) -> None:
    result = limen(tmp_path / "d", "models", "import", str(weights() / "2.7_80x80_MiniFASNetV2.pth"))
    assert result.exit_code == 0, result.output
    assert "still missing: 4_0_0_80x80_MiniFASNetV1SE.pth" in result.output


def test_bad_input_is_one_error_line_and_writes_nothing(tmp_path: Path) -> None:
    fake = tmp_path / "in" / "2.7_80x80_MiniFASNetV2.pth"
    fake.parent.mkdir()
    fake.write_bytes(b"PK\x03\x04 not really a checkpoint")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LIMEN_")}
    environ["LIMEN_DATA_DIR"] = str(tmp_path / "d")
    run = subprocess.run([sys.executable, "-m", "limen", "models", "import", str(fake.parent)], capture_output=True,
                         text=True, env=environ, timeout=120, check=False)
    assert run.returncode == 1
    lines = [line for line in (run.stdout + run.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "not the pinned" in lines[0], lines
    assert not (tmp_path / "d" / "models").exists()
    missing = limen(tmp_path / "d", "models", "import", str(tmp_path / "nowhere"))
    assert missing.exit_code != 0 and not (tmp_path / "d" / "models").exists()
