"""`limen status` and `limen serve` say whether PAD's imported models can judge (they never fall back silently)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from limen.cli.serve import _report_face_models
from limen.config import load_settings
from tests.cli.test_cli import limen


def test_status_says_faces_are_refused_without_imported_models(tmp_path: Path) -> None:
    out = limen(tmp_path, "--json", "status")
    assert out.returncode == 0, out.stderr
    pad = json.loads(out.stdout)["pad_models"]
    assert pad["ready"] is False
    assert set(pad["models"].values()) == {"not imported"}


def test_status_and_serve_name_an_altered_model(face_models: Path, data_dir: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = limen(data_dir, "--json", "status")
    assert json.loads(out.stdout)["pad_models"]["ready"] is True
    onnx = sorted(face_models.rglob("*.onnx"))[0]
    blob = bytearray(onnx.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    onnx.write_bytes(bytes(blob))
    out = limen(data_dir, "--json", "status")
    pad = json.loads(out.stdout)["pad_models"]
    assert pad["ready"] is False
    assert any(v not in ("verified", "not imported") for v in pad["models"].values())
    _report_face_models(load_settings(data_dir))
    err = capsys.readouterr().err
    assert err.startswith("error: face PAD model") and "Faces are refused" in err


def test_serve_says_when_no_model_is_imported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _report_face_models(load_settings(tmp_path / "d"))
    assert "Face PAD model not imported" in capsys.readouterr().out
