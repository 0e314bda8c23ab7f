"""Train the texture cue: `python -m limen.pad.train [DATASET] [--out DIR] [--cache FILE]`.

Reproducible: features are deterministic, folds are fixed, the classifier is a
class-balanced logistic regression.  Steps:

1. find the face in every image with the same code PAD runs (`faces.locate`);
2. extract every feature family of each face crop (`texture.FAMILIES`);
3. model selection for *generalisation*: for each family set and C, train on one
   capture session and half the subjects, test on the other session and the
   other subjects (4 folds, session- and subject-disjoint); keep the lowest
   mean EER.  On NUAA this drops the LBP histograms: they reach ~0.5 % EER
   within sessions but 10–45 % across sessions;
4. subject-disjoint cross-validation (leave one subject out) of the chosen
   configuration gives the reported figures and the operating points;
5. refit on everything; write `texture_v1.npz` (plain arrays) and the model card
   data `texture_v1.json` (figures, operating points to copy into thresholds.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

from limen.capture import Capture, load_image
from limen.errors import LimenError
from limen.lab.pad import BONA_FIDE, PadMetrics, PadSampleRef, PadScoreRow, collect_samples, compute_metrics
from limen.pad import faces
from limen.pad.texture import FAMILIES, MODEL_DIR, LinearModel, texture_features

DEFAULT_DATASET = Path(__file__).resolve().parents[4] / "shared" / "data" / "nuaa-dev"
FAMILY_SETS = (("lbp", "distortion", "frequency"), ("distortion", "frequency"), ("distortion",))
C_GRID = (0.01, 0.1, 1.0)
SEED = 0


def extract(samples: list[PadSampleRef], cache: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All-family feature matrix of the samples PAD could use, and a mask of which samples those are."""
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if list(z["paths"]) == [str(s.path) for s in samples]:
                return z["features"], z["usable"]
    rows: list[np.ndarray] = []
    usable = np.zeros(len(samples), dtype=bool)
    for i, s in enumerate(samples):
        if i % 100 == 0:
            print(f"  features {i}/{len(samples)}", file=sys.stderr)
        try:
            sample = faces.locate(Capture.single(load_image(s.path)))
        except LimenError:
            continue
        if sample.faces:
            rows.append(texture_features(sample.faces[0].crop))
            usable[i] = True
    features = np.stack(rows)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, paths=np.array([str(s.path) for s in samples]), features=features, usable=usable)
    return features, usable


def columns(families: tuple[str, ...]) -> np.ndarray:
    """Column indices of `families` in the all-family feature matrix."""
    probe = np.full((64, 64, 3), 128, dtype=np.uint8)
    probe[::2, ::3] = 30
    widths = {name: FAMILIES[name](probe).size for name in FAMILIES}
    starts = np.cumsum([0] + [widths[n] for n in FAMILIES])
    offset = dict(zip(FAMILIES, starts[:-1], strict=True))
    return np.concatenate([np.arange(offset[f], offset[f] + widths[f]) for f in families])


def fit(x: np.ndarray, y: np.ndarray, c: float, families: tuple[str, ...]) -> LinearModel:
    """Standardise + L2 logistic regression (label 1 = bona fide), class-balanced."""
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000, random_state=SEED)
    clf.fit((x - mean) / scale, y)
    return LinearModel(mean, scale, clf.coef_[0].astype(np.float64), float(clf.intercept_[0]), families)


def _metrics(kept: np.ndarray, scores: np.ndarray) -> PadMetrics:
    rows = [PadScoreRow(str(s.path), s.species, s.subject, float(v)) for s, v in zip(kept, scores, strict=True)]
    return compute_metrics(rows, threshold=0.0)


