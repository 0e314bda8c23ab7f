"""Verification metrics from distance scores (lower = more alike).

FAR (false accept rate) = impostor pairs at or below the threshold; FRR =
genuine pairs above it.  EER is where they cross; TAR@FAR is the share of
genuine pairs accepted at the strictest threshold whose FAR ≤ the target,
reported only when the impostor set has at least 1/target pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TAR_TARGETS = (1e-2, 1e-3, 1e-4)


@dataclass(frozen=True)
class VerificationMetrics:
    threshold: float
    accuracy: float
    far: float
    frr: float
    eer: float
    eer_threshold: float
    tar_at_far: dict[float, float | None]
    threshold_at_far: dict[float, float | None]
    genuine: int
    impostor: int

    def as_dict(self) -> dict[str, object]:
        return {
            "threshold": self.threshold,
            "accuracy": self.accuracy,
            "far": self.far,
            "frr": self.frr,
            "eer": self.eer,
            "eer_threshold": self.eer_threshold,
            "tar_at_far": {f"{k:g}": v for k, v in self.tar_at_far.items()},
            "threshold_at_far": {f"{k:g}": v for k, v in self.threshold_at_far.items()},
            "genuine_pairs": self.genuine,
            "impostor_pairs": self.impostor,
        }


def verification_metrics(genuine: np.ndarray, impostor: np.ndarray, threshold: float) -> VerificationMetrics:
    g = np.sort(np.asarray(genuine, dtype=np.float64))
    i = np.sort(np.asarray(impostor, dtype=np.float64))
    if g.size == 0 or i.size == 0:
        raise ValueError("need at least one genuine and one impostor score")
    far = float(np.mean(i <= threshold))
    frr = float(np.mean(g > threshold))
    correct = np.sum(g <= threshold) + np.sum(i > threshold)
    eer, eer_t = equal_error_rate(g, i)
    tar: dict[float, float | None] = {}
    t_at: dict[float, float | None] = {}
    for target in TAR_TARGETS:
        t = threshold_at_far(i, target)
        t_at[target] = t
        tar[target] = None if t is None else float(np.mean(g <= t))
    return VerificationMetrics(
        threshold=threshold,
        accuracy=float(correct / (g.size + i.size)),
        far=far,
        frr=frr,
        eer=eer,
        eer_threshold=eer_t,
        tar_at_far=tar,
        threshold_at_far=t_at,
        genuine=int(g.size),
        impostor=int(i.size),
    )


def threshold_at_far(impostor: np.ndarray, target: float) -> float | None:
    """Largest threshold whose FAR ≤ `target`; None when the set is too small to show it."""
    i = np.sort(np.asarray(impostor, dtype=np.float64))
    if i.size < int(round(1.0 / target)):
        return None
    allowed = int(np.floor(target * i.size))  # impostors we may accept
    # accept scores strictly below the (allowed)-th smallest impostor score
    return float(np.nextafter(i[allowed], -np.inf))


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """(EER, threshold) from the DET curve, interpolated where FAR and FRR cross."""
    thresholds, far, frr = det_curve(genuine, impostor)
    diff = far - frr
    k = int(np.argmax(diff >= 0))
    if k == 0:
        return float((far[0] + frr[0]) / 2), float(thresholds[0])
    d0, d1 = diff[k - 1], diff[k]
    w = 0.0 if d1 == d0 else -d0 / (d1 - d0)
    eer = (1 - w) * (far[k - 1] + frr[k - 1]) / 2 + w * (far[k] + frr[k]) / 2
    return float(eer), float((1 - w) * thresholds[k - 1] + w * thresholds[k])


def det_curve(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, FAR, FRR) at every distinct score, thresholds ascending."""
    g = np.sort(np.asarray(genuine, dtype=np.float64))
    i = np.sort(np.asarray(impostor, dtype=np.float64))
    t = np.unique(np.concatenate([g, i]))
    far = np.searchsorted(i, t, side="right") / i.size
    frr = 1.0 - np.searchsorted(g, t, side="right") / g.size
    return t, far, frr


def plot_det(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str, title: str) -> None:
    """DET curve(s) (FRR vs FAR on probit axes) to a PNG; `curves` maps label → (genuine, impostor)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    fig, ax = plt.subplots(figsize=(5.5, 5.0), dpi=110)
    ticks = [1e-4, 1e-3, 1e-2, 5e-2, 0.2, 0.5]
    for label, (g, i) in curves.items():
        _, far, frr = det_curve(g, i)
        lo = 0.5 / max(len(i), len(g))
        ax.plot(norm.ppf(np.clip(far, lo, 1 - lo)), norm.ppf(np.clip(frr, lo, 1 - lo)), label=label)
    ax.set_xticks(norm.ppf(ticks), [f"{t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{t:g}" for t in ticks])
    ax.set_xlabel("FAR (false accept rate)")
    ax.set_ylabel("FRR (false reject rate)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
