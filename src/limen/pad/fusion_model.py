"""The learned parts of the fusion: the edge cue's model and the calibrated cue combinations.

`models/fusion_v2.npz` (plain arrays, no pickle; chosen and written by
`python -m limen.lab.pad_audit --write-fusion`, docs/pad.md "Robustness audit") holds

- `edges`: a standardised logistic regression over `edges.FEATURES` (the lab
  edge cue's model);
- the combinations: one `Logistic` per set of single-frame cues (shipped:
  texture + MiniFASNet), log-odds of bona fide from those cues' scores.  The
  shipped one is monotone: MiniFASNet + 0.5 × texture, calibrated to log-odds
  on leave-one-dataset-out scores; it replaced `fusion_v1.npz` (a free
  logistic fit weighting texture as much as MiniFASNet, kept for the audit's
  comparison) because it holds better on the held-out proxies (shifted
  leave-one-dataset-out folds).

`FusionModel.combine(scores)` picks the combination for exactly the cues that
ran; None when none matches (fusion then cannot pass: insufficient evidence).
"""

from __future__ import annotations

import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from limen.errors import ConfigError

MODEL_FILE = Path(__file__).parent / "models" / "fusion_v2.npz"
PREVIOUS_MODEL_FILE = Path(__file__).parent / "models" / "fusion_v1.npz"  # for comparisons only (lab)
FORMAT = 1


@dataclass(frozen=True)
class Logistic:
    """Standardise `inputs`, then a logistic regression: `logits` are log-odds of bona fide."""

    inputs: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def logits(self, x: np.ndarray) -> np.ndarray:
        z = (np.atleast_2d(np.asarray(x, dtype=np.float64)) - self.mean) / self.scale
        return np.asarray(z @ self.coef + self.intercept, dtype=np.float64)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}inputs": np.array(",".join(self.inputs)), f"{prefix}mean": self.mean,
                f"{prefix}scale": self.scale, f"{prefix}coef": self.coef,
                f"{prefix}intercept": np.array(self.intercept)}

    @classmethod
    def from_arrays(cls, z: np.lib.npyio.NpzFile, prefix: str) -> Logistic:
        inputs = tuple(str(z[f"{prefix}inputs"]).split(","))
        m = cls(inputs, z[f"{prefix}mean"], z[f"{prefix}scale"], z[f"{prefix}coef"], float(z[f"{prefix}intercept"]))
        n = len(inputs)
        if not (m.mean.shape == m.scale.shape == m.coef.shape == (n,)) or not np.all(m.scale > 0):
            raise ValueError("inconsistent logistic model")
        return m


@dataclass(frozen=True)
class FusionModel:
    edges: Logistic
    combinations: tuple[Logistic, ...]

    def combine(self, scores: dict[str, float]) -> tuple[float, Logistic] | None:
        """Fused log-odds of bona fide from the single-frame cues in `scores` (the combination that fits)."""
        for comb in self.combinations:
            if set(comb.inputs) <= scores.keys() and not (self.inputs - set(comb.inputs)) & scores.keys():
                return float(comb.logits(np.array([scores[k] for k in comb.inputs]))[0]), comb
        return None

    @property
    def inputs(self) -> set[str]:
        return {k for c in self.combinations for k in c.inputs}

    def save(self, path: Path, **meta: str) -> None:
        arrays: dict[str, np.ndarray] = {k: np.array(v) for k, v in meta.items()}
        arrays |= {"format": np.array(FORMAT), "combinations": np.array(len(self.combinations))}
        arrays |= self.edges.arrays("edges_")
        for i, c in enumerate(self.combinations):
            arrays |= c.arrays(f"c{i}_")
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)  # type: ignore[arg-type]
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> FusionModel:
        try:
            with np.load(path, allow_pickle=False) as z:
                if int(z["format"]) != FORMAT:
                    raise ConfigError(f"PAD model {path.name}: unsupported format {int(z['format'])}")
                n = int(z["combinations"])
                if not 1 <= n <= 8:
                    raise ValueError("bad combination count")
                combinations = tuple(Logistic.from_arrays(z, f"c{i}_") for i in range(n))
                return cls(Logistic.from_arrays(z, "edges_"), combinations)
        except ConfigError:
            raise
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ConfigError(f"PAD model {path.name} cannot be read ({type(exc).__name__})") from exc


_model: FusionModel | None = None
_lock = threading.Lock()


def shipped_fusion() -> FusionModel:
    """The shipped fusion model, loaded once per process."""
    global _model
    with _lock:
        if _model is None:
            _model = FusionModel.load(MODEL_FILE)
        return _model
