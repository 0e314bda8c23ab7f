"""PAD fixtures shared across test modules: the MiniFASNet weights imported once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_MODELS = Path(__file__).resolve().parents[3] / "shared" / "models"


@pytest.fixture(scope="session")
def minifasnet_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models directory into which `import_models` put ../shared/models/minifasnet (skips when absent)."""
    from limen.pad.minifasnet_models import import_models

    source = SHARED_MODELS / "minifasnet"
    if not source.is_dir():
        pytest.skip(f"shared models not available: {source}")
    models_dir = tmp_path_factory.mktemp("models")
    import_models(source, models_dir)
    return models_dir
