"""Shared fixtures: a throw-away data directory, settings, and the shared datasets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from limen.config import Settings, load_settings

# No per-example deadline: on a loaded machine (CI shares 2 cores) one descheduled example that overruns the default
# 200 ms can fail as DeadlineExceeded/Flaky; the properties are about results, not speed (speed is in bench/).
hypothesis_settings.register_profile("limen", deadline=None)
hypothesis_settings.load_profile("limen")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SHARED_MODELS = SHARED_DATA.parent / "models"


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


@pytest.fixture(scope="session")
def imported_face_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models directory with MiniFASNet imported once per session (skips when the weights are absent)."""
    from limen.pad.minifasnet_models import import_models

    source = SHARED_MODELS / "minifasnet"
    if not source.is_dir():
        pytest.skip(f"shared models not available: {source}")
    models = tmp_path_factory.mktemp("face-models")
    import_models(source, models)
    return models


def install_face_models(imported: Path, data_dir: Path) -> Path:
    """Copy the imported models into `data_dir`'s default models directory (PAD needs them to pass a face)."""
    return Path(shutil.copytree(imported, data_dir / "models", dirs_exist_ok=True))


@pytest.fixture
def face_models(data_dir: Path, imported_face_models: Path) -> Path:
    """The throw-away data directory's models directory, with MiniFASNet imported."""
    return install_face_models(imported_face_models, data_dir)


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return load_settings(data_dir)


def nuaa_burst(dest: Path, kind: str, subject: str, session: str, count: int, start: int = 0) -> Path:
    """A folder of `count` consecutive NUAA frames (numeric order) of one subject and session, as links."""
    src = shared("nuaa-dev", kind, subject)
    frames = sorted((f for f in src.iterdir() if f.name.split("_")[3] == session),
                    key=lambda f: int(f.stem.split("_")[4]))
    chosen = frames[start : start + count]
    if len(chosen) < count:
        pytest.skip(f"not enough frames in {src} session {session}")
    dest.mkdir(parents=True, exist_ok=True)
    for f in chosen:
        (dest / f.name).symlink_to(f)
    return dest
