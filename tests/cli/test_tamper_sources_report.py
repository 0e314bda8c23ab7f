"""`limen status` and `limen serve` count every configured tamper source, not only the GPIO switches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from limen.cli.serve import _report_tamper_sources
from limen.cli.status import tamper_source_names
from limen.config import load_settings
from tests.cli.test_cli import limen


def test_status_names_a_watchdog_and_a_supply_as_sources(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "limen.toml").write_text('[limen]\ntamper_watchdog = ["capture:/run/limen/capture.beat"]\n')
    out = limen(data, "--json", "status")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["tamper"]["sources"] == ["watchdog:capture"]
    plain = limen(data, "status")
    assert "sources watchdog:capture" in plain.stdout and "no tamper sources" not in plain.stdout
    settings = load_settings(data, tamper_supply="file:/sys/bus/iio/in_voltage0_raw", tamper_supply_scale=0.01,
                             tamper_sources=["case:17"])
    assert tamper_source_names(settings) == ["case:17", "supply:file:/sys/bus/iio/in_voltage0_raw",
                                             "watchdog:capture"]


def test_status_says_when_nothing_is_watched(tmp_path: Path) -> None:
    out = limen(tmp_path / "data", "status")
    assert out.returncode == 0, out.stderr
    assert "no tamper sources configured" in out.stdout


@pytest.mark.parametrize(("overrides", "warned"), [
    ({}, True),
    ({"tamper_watchdog": ["capture:/run/limen/capture.beat"]}, False),
    ({"tamper_supply": "mcp3008:0", "tamper_supply_scale": 0.01}, False),
    ({"tamper_sources": ["shock:27"]}, False),
])
def test_serve_warns_only_when_no_source_is_configured(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       overrides: dict[str, object], warned: bool) -> None:
    _report_tamper_sources(load_settings(tmp_path, **overrides))
    assert ("No tamper sources configured" in capsys.readouterr().out) is warned


def test_tamper_status_lists_the_same_sources_as_status(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "limen.toml").write_text('[limen]\ntamper_watchdog = ["capture:/run/limen/capture.beat"]\n')
    out = limen(data, "--json", "tamper", "status")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["sources"] == ["watchdog:capture"]
