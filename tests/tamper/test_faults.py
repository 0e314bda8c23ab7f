"""SIGKILL at random points of the tamper response; the full campaign (≥ 200 runs) is bench/tamper.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from .fault_campaign import run_campaign


def test_sigkill_during_the_response_leaves_erased_locked_down_and_audited(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIMEN_DATA_DIR", raising=False)
    result = run_campaign(tmp_path, runs=20, seed=1)
    assert result.runs == 20
    assert result.failures == []
    assert result.recovered > 0  # most kills really interrupted the response
