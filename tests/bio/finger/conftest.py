"""Fingerprint fixtures: FVC2002 images from ../shared/data (tests skip when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import shared


@pytest.fixture(scope="session")
def fvc_db1() -> Path:
    return shared("fvc2002", "DB1_B")