def cross_session_eer(x: np.ndarray, y: np.ndarray, kept: np.ndarray, c: float, fams: tuple[str, ...]) -> float:
    """Mean EER over 4 session- and subject-disjoint folds (train one session + half the subjects)."""
    sessions = np.array([session_of(s) for s in kept])
    subjects = np.array([s.subject for s in kept])
    names = sorted(set(subjects))
    half = np.isin(subjects, names[: len(names) // 2])
    eers = []
    for a, b in (("01", "02"), ("02", "01")):
        for train_half in (half, ~half):
            tr, te = (sessions == a) & train_half, (sessions == b) & ~train_half
            if len(set(y[tr])) < 2 or len(set(y[te])) < 2:
                continue
            eers.append(_metrics(kept[te], fit(x[tr], y[tr], c, fams).logits(x[te])).eer)
    return float(np.mean(eers)) if eers else 1.0


def leave_one_subject_out(x: np.ndarray, y: np.ndarray, subjects: np.ndarray, c: float,
                          fams: tuple[str, ...]) -> np.ndarray:
    scores = np.zeros(len(y))
    for s in np.unique(subjects):
        held = subjects == s
        scores[held] = fit(x[~held], y[~held], c, fams).logits(x[held])
    return scores


def shipped_c() -> float:
    """The regularisation C the shipped model was trained with (from its npz)."""
    from limen.pad.texture import MODEL_FILE

    with np.load(MODEL_FILE, allow_pickle=False) as z:
        return float(str(z["c"])) if "c" in z.files else C_GRID[1]


def session_of(sample: PadSampleRef) -> str:
    """NUAA file names are SSSS_GG_PP_ss_n.jpg; `ss` is the capture session."""
    parts = sample.path.stem.split("_")
    return parts[3] if len(parts) >= 5 else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train Limen's PAD texture model (see module docstring).")
    ap.add_argument("dataset", nargs="?", type=Path, default=DEFAULT_DATASET)
    ap.add_argument("--out", type=Path, default=MODEL_DIR)
    ap.add_argument("--cache", type=Path, default=None, help="feature cache (.npz) to reuse between runs")
    args = ap.parse_args(argv)

    samples = collect_samples(args.dataset)
    x_all, usable = extract(samples, args.cache)
    kept = np.array([s for s, ok in zip(samples, usable, strict=True) if ok], dtype=object)
    y = np.array([int(s.species == BONA_FIDE) for s in kept])
    subjects = np.array([s.subject for s in kept])

    selection: dict[str, float] = {}
    for fams in FAMILY_SETS:
        for c in C_GRID:
            eer = cross_session_eer(x_all[:, columns(fams)], y, kept, c, fams)
            selection[f"{'+'.join(fams)} C={c:g}"] = round(eer, 4)
            print(f"{'+'.join(fams):28s} C={c:<5g} cross-session EER {eer:.4f}", file=sys.stderr)
    best = min(((f, c) for f in FAMILY_SETS for c in C_GRID),
               key=lambda fc: selection[f"{'+'.join(fc[0])} C={fc[1]:g}"])
    fams, c = best
    x = x_all[:, columns(fams)]
    oof = leave_one_subject_out(x, y, subjects, c, fams)
    metrics = _metrics(kept, oof)
    bona = np.sort(oof[y == 1])

    model = fit(x, y, c, fams)
    date = dt.date.today().isoformat()
    model.save(args.out / "texture_v1.npz", trained=date, dataset=args.dataset.name, c=str(c))
    card = {
        "model": "texture_v1", "trained": date, "dataset": args.dataset.name,
        "families": list(fams), "C": c, "features": int(x.shape[1]),
        "samples": {"bona_fide": int(y.sum()), "attack": int((1 - y).sum()),
                    "no_usable_face": int((~usable).sum()), "subjects": int(np.unique(subjects).size)},
        "selection_cross_session_eer": selection,
        "protocol": "leave-one-subject-out cross-validation, out-of-fold scores (one frame per sample)",
        "loso": metrics.as_dict(),
        "operating_points": {
            "PAD_TEXTURE_BPCER_1PCT": metrics.threshold_at_bpcer["0.01"],
            "PAD_TEXTURE_BPCER_5PCT": float(bona[int(np.floor(0.05 * bona.size))]),
            "PAD_TEXTURE_APCER_1PCT": metrics.threshold_at_apcer["0.01"],
            "PAD_TEXTURE_APCER_0": float(np.nextafter(oof[y == 0].max(), np.inf)),
        },
    }
    (args.out / "texture_v1.json").write_text(json.dumps(card, indent=2, default=str) + "\n")
    print(json.dumps({"chosen": "+".join(fams), "C": c, **card["operating_points"]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
