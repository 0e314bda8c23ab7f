"""The single-frame cue: recapture texture of the face crop, scored by a small ensemble of linear models.

Three feature families are available (`FAMILIES`): colour-texture LBP
histograms in YCbCr + HSV (`lbp.py`), image-distortion features
(`distortion.py`) and spectrum / moiré features (`frequency.py`).  The shipped
`TextureModel` (`models/texture_v2.npz`, plain arrays, no pickle; trained by
`python -m limen.lab.pad_train_v2` on live images and their simulated recaptures,
model card beside it) averages the log-odds of its
members, each a standardised logistic regression over some families.  The
cue's score is the mean per-frame log-odds of bona fide; its threshold is
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
MODEL_FILE = MODEL_DIR / "texture_v2.npz"
MODEL_FORMAT = 2


def _lbp(face_rgb: np.ndarray) -> np.ndarray:
    return np.sqrt(colour_texture(face_rgb))  # Hellinger mapping of the histograms


FAMILIES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "lbp": _lbp,
    "distortion": distortion_features,
    "frequency": frequency_features,
}
_PROBE = np.full((64, 64, 3), 128, dtype=np.uint8)
_PROBE[::2, ::3] = 30
WIDTHS = {name: int(fn(_PROBE).size) for name, fn in FAMILIES.items()}


def texture_features(face_rgb: np.ndarray, families: tuple[str, ...] = tuple(FAMILIES)) -> np.ndarray:
    """The feature vector of one face crop: the named families, concatenated in that order."""
    return np.concatenate([FAMILIES[f](face_rgb) for f in families])


def family_columns(families: tuple[str, ...]) -> np.ndarray:
    """Column indices of `families` inside the all-family vector `texture_features(crop)`."""
    starts = dict(zip(FAMILIES, np.cumsum([0] + [WIDTHS[n] for n in FAMILIES])[:-1], strict=True))
    return np.concatenate([np.arange(starts[f], starts[f] + WIDTHS[f]) for f in families])


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

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}mean": self.mean, f"{prefix}scale": self.scale, f"{prefix}coef": self.coef,
                f"{prefix}intercept": np.array(self.intercept), f"{prefix}families": np.array(",".join(self.families))}

    @classmethod
    def from_arrays(cls, z: dict[str, np.ndarray] | np.lib.npyio.NpzFile, prefix: str) -> LinearModel:
        families = tuple(str(z[f"{prefix}families"]).split(","))
        if not set(families) <= set(FAMILIES):
            raise ValueError(f"unknown feature family in {families}")
        model = cls(z[f"{prefix}mean"], z[f"{prefix}scale"], z[f"{prefix}coef"], float(z[f"{prefix}intercept"]),
                    families)
        width = sum(WIDTHS[f] for f in families)
        if not (model.mean.shape == model.scale.shape == model.coef.shape == (width,)) or not np.all(model.scale > 0):
            raise ValueError("inconsistent member")
        return model


@dataclass(frozen=True)
class TextureModel:
    """Members whose log-odds are averaged; `families` is every family any member needs."""

    members: tuple[LinearModel, ...]

    @property
    def families(self) -> tuple[str, ...]:
        needed = {f for m in self.members for f in m.families}
        return tuple(f for f in FAMILIES if f in needed)

    def logits_all(self, x_all: np.ndarray) -> np.ndarray:
        """Log-odds from all-family feature rows (`texture_features(crop)` layout)."""
        x_all = np.atleast_2d(x_all)
        return np.mean([m.logits(x_all[:, family_columns(m.families)]) for m in self.members], axis=0)

    def logits_of(self, features: np.ndarray) -> np.ndarray:
        """Log-odds from rows laid out as `texture_features(crop, self.families)`."""
        full = np.zeros((np.atleast_2d(features).shape[0], sum(WIDTHS.values())))
        full[:, family_columns(self.families)] = features
        return self.logits_all(full)

    def save(self, path: Path, **meta: str) -> None:
        """Write atomically as plain arrays (readable with `allow_pickle=False`)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {k: np.array(v) for k, v in meta.items()}
        arrays |= {"format": np.array(MODEL_FORMAT), "members": np.array(len(self.members))}
        for i, m in enumerate(self.members):
            arrays |= m.arrays(f"m{i}_")
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)  # type: ignore[arg-type]
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> TextureModel:
        try:
            with np.load(path, allow_pickle=False) as z:
                if int(z["format"]) != MODEL_FORMAT:
                    raise ConfigError(f"PAD model {path.name}: unsupported format {int(z['format'])}")
                n = int(z["members"])
                if not 1 <= n <= 8:
                    raise ValueError("bad member count")
                return cls(tuple(LinearModel.from_arrays(z, f"m{i}_") for i in range(n)))
        except ConfigError:
            raise
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ConfigError(f"PAD model {path.name} cannot be read ({type(exc).__name__})") from exc


_model: TextureModel | None = None
_lock = threading.Lock()


def shipped_model() -> TextureModel:
    """The shipped texture model, loaded once per process."""
    global _model
    with _lock:
        if _model is None:
            _model = TextureModel.load(MODEL_FILE)
        return _model


FRAME_KEY = "frame_"


def per_frame_evidence(per_frame: np.ndarray) -> dict[str, float]:
    """Each usable frame's score as evidence (`frame_0`, `frame_1`, … in sample order), for the fusion's
    frame-by-frame consistency rule; at most `PAD_MAX_FRAMES` frames reach a cue."""
    return {f"{FRAME_KEY}{i}": round(float(v), 4) for i, v in enumerate(per_frame)}


def frames_of(evidence: dict[str, float]) -> np.ndarray | None:
    """The per-frame scores recorded by `per_frame_evidence` (None when absent or not contiguous)."""
    n = sum(1 for k in evidence if k.startswith(FRAME_KEY))
    keys = [f"{FRAME_KEY}{i}" for i in range(n)]
    if n == 0 or any(k not in evidence for k in keys):
        return None
    return np.array([evidence[k] for k in keys], dtype=np.float64)


def threshold_for(purpose: Purpose) -> float:
    return thresholds.PAD_TEXTURE_ENROL if purpose is Purpose.ENROL else thresholds.PAD_TEXTURE_VERIFY


class TextureCue:
    """Colour-texture / distortion / spectrum cue over every usable frame of a sample."""

    name = "texture"

    def __init__(self, model: TextureModel | None = None) -> None:
        self._model = model

    @property
    def model(self) -> TextureModel:
        return self._model if self._model is not None else shipped_model()

    def frame_scores(self, sample: PadSample) -> np.ndarray:
        if not sample.faces:
            return np.zeros(0)
        model = self.model
        features = np.stack([texture_features(f.crop, model.families) for f in sample.faces])
        return model.logits_of(features)

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
        } | per_frame_evidence(per_frame)
        return CueScore(self.name, float(per_frame.mean()), threshold_for(purpose), evidence)
