"""Short SIGKILL campaign (the ≥200-run version: `python bench/vault.py --faults 200`)."""

from __future__ import annotations

from pathlib import Path

from tests.vault.fault_campaign import run_campaign


def test_kill_during_enrol_or_zeroize_leaves_a_consistent_store(tmp_path: Path) -> None:
    result = run_campaign(tmp_path, runs=14, seed=11)
    assert result.runs == 14
    assert result.failures == []
    assert any(k.startswith("zeroize") for k in result.outcomes)


def test_kill_with_fragments(tmp_path: Path) -> None:
    result = run_campaign(tmp_path, runs=6, seed=12, fragments=3)
    assert result.failures == []
