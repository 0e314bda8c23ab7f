"""The single-frame cue: recapture texture of the face crop, scored by a linear model.

Three feature families are available (`FAMILIES`): colour-texture LBP
histograms (`lbp.py`), image-distortion features (`distortion.py`) and the
spectrum / moiré features (`frequency.py`).  The shipped model names the
families it uses; training picks them by how well they generalise across
capture sessions (see the model card).  Features of each usable face crop are
scored by a logistic-regression model shipped as `models/texture_v1.npz`
(plain arrays, no pickle; trained by `python -m limen.pad.train`).
The cue's score is the mean per-frame log-odds of bona fide; the threshold is
`PAD_TEXTURE_VERIFY` or the stricter `PAD_TEXTURE_ENROL`.  The model loads
once per process, on first use.
"""

from __future__ import annotations

import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from limen import thresholds
from limen.errors import ConfigError
from limen.pad.contract import CueResult, CueScore, CueUnavailable, Purpose
from limen.pad.distortion import distortion_features
from limen.pad.faces import PadSample
from limen.pad.frequency import frequency_features
from limen.pad.lbp import colour_texture

MODEL_DIR = Path(__file__).parent / "models"
MODEL_FILE = MODEL_DIR / "texture_v1.npz"
MODEL_FORMAT = 1


def _lbp(face_rgb: np.ndarray) -> np.ndarray:
    return np.sqrt(colour_texture(face_rgb))  # Hellinger mapping of the histograms


FAMILIES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "lbp": _lbp,
    "distortion": distortion_features,
    "frequency": frequency_features,
}


def texture_features(face_rgb: np.ndarray, families: tuple[str, ...] = tuple(FAMILIES)) -> np.ndarray:
    """The feature vector of one face crop: the named families, concatenated in that order."""
    return np.concatenate([FAMILIES[f](face_rgb) for f in families])


@dataclass(frozen=True)
class LinearModel:
    """Standardise, then a logistic regression: `logits(X)` are log-odds of bona fide."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    families: tuple[str, ...] = tuple(FAMILIES)

    def logits(self, features: np.ndarray) -> np.ndarray:
        x = (np.atleast_2d(features) - self.mean) / self.scale
        return np.asarray(x @ self.coef + self.intercept, dtype=np.float64)

    def save(self, path: Path, **meta: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        arrays: dict[str, np.ndarray] = {k: np.array(v) for k, v in meta.items()}
        arrays |= {"format": np.array(MODEL_FORMAT), "mean": self.mean, "scale": self.scale, "coef": self.coef,
                   "intercept": np.array(self.intercept), "families": np.array(",".join(self.families))}
        np.savez(tmp, **arrays)  # type: ignore[arg-type]
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> LinearModel:
        try:
            with np.load(path, allow_pickle=False) as z:
                if int(z["format"]) != MODEL_FORMAT:
                    raise ConfigError(f"PAD model {path.name}: unsupported format {int(z['format'])}")
                families = tuple(str(z["families"]).split(","))
                if not set(families) <= set(FAMILIES):
                    raise ConfigError(f"PAD model {path.name}: unknown feature family in {families}")
                model = cls(z["mean"], z["scale"], z["coef"], float(z["intercept"]), families)
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ConfigError(f"PAD model {path.name} cannot be read ({type(exc).__name__})") from exc
        if not (model.mean.shape == model.scale.shape == model.coef.shape) or not np.all(model.scale > 0):
            raise ConfigError(f"PAD model {path.name} is inconsistent")
        return model


_model: LinearModel | None = None
_lock = threading.Lock()


def shipped_model() -> LinearModel:
    """The shipped texture model, loaded once per process."""
    global _model
    with _lock:
        if _model is None:
            _model = LinearModel.load(MODEL_FILE)
        return _model


def threshold_for(purpose: Purpose) -> float:
    return thresholds.PAD_TEXTURE_ENROL if purpose is Purpose.ENROL else thresholds.PAD_TEXTURE_VERIFY


class TextureCue:
    """Colour-texture / distortion / spectrum cue over every usable frame of a sample."""

    name = "texture"

    def __init__(self, model: LinearModel | None = None) -> None:
        self._model = model

    @property
    def model(self) -> LinearModel:
        return self._model if self._model is not None else shipped_model()

    def frame_scores(self, sample: PadSample) -> np.ndarray:
        if not sample.faces:
            return np.zeros(0)
        features = np.stack([texture_features(f.crop, self.model.families) for f in sample.faces])
        return self.model.logits(features)

    def score(self, sample: PadSample, purpose: Purpose) -> CueResult:
        per_frame = self.frame_scores(sample)
        if per_frame.size == 0:
            return CueUnavailable(self.name, "no_usable_face")
        if not np.all(np.isfinite(per_frame)):
            return CueUnavailable(self.name, "non_finite_score")
        evidence = {
            "frames": float(per_frame.size),
            "min": round(float(per_frame.min()), 4),
            "max": round(float(per_frame.max()), 4),
        }
        return CueScore(self.name, float(per_frame.mean()), threshold_for(purpose), evidence)
