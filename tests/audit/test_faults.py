"""Durability under faults: SIGKILL while appending, then verify and count acknowledgements."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.audit.fault_campaign import kill_campaign


def test_sigkill_while_appending_loses_no_acknowledged_event(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIMEN_DATA_DIR", raising=False)
    runs = kill_campaign(tmp_path, runs=24, seed=11, early_fraction=0.15, max_wait_s=0.25)
    assert len(runs) == 24
    assert sum(r.lost for r in runs) == 0
    assert sum(r.orphans for r in runs) == 0                # no alarm without its outbox rows, nor the reverse
    assert max(r.alarms for r in runs) > 0
    assert sum(r.acknowledged for r in runs) > 24          # the child really appended between kills
    assert any(r.early for r in runs)                      # some kills hit open / key creation
    main = [r for r in runs if not r.early]
    assert all(b.records >= a.records for a, b in zip(main, main[1:], strict=False))
