"""Train texture_v2, the edge model and the fusion so that they cannot learn a dataset's capture conditions.

    python -m limen.lab.pad_train_v2 RECAPTURE_SET [--nuaa DIR] [--models-dir DIR] [--cache F.npz] [--out DIR]

`RECAPTURE_SET` is written by `python -m limen.lab.recapture OUT`: live images
of lfw-subset, pairs-web and nuaa-dev, each with its **simulated** recaptures
(`<species>/<group>/<file>`).  NUAA's real prints are one more species
(`print_nuaa`).  Each live image and its recaptures share camera, light and
subject, so only recapture separates them; every image is also seen through
the same camera model (`recapture.camera_only`) so the camera cannot be the
signal either.

Selection uses **cross-condition folds only** (`FOLDS`): leave a dataset out
(train on LFW + pairs-web with their synthetic attacks, test on NUAA live vs
NUAA's *real* prints; and the reverse), leave one synthetic species out
(subject-disjoint halves), NUAA session 1 ↔ 2.  The candidate with the lowest
mean EER over the folds wins.  Operating points and the fusion are set on
leave-one-dataset-out scores (each image scored by a model that never saw its
dataset); the fusion itself is checked by fitting it on two datasets' scores
and testing on the third.  Output: `texture_v2.npz`, `fusion_v1.npz`,
`texture_v2.json` (every figure of the model card).  `fusion_v1.npz` is no
longer the shipped fusion: `python -m limen.lab.pad_audit --write-fusion` chooses
and writes `fusion_v2.npz` on shifted cross-condition folds (docs/pad.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from limen.capture import Capture, load_image
from limen.errors import LimenError
from limen.lab.pad import BONA_FIDE, PadScoreRow, compute_metrics
from limen.lab.pad_train import C_GRID, FAMILY_SETS, SEED, Member, fit_model
from limen.lab.recapture import SPECIES, camera_only
from limen.pad import edges, faces
from limen.pad.fusion_model import FusionModel, Logistic
from limen.pad.texture import MODEL_DIR, texture_features

REAL_PRINT = "print_nuaa"
FUSION_INPUTS = ("texture", "minifasnet")  # the edge cue measured too weak to enter (see the model card)
SHARED = Path(__file__).resolve().parents[4] / "shared" / "data"


@dataclass(frozen=True)
class Item:
    path: Path
    species: str
    group: str  # "lfw-<name>", "web", "nuaa-<subject>"

    @property
    def dataset(self) -> str:
        return self.group.split("-")[0]

    @property
    def session(self) -> str:
        parts = self.path.stem.split("_")
        return parts[3] if self.dataset == "nuaa" and len(parts) >= 5 else ""


def items(recapture_set: Path, nuaa: Path, print_stride: int = 8) -> list[Item]:
    """Every image of the recapture set, plus every `print_stride`-th NUAA real print per subject."""
    out = [Item(f, BONA_FIDE if sp.name == "live" else sp.name, g.name)
           for sp in sorted(p for p in recapture_set.iterdir() if p.is_dir())
           for g in sorted(p for p in sp.iterdir() if p.is_dir()) for f in sorted(g.glob("*.jpg"))]
    for subject in sorted(p for p in (nuaa / "print").iterdir() if p.is_dir()):
        out += [Item(f, REAL_PRINT, f"nuaa-{subject.name}") for f in sorted(subject.glob("*.jpg"))[::print_stride]]
    return out


@dataclass(frozen=True)
class Features:
    texture: np.ndarray  # all-family texture features, as captured
    texture_cam: np.ndarray  # the same face through the camera model
    edges: np.ndarray
    minifasnet: np.ndarray  # live log-odds, NaN when the model is not available
    usable: np.ndarray  # per item: a face was found


def extract(all_items: list[Item], models_dir: Path | None, cache: Path | None) -> Features:
    """Features of every item with a detectable face (cached as plain arrays under `cache`)."""
    paths = np.array([str(i.path) for i in all_items])
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if np.array_equal(z["paths"], paths):
                return Features(z["texture"], z["texture_cam"], z["edges"], z["minifasnet"], z["usable"])
    mfn: Callable[[np.ndarray, object], float] | None = None
    if models_dir is not None:
        from limen.pad.minifasnet import minifasnet_scores

        def mfn(rgb: np.ndarray, box: object) -> float:
            return float(minifasnet_scores([rgb], [box], models_dir)[0])  # type: ignore[list-item]

    tex, cam, edg, mf = [], [], [], []
    usable = np.zeros(len(all_items), dtype=bool)
    for n, item in enumerate(all_items):
        if n % 200 == 0:
            print(f"  features {n}/{len(all_items)}", file=sys.stderr)
        try:
            rgb = load_image(item.path)
        except LimenError:
            continue
        sample = faces.locate(Capture.single(rgb))
        if not sample.faces:
            continue
        view = sample.faces[0]
        b = view.box
        other = camera_only(rgb, seed=n)
        tex.append(texture_features(view.crop))
        cam.append(texture_features(np.ascontiguousarray(other[b.top : b.bottom, b.left : b.right])))
        edg.append(edges.frame_features(rgb, b))
        mf.append(mfn(rgb, b) if mfn is not None else np.nan)
        usable[n] = True
    f = Features(np.stack(tex), np.stack(cam), np.stack(edg), np.asarray(mf, dtype=np.float64), usable)
    if cache is not None:
        np.savez(cache, paths=paths, texture=f.texture, texture_cam=f.texture_cam, edges=f.edges,
                 minifasnet=f.minifasnet, usable=f.usable)
    return f


# ------------------------------------------------------------------ folds


@dataclass(frozen=True)
class Fold:
    name: str
    train: np.ndarray  # boolean masks over the usable items
    test: np.ndarray


def folds(kept: Sequence[Item]) -> list[Fold]:
    """The cross-condition folds (see the module docstring); never an in-distribution split."""
    ds = np.array([i.dataset for i in kept])
    sp = np.array([i.species for i in kept])
    sess = np.array([i.session for i in kept])
    groups = sorted({i.group for i in kept})
    half = np.isin([i.group for i in kept], groups[::2])
    live, real = sp == BONA_FIDE, sp == REAL_PRINT
    nuaa = ds == "nuaa"
    out = [
        Fold("train LFW+web (synthetic attacks) → test NUAA live vs NUAA real prints", ~nuaa & ~real,
             nuaa & (live | real)),
        Fold("train NUAA (real prints + synthetic) → test LFW+web live vs synthetic", nuaa, ~nuaa),
    ]
    for s in SPECIES:
        for a in (half, ~half):
            out.append(Fold(f"leave {s} out (subject-disjoint halves)", a & (sp != s), ~a & (live | (sp == s))))
    for first, second in (("01", "02"), ("02", "01")):
        out.append(Fold(f"NUAA session {first} → {second} (live vs real prints)", ~nuaa | (sess == first),
                        nuaa & (sess == second) & (live | real)))
    return [f for f in out if len(set(live[f.train])) == 2 and len(set(live[f.test])) == 2]


def _eer(kept: Sequence[Item], mask: np.ndarray, scores: np.ndarray) -> float:
    rows = [PadScoreRow(str(i.path), i.species, i.group, float(s))
            for i, s in zip(np.asarray(kept, dtype=object)[mask], scores, strict=True)]
    return compute_metrics(rows, threshold=0.0).eer


def fold_eers(kept: Sequence[Item], f: Features, y: np.ndarray, members: Sequence[Member],
              fold_list: list[Fold]) -> list[float]:
    out = []
    for fold in fold_list:
        model = fit_model(f.texture[fold.train], f.texture_cam[fold.train], y[fold.train], members)
        out.append(_eer(kept, fold.test, model.logits_all(f.texture[fold.test])))
    return out


def leave_dataset_out(kept: Sequence[Item], fit_score: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """Scores of every item from a model trained without its dataset (`fit_score(train, test)`)."""
    ds = np.array([i.dataset for i in kept])
    out = np.zeros(len(kept))
    for d in sorted(set(ds)):
        out[ds == d] = fit_score(ds != d, ds == d)
    return out


def fit_logistic(x: np.ndarray, y: np.ndarray, inputs: tuple[str, ...], c: float = 1.0) -> Logistic:
    from sklearn.linear_model import LogisticRegression

    x = np.atleast_2d(x)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000, random_state=SEED)
    clf.fit((x - mean) / scale, y)
    return Logistic(inputs, mean, scale, clf.coef_[0].astype(np.float64), float(clf.intercept_[0]))


def _fusion_oof(x: np.ndarray, y: np.ndarray, combo: tuple[str, ...]) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def fit_score(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        return fit_logistic(x[tr], y[tr], combo).logits(x[te])

    return fit_score


def _label(members: Sequence[Member]) -> str:
    return " | ".join(f"{'+'.join(f)} (C={c:g})" for f, c in members)


def _metrics(kept: Sequence[Item], mask: np.ndarray, scores: np.ndarray) -> dict[str, object]:
    rows = [PadScoreRow(str(i.path), i.species, i.group, float(s))
            for i, s in zip(np.asarray(kept, dtype=object)[mask], scores[mask], strict=True)]
    m = compute_metrics(rows, threshold=0.0)
    bona = np.sort(scores[mask & (np.array([i.species for i in kept]) == BONA_FIDE)])
    t5 = float(bona[int(np.floor(0.05 * bona.size))])
    at5 = compute_metrics(rows, threshold=t5)
    return {"eer": round(m.eer, 4), "threshold_bpcer_5pct": round(t5, 4), "bpcer_at_it": round(at5.bpcer, 4),
            "apcer_at_bpcer_5pct": {k: round(v, 4) for k, v in at5.apcer.items()},
            "bpcer_at_apcer": {k: round(v, 4) for k, v in m.bpcer_at_apcer.items()},
            "samples": {"bona_fide": m.bona_fide, **m.attacks}}


def operating_points(kept: Sequence[Item], oof: dict[str, np.ndarray], fused: np.ndarray) -> dict[str, object]:
    """Thresholds for thresholds.py: fused at BPCER 2 % / 5 % (verify) and APCER 0 (enrol); cue vetoes at BPCER 0."""
    live = np.array([i.species == BONA_FIDE for i in kept])
    sp = np.array([i.species for i in kept])
    bona = np.sort(fused[live])

    def at(t: float) -> dict[str, float]:
        return {"threshold": round(float(t), 4), "bpcer": round(float(np.mean(fused[live] < t)), 4),
                **{f"apcer_{k}": round(float(np.mean(fused[sp == k] >= t)), 4) for k in sorted(set(sp[~live]))}}

    return {
        "fused_bpcer_2pct": at(bona[int(np.floor(0.02 * bona.size))]),
        "fused_bpcer_5pct": at(bona[int(np.floor(0.05 * bona.size))]),
        "fused_apcer_0": at(float(np.nextafter(fused[~live].max(), np.inf))),
        "veto_texture_bpcer_0": round(float(oof["texture"][live].min()) - 0.5, 4),
        "veto_minifasnet_bpcer_0": round(float(oof["minifasnet"][live].min()) - 0.5, 4),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train texture_v2 + fusion on cross-condition folds.")
    ap.add_argument("recapture_set", type=Path)
    ap.add_argument("--nuaa", type=Path, default=SHARED / "nuaa-dev")
    ap.add_argument("--models-dir", type=Path, default=None, help="imported MiniFASNet models (optional)")
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=MODEL_DIR)
    args = ap.parse_args(argv)

    if args.models_dir is None:
        ap.error("--models-dir (imported MiniFASNet) is required: the fusion is fitted on its scores")
    all_items = items(args.recapture_set, args.nuaa)
    f = extract(all_items, args.models_dir, args.cache)
    kept = [i for i, ok in zip(all_items, f.usable, strict=True) if ok]
    y = np.array([int(i.species == BONA_FIDE) for i in kept])
    fold_list = folds(kept)
    print(f"{len(kept)} usable of {len(all_items)}; {len(fold_list)} cross-condition folds", file=sys.stderr)

    selection: dict[str, list[float]] = {}

    def score(members: Sequence[Member]) -> float:
        eers = fold_eers(kept, f, y, members, fold_list)
        selection[_label(members)] = [round(e, 4) for e in eers]
        print(f"{_label(members):50s} mean EER {np.mean(eers):.4f} worst {max(eers):.4f}", file=sys.stderr)
        return float(np.mean(eers))

    best_c: dict[tuple[str, ...], float] = {}
    for fams in FAMILY_SETS:
        by_c = {c: score([(fams, c)]) for c in C_GRID}
        best_c[fams] = min(C_GRID, key=lambda c: by_c[c])
    singles: list[tuple[Member, ...]] = [((fams, best_c[fams]),) for fams in FAMILY_SETS]
    candidates = singles + [(singles[0][0], s[0]) for s in singles[1:]] + [tuple(s[0] for s in singles)]
    for c in candidates[len(singles):]:
        score(c)
    chosen = min(candidates, key=lambda m: float(np.mean(selection[_label(m)])))

    def texture_oof(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        return fit_model(f.texture[tr], f.texture_cam[tr], y[tr], chosen).logits_all(f.texture[te])

    def edge_oof(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        return fit_logistic(f.edges[tr], y[tr], edges.FEATURES).logits(f.edges[te])

    oof = {"texture": leave_dataset_out(kept, texture_oof), "edges": leave_dataset_out(kept, edge_oof),
           "minifasnet": f.minifasnet}
    combos: list[tuple[str, ...]] = [FUSION_INPUTS, ("texture", "edges", "minifasnet")]
    every = np.ones(len(kept), dtype=bool)
    report: dict[str, object] = {}
    for name, s in oof.items():
        report[f"cue {name} (leave-one-dataset-out)"] = _metrics(kept, every, s)
    fused: dict[tuple[str, ...], np.ndarray] = {}
    for combo in combos:
        x = np.column_stack([oof[k] for k in combo])
        fused[combo] = leave_dataset_out(kept, _fusion_oof(x, y, combo))
        report[f"fused {'+'.join(combo)} (fusion fitted without the test dataset)"] = _metrics(kept, every,
                                                                                               fused[combo])
    ds = np.array([i.dataset for i in kept])
    sp = np.array([i.species for i in kept])
    for combo, s in fused.items():
        for d in sorted(set(ds)):
            report[f"fused {'+'.join(combo)} on {d} only"] = _metrics(kept, ds == d, s)
        nuaa_real = (ds == "nuaa") & ((sp == BONA_FIDE) | (sp == REAL_PRINT))
        report[f"fused {'+'.join(combo)}: NUAA live vs NUAA real prints"] = _metrics(kept, nuaa_real, s)

    report["operating points (leave-one-dataset-out scores, all datasets pooled)"] = operating_points(
        kept, oof, fused[FUSION_INPUTS])
    texture_model = fit_model(f.texture, f.texture_cam, y, chosen)
    edge_model = fit_logistic(f.edges, y, edges.FEATURES)
    fusion = FusionModel(edge_model, (fit_logistic(np.column_stack([oof[k] for k in FUSION_INPUTS]), y,
                                                   FUSION_INPUTS),))
    date = dt.date.today().isoformat()
    args.out.mkdir(parents=True, exist_ok=True)
    texture_model.save(args.out / "texture_v2.npz", trained=date, dataset="recapture set (see card)",
                       c=",".join(f"{c:g}" for _, c in chosen))
    fusion.save(args.out / "fusion_v1.npz", trained=date)
    card = {
        "model": "texture_v2", "trained": date, "members": _label(chosen),
        "samples": {k: int(np.sum(sp == k)) for k in sorted(set(sp))},
        "no_face": int((~f.usable).sum()),
        "selection": {"score": "mean EER over the cross-condition folds", "folds": [fl.name for fl in fold_list],
                      "candidates": selection},
        "figures": report,
        "fusion": {"+".join(c.inputs): {"coef": c.coef.round(4).tolist(), "intercept": round(c.intercept, 4),
                                        "mean": c.mean.round(4).tolist(), "scale": c.scale.round(4).tolist()}
                   for c in fusion.combinations},
    }
    (args.out / "texture_v2.json").write_text(json.dumps(card, indent=2, default=str) + "\n")
    print(json.dumps({"chosen": _label(chosen), "figures": report}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
