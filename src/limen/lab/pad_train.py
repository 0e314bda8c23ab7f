"""The texture_v1 recipe (NUAA only): `python -m limen.lab.pad_train [DATASET] [--out DIR] [--cache FILE]`.

Superseded for the shipped model by `train_v2` (live images vs their simulated
recaptures, selected by cross-condition folds); its pieces (fitting, camera
augmentation, leave-one-subject-out) remain for `limen lab pad --folds subject`.

Reproducible: features are deterministic, augmentation uses a fixed seed,
folds are fixed, the classifiers are class-balanced logistic regressions.

1. find the face in every image with the code PAD runs (`faces.locate`);
2. extract every feature family (`texture.FAMILIES`) of the face crop, and of
   the same crop from a *camera-augmented* copy of the frame (exposure, gamma,
   white balance, blur, JPEG quality drawn at random): training sees each
   presentation under two capture conditions;
3. selection for *generalisation*, scored on 4 session- and subject-disjoint
   folds (train on one capture session and half the subjects, test on the other
   session and the other subjects) as the EER on the clean test frames plus the
   EER on augmented test frames (a proxy for another camera):
   a. for each family set, the regularisation C;
   b. among the single models and ensembles (mean log-odds) of an LBP model with
      the others, the lowest score wins;
4. leave-one-subject-out cross-validation of the winner gives the reported
   figures and the operating points to copy into `thresholds.py`;
5. refit on every subject; write `texture_v1.npz` and `texture_v1.json`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from limen.capture import Capture, load_image
from limen.errors import LimenError
from limen.lab.pad import BONA_FIDE, PadMetrics, PadSampleRef, PadScoreRow, collect_samples, compute_metrics
from limen.pad import faces
from limen.pad.texture import MODEL_DIR, LinearModel, TextureModel, family_columns, texture_features

DEFAULT_DATASET = Path(__file__).resolve().parents[4] / "shared" / "data" / "nuaa-dev"
FAMILY_SETS: tuple[tuple[str, ...], ...] = (("lbp", "distortion", "frequency"), ("distortion", "frequency"),
                                            ("distortion",))
C_GRID = (0.01, 0.1, 1.0)
SEED = 0
Member = tuple[tuple[str, ...], float]  # (families, C)


def columns(families: tuple[str, ...]) -> np.ndarray:
    return family_columns(families)


def augment(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The frame as another camera might have taken it: exposure, gamma, white balance, blur, JPEG."""
    import cv2
    from PIL import Image

    x = rgb.astype(np.float32) * rng.uniform(0.6, 1.4) + rng.uniform(-25, 25)
    x = 255.0 * (np.clip(x, 0, 255) / 255.0) ** rng.uniform(0.7, 1.4)
    x = np.clip(x * rng.uniform(0.85, 1.15, size=3), 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.3, 1.2))
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, format="JPEG", quality=int(rng.integers(50, 95)))
    return np.asarray(Image.open(buf).convert("RGB"))


