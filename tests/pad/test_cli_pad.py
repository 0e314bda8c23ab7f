"""`limen pad check` and `limen lab pad` through the Typer app."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from limen.cli import app
from tests.pad.helpers import nuaa_files

runner = CliRunner()


def test_pad_check_reports_a_verdict_as_json(data_dir: Path, minifasnet_models_dir: Path) -> None:
    photo = nuaa_files("print", "0003", 1)[0]
    result = runner.invoke(app, ["--json", "pad", "check", str(photo), "--models-dir", str(minifasnet_models_dir)])
    verdict = json.loads(result.stdout)
    assert verdict["reason"] == "attack" and verdict["passed"] is False
    assert result.exit_code == 1


def test_pad_check_refuses_a_missing_file(data_dir: Path) -> None:
    result = runner.invoke(app, ["pad", "check", "/nonexistent/x.jpg"])
    assert result.exit_code != 0


def test_lab_pad_writes_the_report(tmp_path: Path, data_dir: Path) -> None:
    dataset = tmp_path / "set"
    for kind in ("live", "print"):
        for i, f in enumerate(nuaa_files(kind, "0004", 3, stride=11)):
            target = dataset / kind / "0004" / f"{i}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(f)
    out = tmp_path / "out"
    result = runner.invoke(app, ["--json", "lab", "pad", str(dataset), "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["metrics"]["bona_fide"] == 3 and data["metrics"]["attacks"] == {"print": 3}
    for name in ("pad_scores.csv", "pad_metrics.json", "pad_det.png", "pad_report.html"):
        assert (out / name).is_file()


def test_pad_check_rejects_an_unknown_challenge(data_dir: Path) -> None:
    photo = nuaa_files("live", "0003", 1)[0]
    result = runner.invoke(app, ["pad", "check", str(photo), "--challenge", "dance"])
    assert result.exit_code != 0


def test_pad_check_with_a_challenge_a_still_photo_is_insufficient(data_dir: Path) -> None:
    photo = nuaa_files("live", "0001", 1)[0]  # a live frame the texture cue passes
    result = runner.invoke(app, ["--json", "pad", "check", str(photo), "--challenge", "turn_left_right"])
    assert json.loads(result.stdout)["reason"] == "insufficient_evidence" and result.exit_code == 1


def test_lab_pad_reports_bursts_per_presentation_and_per_frame(tmp_path: Path, data_dir: Path) -> None:
    dataset = tmp_path / "bursts"
    for kind in ("live", "print"):
        for run in range(2):
            for i, f in enumerate(nuaa_files(kind, "0004", 3, stride=2 + run)):
                target = dataset / kind / f"{kind}{run}" / f"{i}.jpg"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(f)
    out = tmp_path / "out"
    result = runner.invoke(app, ["--json", "lab", "pad", str(dataset), "--bursts", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["metrics"]["bona_fide"] == 2 and data["metrics"]["attacks"] == {"print": 2}
    assert data["per_frame"]["metrics"]["bona_fide"] == 6 and data["per_frame"]["metrics"]["attacks"] == {"print": 6}
    assert (out / "frames" / "pad_report.html").is_file() and (out / "pad_report.html").is_file()


def test_pad_check_takes_a_move_sequence(data_dir: Path) -> None:
    photo = nuaa_files("live", "0001", 1)[0]
    result = runner.invoke(app, ["--json", "pad", "check", str(photo), "--challenge", "left,up,right"])
    assert json.loads(result.stdout)["reason"] == "insufficient_evidence" and result.exit_code == 1
    bad = runner.invoke(app, ["pad", "check", str(photo), "--challenge", "left,left"])
    assert bad.exit_code != 0 and "left,up,right" in f"{bad.output}{bad.exception}"
