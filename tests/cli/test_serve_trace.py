"""`limen serve --trace FILE`: the service's attempts write their stage times to FILE, and only while it runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from limen import trace
from limen.cli import app
from limen.cli import serve as serve_cli


class _Server:
    """Stands in for uvicorn: one keypad attempt through the service's controller, then returns."""

    app: Any = None
    sink: Any = None

    def __init__(self, config: Any) -> None:
        _Server.app = config.app

    def run(self) -> None:
        _Server.sink = trace._sink
        _Server.app.state.ctx.lock.keypad("1234567#", session="kiosk")


def test_serve_trace_writes_one_line_per_attempt_and_stops_after(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serve_cli.uvicorn, "Server", _Server)
    out = tmp_path / "trace.jsonl"
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "data"), "serve", "--no-link", "--trace",
                                      str(out)])
    assert result.exit_code == 0, result.output
    assert isinstance(_Server.sink, trace.TimingsFile)
    assert isinstance(trace._sink, trace.NullSink)  # closed and unset when the service stops
    (row,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert row["method"] == "pin" and set(row["stages_ms"]) == {"decide", "audit", "door"}


def test_serve_refuses_a_trace_file_it_cannot_write(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "serve", "--trace",
                                      str(tmp_path / "missing" / "trace.jsonl")])
    assert result.exit_code == 2 and "--trace" in result.output
    assert isinstance(trace._sink, trace.NullSink)