def extract(samples: list[PadSampleRef], cache: Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All-family features of the usable samples (clean, augmented) and the mask of usable samples."""
    paths = [str(s.path) for s in samples]
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if "augmented" in z.files and list(z["paths"]) == paths:
                return z["features"], z["augmented"], z["usable"]
    rng = np.random.default_rng(SEED)
    clean: list[np.ndarray] = []
    augmented: list[np.ndarray] = []
    usable = np.zeros(len(samples), dtype=bool)
    for i, s in enumerate(samples):
        if i % 100 == 0:
            print(f"  features {i}/{len(samples)}", file=sys.stderr)
        try:
            rgb = load_image(s.path)
        except LimenError:
            continue
        sample = faces.locate(Capture.single(rgb))
        if not sample.faces:
            continue
        b = sample.faces[0].box
        clean.append(texture_features(sample.faces[0].crop))
        other = augment(rgb, rng)
        augmented.append(texture_features(np.ascontiguousarray(other[b.top : b.bottom, b.left : b.right])))
        usable[i] = True
    x, xa = np.stack(clean), np.stack(augmented)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, paths=np.array(paths), features=x, augmented=xa, usable=usable)
    return x, xa, usable


def fit(x: np.ndarray, y: np.ndarray, c: float, families: tuple[str, ...]) -> LinearModel:
    """Standardise + L2 logistic regression (label 1 = bona fide), class-balanced."""
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000, random_state=SEED)
    clf.fit((x - mean) / scale, y)
    return LinearModel(mean, scale, clf.coef_[0].astype(np.float64), float(clf.intercept_[0]), families)


def fit_model(x: np.ndarray, xa: np.ndarray, y: np.ndarray, members: Sequence[Member]) -> TextureModel:
    """Each member trained on the clean and the augmented rows (all-family layout)."""
    both, yy = np.vstack([x, xa]), np.r_[y, y]
    return TextureModel(tuple(fit(both[:, columns(f)], yy, c, f) for f, c in members))


def _metrics(kept: np.ndarray, scores: np.ndarray) -> PadMetrics:
    rows = [PadScoreRow(str(s.path), s.species, s.subject, float(v)) for s, v in zip(kept, scores, strict=True)]
    return compute_metrics(rows, threshold=0.0)


def generalisation_score(x: np.ndarray, xa: np.ndarray, y: np.ndarray, kept: np.ndarray,
                         members: Sequence[Member]) -> tuple[float, float]:
    """Mean EER (clean test, augmented test) over 4 session- and subject-disjoint folds."""
    sessions = np.array([session_of(s) for s in kept])
    subjects = np.array([s.subject for s in kept])
    names = sorted(set(subjects))
    half = np.isin(subjects, names[: len(names) // 2])
    clean, other = [], []
    for a, b in (("01", "02"), ("02", "01")):
        for train_half in (half, ~half):
            tr, te = (sessions == a) & train_half, (sessions == b) & ~train_half
            if len(set(y[tr])) < 2 or len(set(y[te])) < 2:
                continue
            model = fit_model(x[tr], xa[tr], y[tr], members)
            clean.append(_metrics(kept[te], model.logits_all(x[te])).eer)
            other.append(_metrics(kept[te], model.logits_all(xa[te])).eer)
    return (float(np.mean(clean)), float(np.mean(other))) if clean else (1.0, 1.0)


def leave_one_subject_out(x: np.ndarray, xa: np.ndarray, y: np.ndarray, subjects: np.ndarray,
                          members: Sequence[Member]) -> np.ndarray:
    """Out-of-fold log-odds, leaving one subject out at a time."""
    scores = np.zeros(len(y))
    for s in np.unique(subjects):
        held = subjects == s
        scores[held] = fit_model(x[~held], xa[~held], y[~held], members).logits_all(x[held])
    return scores


def session_of(sample: PadSampleRef) -> str:
    """NUAA file names are SSSS_GG_PP_ss_n.jpg; `ss` is the capture session."""
    parts = sample.path.stem.split("_")
    return parts[3] if len(parts) >= 5 else ""


def shipped_members() -> tuple[Member, ...]:
    """(families, C) of each member of the shipped model (from its npz)."""
    from limen.pad.texture import MODEL_FILE, shipped_model

    model = shipped_model()
    with np.load(MODEL_FILE, allow_pickle=False) as z:
        cs = [float(c) for c in str(z["c"]).split(",")] if "c" in z.files else [C_GRID[1]] * len(model.members)
    return tuple((m.families, c) for m, c in zip(model.members, cs, strict=True))


def _label(members: Sequence[Member]) -> str:
    return " | ".join(f"{'+'.join(f)} (C={c:g})" for f, c in members)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train Limen's PAD texture model (see module docstring).")
    ap.add_argument("dataset", nargs="?", type=Path, default=DEFAULT_DATASET)
    ap.add_argument("--out", type=Path, default=MODEL_DIR)
    ap.add_argument("--cache", type=Path, default=None, help="feature cache (.npz) to reuse between runs")
    args = ap.parse_args(argv)

    samples = collect_samples(args.dataset)
    x, xa, usable = extract(samples, args.cache)
    kept = np.array([s for s, ok in zip(samples, usable, strict=True) if ok], dtype=object)
    y = np.array([int(s.species == BONA_FIDE) for s in kept])
    subjects = np.array([s.subject for s in kept])

    selection: dict[str, list[float]] = {}
    best_c: dict[tuple[str, ...], float] = {}
    for fams in FAMILY_SETS:
        scored = {c: generalisation_score(x, xa, y, kept, [(fams, c)]) for c in C_GRID}
        for c, s in scored.items():
            selection[_label([(fams, c)])] = [round(v, 4) for v in s]
            print(f"{_label([(fams, c)]):45s} cross-session EER {s[0]:.4f}, other camera {s[1]:.4f}", file=sys.stderr)
        best_c[fams] = min(C_GRID, key=lambda c: sum(scored[c]))
    singles: list[tuple[Member, ...]] = [((f, best_c[f]),) for f in FAMILY_SETS]
    ensembles: list[tuple[Member, ...]] = [(singles[0][0], s[0]) for s in singles[1:]]
    ensembles.append(tuple(s[0] for s in singles))
    for members in ensembles:
        s = generalisation_score(x, xa, y, kept, members)
        selection[_label(members)] = [round(v, 4) for v in s]
        print(f"{_label(members):45s} cross-session EER {s[0]:.4f}, other camera {s[1]:.4f}", file=sys.stderr)
    candidates = singles + ensembles
    chosen = min(candidates, key=lambda m: sum(selection[_label(m)]))

    oof = leave_one_subject_out(x, xa, y, subjects, chosen)
    metrics = _metrics(kept, oof)
    bona = np.sort(oof[y == 1])
    model = fit_model(x, xa, y, chosen)
    date = dt.date.today().isoformat()
    model.save(args.out / "texture_v1.npz", trained=date, dataset=args.dataset.name,
               c=",".join(f"{c:g}" for _, c in chosen))
    card = {
        "model": "texture_v1", "trained": date, "dataset": args.dataset.name, "members": _label(chosen),
        "samples": {"bona_fide": int(y.sum()), "attack": int((1 - y).sum()),
                    "no_usable_face": int((~usable).sum()), "subjects": int(np.unique(subjects).size)},
        "selection": {"score": "[cross-session EER, cross-session EER on camera-augmented test frames]",
                      "candidates": selection},
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
    print(json.dumps({"chosen": _label(chosen), **card["operating_points"]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
