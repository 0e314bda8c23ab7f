"""dlib models, loaded lazily once per process from the `face_recognition_models` package.

Weights come from PyPI (`face_recognition_models`); nothing is downloaded.
The package is located without importing it (its `__init__` needs pkg_resources).
"""

from __future__ import annotations

import importlib.util
import threading
from functools import cache
from pathlib import Path
from typing import Any

from limen.errors import ConfigError

_lock = threading.Lock()

SHAPE_5 = "shape_predictor_5_face_landmarks.dat"
RESNET = "dlib_face_recognition_resnet_model_v1.dat"


def model_path(name: str) -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("face_recognition_models is not installed (pip install face_recognition_models)")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise ConfigError(f"face model missing: {path}")
    return path


def _dlib() -> Any:
    try:
        import dlib
    except ImportError as exc:  # pragma: no cover - install problem
        raise ConfigError("dlib is not installed (pip install dlib-bin)") from exc
    return dlib


@cache
def detector() -> Any:
    with _lock:
        return _dlib().get_frontal_face_detector()


@cache
def shape_predictor() -> Any:
    with _lock:
        return _dlib().shape_predictor(str(model_path(SHAPE_5)))


@cache
def resnet() -> Any:
    with _lock:
        return _dlib().face_recognition_model_v1(str(model_path(RESNET)))


def release_resnet() -> None:
    """Forget dlib's ResNet (≈ 35 MB resident) once it has served as the fast embedder's reference.

    It loads again if dlib is asked to embed later (the fallback path)."""
    with _lock:
        resnet.cache_clear()
