"""Shared fixtures: a throw-away data directory, settings, and the shared datasets."""

from __future__ import annotations

from pathlib import Path

import pytest

from limen.config import Settings, load_settings

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared(*parts: str) -> Path:
    """Path under ../shared/data, skipping the test cleanly when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared dataset not available: {path}")
    return path


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "limen-data"
    monkeypatch.setenv("LIMEN_DATA_DIR", str(d))
    return d


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return load_settings(data_dir)
