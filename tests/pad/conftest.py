"""PAD fixtures: the MiniFASNet weights imported once per session (the root conftest's import, one copy)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def minifasnet_models_dir(imported_face_models: Path) -> Path:
    """A models directory into which `import_models` put ../shared/models/minifasnet (skips when absent)."""
    return imported_face_models
