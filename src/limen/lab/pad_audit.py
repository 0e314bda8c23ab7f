"""Robustness audit of the fused single-frame PAD score against shifts a held-out set would bring.

    python -m limen.lab.pad_audit RECAPTURE_SET --models-dir DIR [--cache F.npz] [--out F.json]

Every figure here is **cross-condition**: no score comes from a model that saw
the test condition.  On the recapture set of `limen.lab.pad_train_v2` (live images of
lfw-subset, pairs-web and nuaa-dev with their **simulated** recaptures, plus
NUAA's real prints), each image is scored

- clean, and under each `SHIFTS` entry (JPEG quality 30, half resolution,
  warm white balance + darker gamma, cool + under-exposed, defocus), applied
  to live and attack images alike; the face box found on the clean image is
  reused (mapped to the shifted one), so the audit measures the cues, not the
  detector;
- by a texture model trained without the test image's dataset (leave one
  dataset out) or without its species (leave one species out, subject-disjoint
  halves);
- by MiniFASNet (its authors' weights: it never saw any of this data).

Candidates compared on every fold (`CANDIDATES`): MiniFASNet alone, texture
alone, the previous fusion (`fusion_v1`), the fusion refitted on the training
datasets only, and monotone combinations that weight texture less than
MiniFASNet.  Each is judged twice: EER and worst-species APCER at BPCER 5 %
with the threshold read on the fold (what the cue could do), and BPCER /
APCER at the **fixed** threshold the door ships (what a held-out set meets: it
cannot re-tune).  The bona-fide side is reported per dataset, because a
held-out population refused at the door fails PAD as surely as an attack let
through.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from limen.bio.face.detect import Box
from limen.capture import Capture, load_image
from limen.errors import LimenError
from limen.lab.pad import BONA_FIDE, PadScoreRow, compute_metrics
from limen.lab.pad_train import Member, fit_model, shipped_members
from limen.lab.pad_train_v2 import REAL_PRINT, SHARED, Item, fit_logistic, items, operating_points
from limen.lab.recapture import SPECIES, camera_only
from limen.pad import faces
from limen.pad.fusion_model import PREVIOUS_MODEL_FILE, FusionModel, Logistic
from limen.pad.texture import texture_features


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if out is None:
        raise ValueError("JPEG decoding failed")
    return np.ascontiguousarray(out[:, :, ::-1])


def _half_resolution(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR))


def _colour(rgb: np.ndarray, gains: tuple[float, float, float], gamma: float, exposure: float) -> np.ndarray:
    x = (rgb.astype(np.float32) / 255.0) * np.array(gains, dtype=np.float32) * exposure
    return np.ascontiguousarray((np.clip(x, 0, 1) ** gamma * 255.0 + 0.5).astype(np.uint8))


def _defocus(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(cv2.GaussianBlur(rgb, (0, 0), 1.6))


# Each shift is one a different camera or room brings; none is in the training augmentation at this strength.
SHIFTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "jpeg_q30": lambda rgb: _jpeg(rgb, 30),
    "half_resolution": _half_resolution,
    "warm_dark_gamma": lambda rgb: _colour(rgb, (1.15, 1.0, 0.8), 1.3, 1.0),
    "cool_underexposed": lambda rgb: _colour(rgb, (0.85, 1.0, 1.15), 1.0, 0.7),
    "defocus": _defocus,
}


@dataclass(frozen=True)
class AuditFeatures:
    texture: np.ndarray  # (n, d) clean
    texture_cam: np.ndarray  # (n, d) the clean image through the camera model (training augmentation)
    minifasnet: np.ndarray  # (n,)
    shifted_texture: dict[str, np.ndarray]
    shifted_minifasnet: dict[str, np.ndarray]
    usable: np.ndarray  # over all items


def extract(all_items: Sequence[Item], models_dir: Path, cache: Path | None) -> AuditFeatures:
    """Clean and shifted features of every item with a usable face (cached as plain arrays)."""
    from limen.pad.minifasnet import minifasnet_scores

    paths = np.array([str(i.path) for i in all_items])
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if np.array_equal(z["paths"], paths):
                return AuditFeatures(z["texture"], z["texture_cam"], z["minifasnet"],
                                     {s: z[f"t_{s}"] for s in SHIFTS}, {s: z[f"m_{s}"] for s in SHIFTS}, z["usable"])
    tex, cam, mf = [], [], []
    st: dict[str, list[np.ndarray]] = {s: [] for s in SHIFTS}
    sm: dict[str, list[float]] = {s: [] for s in SHIFTS}
    usable = np.zeros(len(all_items), dtype=bool)
    for n, item in enumerate(all_items):
        if n % 100 == 0:
            print(f"  audit features {n}/{len(all_items)} load {os.getloadavg()[0]:.1f}", file=sys.stderr)
        try:
            rgb = load_image(item.path)
        except LimenError:
            continue
        sample = faces.locate(Capture.single(rgb))
        if not sample.faces:
            continue
        b: Box = sample.faces[0].box
        other = camera_only(rgb, seed=n)
        tex.append(texture_features(sample.faces[0].crop))
        cam.append(texture_features(np.ascontiguousarray(other[b.top : b.bottom, b.left : b.right])))
        mf.append(float(minifasnet_scores([rgb], [b], models_dir)[0]))
        for name, shift in SHIFTS.items():
            img = shift(rgb)
            st[name].append(texture_features(np.ascontiguousarray(img[b.top : b.bottom, b.left : b.right])))
            sm[name].append(float(minifasnet_scores([img], [b], models_dir)[0]))
        usable[n] = True
    f = AuditFeatures(np.stack(tex), np.stack(cam), np.asarray(mf), {s: np.stack(v) for s, v in st.items()},
                      {s: np.asarray(v) for s, v in sm.items()}, usable)
    if cache is not None:
        arrays = {"paths": paths, "texture": f.texture, "texture_cam": f.texture_cam, "minifasnet": f.minifasnet,
                  "usable": f.usable} | {f"t_{s}": v for s, v in f.shifted_texture.items()} | {
                  f"m_{s}": v for s, v in f.shifted_minifasnet.items()}
        np.savez(cache, **arrays)  # type: ignore[arg-type]
    return f


# ------------------------------------------------------------------ candidates

Scores = dict[str, np.ndarray]  # "texture", "minifasnet" → per-item log-odds


def _shipped(s: Scores, _train: Scores, _y: np.ndarray) -> np.ndarray:
    comb = FusionModel.load(PREVIOUS_MODEL_FILE).combinations[0]
    return comb.logits(np.column_stack([s[k] for k in comb.inputs]))


def _refit(s: Scores, train: Scores, y: np.ndarray) -> np.ndarray:
    comb = fit_logistic(np.column_stack([train["texture"], train["minifasnet"]]), y, ("texture", "minifasnet"))
    return comb.logits(np.column_stack([s["texture"], s["minifasnet"]]))


def _weighted(w: float) -> Callable[[Scores, Scores, np.ndarray], np.ndarray]:
    def combine(s: Scores, _train: Scores, _y: np.ndarray) -> np.ndarray:
        return np.asarray(s["minifasnet"] + w * s["texture"])

    return combine


CANDIDATES: dict[str, Callable[[Scores, Scores, np.ndarray], np.ndarray]] = {
    "minifasnet alone": lambda s, _t, _y: s["minifasnet"],
    "texture alone": lambda s, _t, _y: s["texture"],
    "fusion_v1": _shipped,
    "fusion refitted on the training side": _refit,
    "minifasnet + 1.0 texture": _weighted(1.0),
    "minifasnet + 0.75 texture": _weighted(0.75),
    "minifasnet + 0.5 texture": _weighted(0.5),
    "minifasnet + 0.25 texture": _weighted(0.25),
}
FUSION_V1_VERIFY = -0.756  # fusion_v1's verification threshold when it shipped (its BPCER 2 % point)
WEIGHTS = (1.0, 0.75, 0.5, 0.25)  # texture weights of the monotone candidates, selectable as the shipped fusion


@dataclass(frozen=True)
class Fold:
    name: str
    train: np.ndarray
    test: np.ndarray


def folds(kept: Sequence[Item]) -> list[Fold]:
    """Leave one dataset out (NUAA ↔ LFW + web) and leave one species out (subject-disjoint halves)."""
    ds = np.array([i.dataset for i in kept])
    sp = np.array([i.species for i in kept])
    live, nuaa = sp == BONA_FIDE, ds == "nuaa"
    groups = sorted({i.group for i in kept})
    half = np.isin([i.group for i in kept], groups[::2])
    out = [Fold("LFW+web → NUAA (live vs real + simulated)", ~nuaa & (sp != REAL_PRINT), nuaa),
           Fold("NUAA → LFW+web (live vs simulated)", nuaa, ~nuaa)]
    for s in SPECIES:
        test = np.zeros(len(kept), dtype=bool)
        train = np.zeros(len(kept), dtype=bool)
        for a in (half, ~half):  # both halves: each item tested once by a model blind to its species and subjects
            out_fold = a & (sp != s), ~a & (live | (sp == s))
            train |= out_fold[0]
            test |= out_fold[1]
        out.append(Fold(f"leave {s} out", train, test))
    return out


def _metrics(kept: Sequence[Item], mask: np.ndarray, scores: np.ndarray, fixed: float) -> dict[str, object]:
    arr = np.asarray(kept, dtype=object)[mask]
    rows = [PadScoreRow(str(i.path), i.species, i.group, float(v)) for i, v in zip(arr, scores[mask], strict=True)]
    m = compute_metrics(rows, threshold=fixed)
    bona = np.sort(np.array([r.score for r in rows if r.species == BONA_FIDE]))
    t5 = float(bona[int(np.floor(0.05 * bona.size))])
    at5 = compute_metrics(rows, threshold=t5)
    per_ds: dict[str, float] = {}
    for d in sorted({i.dataset for i in arr}):
        v = np.array([r.score for r, i in zip(rows, arr, strict=True) if i.dataset == d and r.species == BONA_FIDE])
        if v.size:
            per_ds[d] = round(float(np.mean(v < fixed)), 4)
    return {"eer": round(m.eer, 4), "worst_apcer_at_bpcer_5pct": round(max(at5.apcer.values()), 4),
            "fixed_threshold": round(fixed, 4), "bpcer_fixed": round(m.bpcer, 4), "bpcer_fixed_per_dataset": per_ds,
            "apcer_fixed": {k: round(v, 4) for k, v in m.apcer.items()}}


def _bpcer_threshold(live_scores: np.ndarray, bpcer: float = 0.02) -> float:
    v = np.sort(live_scores)
    return float(v[int(np.floor(bpcer * v.size))])


def run(kept: Sequence[Item], f: AuditFeatures, members: Sequence[Member]) -> dict[str, dict[str, dict[str, object]]]:
    """fold → condition → candidate → metrics.

    Each candidate's fixed threshold is read on the fold's *training* side (BPCER 2 % of its live scores,
    texture scored out of dataset there too), so the test side never sets a threshold; the shipped fusion is
    also judged at the threshold it shipped with (`FUSION_V1_VERIFY`).
    """
    y = np.array([int(i.species == BONA_FIDE) for i in kept])
    conditions = {"clean": (f.texture, f.minifasnet)} | {s: (f.shifted_texture[s], f.shifted_minifasnet[s])
                                                         for s in SHIFTS}
    out: dict[str, dict[str, dict[str, object]]] = {}
    for fold in folds(kept):
        print(f"  fold {fold.name} load {os.getloadavg()[0]:.1f}", file=sys.stderr)
        test_tex = {c: np.zeros(len(kept)) for c in conditions}
        tr_tex, tr_mf, tr_y = [], [], []
        for train, test in _fold_parts(kept, fold):
            model = fit_model(f.texture[train], f.texture_cam[train], y[train], members)
            for c, (tx, _) in conditions.items():
                test_tex[c][test] = model.logits_all(tx[test])
            tr_tex.append(_inner_oof(kept, f, y, train, members))
            tr_mf.append(f.minifasnet[train])
            tr_y.append(y[train])
        train_scores: Scores = {"texture": np.concatenate(tr_tex), "minifasnet": np.concatenate(tr_mf)}
        ytr = np.concatenate(tr_y)
        by_cond: dict[str, dict[str, object]] = {}
        for c, (_, mf) in conditions.items():
            test_scores: Scores = {"texture": test_tex[c], "minifasnet": mf}
            res: dict[str, object] = {}
            for name, cand in CANDIDATES.items():
                fixed = _bpcer_threshold(cand(train_scores, train_scores, ytr)[ytr == 1])
                res[name] = _metrics(kept, fold.test, cand(test_scores, train_scores, ytr), fixed)
            res["fusion_v1 at its shipped threshold"] = _metrics(
                kept, fold.test, _shipped(test_scores, train_scores, ytr), FUSION_V1_VERIFY)
            by_cond[c] = res
        out[fold.name] = by_cond
    return out


def _fold_parts(kept: Sequence[Item], fold: Fold) -> list[tuple[np.ndarray, np.ndarray]]:
    if not fold.name.startswith("leave "):
        return [(fold.train, fold.test)]
    sp = np.array([i.species for i in kept])
    s = fold.name.split()[1]
    groups = sorted({i.group for i in kept})
    half = np.isin([i.group for i in kept], groups[::2])
    live = sp == BONA_FIDE
    return [(a & (sp != s), ~a & (live | (sp == s))) for a in (half, ~half)]


def _inner_oof(kept: Sequence[Item], f: AuditFeatures, y: np.ndarray, train: np.ndarray,
               members: Sequence[Member]) -> np.ndarray:
    """Texture scores of the training side, each from a model that did not see its dataset (when it can)."""
    ds = np.array([i.dataset for i in kept])
    names = sorted(set(ds[train]))
    out = np.zeros(len(kept))
    if len(names) < 2:  # one dataset: subject-disjoint halves instead
        groups = sorted({i.group for i in np.asarray(kept, dtype=object)[train]})
        half = np.isin([i.group for i in kept], groups[::2])
        splits = [(train & half, train & ~half), (train & ~half, train & half)]
    else:
        splits = [(train & (ds != d), train & (ds == d)) for d in names]
    for tr, te in splits:
        out[te] = fit_model(f.texture[tr], f.texture_cam[tr], y[tr], members).logits_all(f.texture[te])
    return out[train]


def _blind_texture(kept: Sequence[Item], f: AuditFeatures, members: Sequence[Member]
                   ) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]], dict[str, np.ndarray]]:
    """Labels (1 = bona fide), condition → (texture features, MiniFASNet scores), and condition → texture logits
    with each item scored by a model fitted without its own dataset (leave one dataset out)."""
    y = np.array([int(i.species == BONA_FIDE) for i in kept])
    ds = np.array([i.dataset for i in kept])
    conditions = {"clean": (f.texture, f.minifasnet)} | {s: (f.shifted_texture[s], f.shifted_minifasnet[s])
                                                         for s in SHIFTS}
    tex = {c: np.zeros(len(kept)) for c in conditions}
    for d in sorted(set(ds)):
        model = fit_model(f.texture[ds != d], f.texture_cam[ds != d], y[ds != d], members)
        for c, (tx, _) in conditions.items():
            tex[c][ds == d] = model.logits_all(tx[ds == d])
    return y, conditions, tex


def door_point(kept: Sequence[Item], f: AuditFeatures, members: Sequence[Member],
               bpcer: float = 0.02) -> dict[str, dict[str, object]]:
    """Every candidate at ONE threshold, as the door runs: read at `bpcer` on the pooled clean
    leave-one-dataset-out scores (each item's texture from a model blind to its dataset), then held fixed
    under every shift.  candidate → condition → metrics (pooled over datasets, BPCER per dataset)."""
    y, conditions, tex = _blind_texture(kept, f, members)
    every = np.ones(len(kept), dtype=bool)
    out: dict[str, dict[str, object]] = {}
    pooled: Scores = {"texture": tex["clean"], "minifasnet": f.minifasnet}  # the refit's training scores
    for name, cand in CANDIDATES.items():
        clean = cand(pooled, pooled, y)
        fixed = FUSION_V1_VERIFY if name == "fusion_v1" else _bpcer_threshold(clean[y == 1],
                                                                                                     bpcer)
        out[name] = {c: _metrics(kept, every, cand({"texture": tex[c], "minifasnet": mf}, pooled, y), fixed)
                     for c, (_, mf) in conditions.items()}
    return out


def cue_shift(live: dict[str, dict[str, np.ndarray]], bpcer: float = 0.02) -> dict[str, dict[str, dict[str, float]]]:
    """Which cue a shift breaks, on bona-fide frames only: cue → condition → median score, median change from
    the same frame clean, and the share refused at the cue's own BPCER-`bpcer` point read on the clean scores
    (held fixed, as the door holds its threshold).  `live`: cue → condition ("clean" required) → scores."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for cue, by_cond in live.items():
        clean = by_cond["clean"]
        fixed = _bpcer_threshold(clean, bpcer)
        out[cue] = {c: {"median": round(float(np.median(v)), 3), "median_change": round(float(np.median(v - clean)), 3),
                        "refused_at_clean_bpcer_point": round(float(np.mean(v < fixed)), 4)}
                    for c, v in by_cond.items()}
    return out


def live_shift(kept: Sequence[Item], f: AuditFeatures, members: Sequence[Member]) -> dict[str, object]:
    """`cue_shift` for texture (each frame scored by a model blind to its dataset), MiniFASNet and the shipped
    fusion on the live frames, plus the share of the fused score's mean drop that comes from texture."""
    from limen.pad.fusion_model import MODEL_FILE

    y, conditions, tex = _blind_texture(kept, f, members)
    comb = FusionModel.load(MODEL_FILE).combinations[0]
    live = y == 1
    cues: dict[str, dict[str, np.ndarray]] = {"texture": {}, "minifasnet": {}, "fused": {}}
    for c, (_, mf) in conditions.items():
        by_name = {"texture": tex[c], "minifasnet": mf}
        cues["texture"][c] = tex[c][live]
        cues["minifasnet"][c] = mf[live]
        cues["fused"][c] = comb.logits(np.column_stack([by_name[k] for k in comb.inputs]))[live]
    table: dict[str, object] = dict(cue_shift(cues))
    weights = dict(zip(comb.inputs, comb.coef / comb.scale, strict=True))
    share: dict[str, float] = {}
    for c in conditions:
        if c == "clean":
            continue
        drops = {k: float(weights[k] * np.mean(cues[k]["clean"] - cues[k][c])) for k in ("texture", "minifasnet")}
        total = drops["texture"] + drops["minifasnet"]
        share[c] = round(drops["texture"] / total, 3) if abs(total) > 1e-9 else 0.0
    table["texture share of the fused mean drop"] = share
    return table


def monotone_fusion(kept: Sequence[Item], f: AuditFeatures, members: Sequence[Member], w: float
                    ) -> tuple[Logistic, dict[str, object]]:
    """`minifasnet + w·texture`, calibrated to log-odds by a one-input logistic (Platt) on the pooled clean
    leave-one-dataset-out scores (monotone in both cues by construction), with its operating points."""
    y = np.array([int(i.species == BONA_FIDE) for i in kept])
    ds = np.array([i.dataset for i in kept])
    tex = np.zeros(len(kept))
    for d in sorted(set(ds)):
        tex[ds == d] = fit_model(f.texture[ds != d], f.texture_cam[ds != d], y[ds != d],
                                 members).logits_all(f.texture[ds == d])
    raw = f.minifasnet + w * tex
    platt = fit_logistic(raw[:, None], y, ("raw",), c=1e6)
    a = float(platt.coef[0] / platt.scale[0])  # undo the standardisation: log-odds = a·raw + b
    b = float(platt.intercept - a * platt.mean[0])
    if a <= 0:
        raise ValueError("calibration is not increasing: the candidate does not order the classes")
    comb = Logistic(("texture", "minifasnet"), np.zeros(2), np.ones(2), np.array([a * w, a]), b)
    fused = comb.logits(np.column_stack([tex, f.minifasnet]))
    points = operating_points(kept, {"texture": tex, "minifasnet": f.minifasnet}, fused)
    return comb, {"texture_weight": w, "calibration": {"a": round(a, 4), "b": round(b, 4)}, **points}


def blind_bursts(kept: Sequence[Item], f: AuditFeatures, members: Sequence[Member], bursts: Path,
                 models_dir: Path, without: str = "nuaa") -> dict[str, dict[str, int]]:
    """The door's own pipeline (`assess`, `Purpose.VERIFY`) on a burst set (`<species>/<presentation>/<frames>`)
    with a texture model trained without dataset `without`: its live bursts become an unseen population.
    species → verdict reason → bursts."""
    from limen.capture import load_capture
    from limen.lab.pad import collect_samples
    from limen.pad import Purpose, assess
    from limen.pad.pipeline import DEFAULT_CUES
    from limen.pad.texture import TextureCue

    y = np.array([int(i.species == BONA_FIDE) for i in kept])
    keep = np.array([i.dataset != without for i in kept])
    blind = TextureCue(fit_model(f.texture[keep], f.texture_cam[keep], y[keep], members))
    cues = tuple(blind if c.name == blind.name else c for c in DEFAULT_CUES)  # the door's cues, texture swapped
    out: dict[str, dict[str, int]] = {}
    for n, s in enumerate(collect_samples(bursts, None, bursts=True)):
        if n % 50 == 0:
            print(f"  blind bursts {n} load {os.getloadavg()[0]:.1f}", file=sys.stderr)
        verdict = assess(load_capture(s.path), purpose=Purpose.VERIFY, cues=cues, models_dir=models_dir)
        counts = out.setdefault(s.species, {})
        counts[verdict.reason] = counts.get(verdict.reason, 0) + 1
    return out


# ------------------------------------------------------------------ photometric study (lab only, issue 13)

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
NORMALISED_LUMA = 118.0  # the mean luma a normalised crop is scaled to (mid-grey; any fixed value would do)


def _to_luma(x: np.ndarray) -> np.ndarray:
    gain = NORMALISED_LUMA / (float((x @ LUMA).mean()) + 1e-3)
    return np.ascontiguousarray(np.clip(x * gain + 0.5, 0, 255).astype(np.uint8))


def exposure_normalised(crop: np.ndarray) -> np.ndarray:
    """The crop scaled by one gain to mean luma `NORMALISED_LUMA` (colour ratios kept)."""
    return _to_luma(crop.astype(np.float32))


def grey_world(crop: np.ndarray) -> np.ndarray:
    """Each channel scaled to the crop's mean (grey-world white balance), then to mean luma `NORMALISED_LUMA`."""
    x = crop.astype(np.float32)
    means = x.reshape(-1, 3).mean(axis=0) + 1e-3
    return _to_luma(x * (means.mean() / means))


def random_photometric(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random camera and room: R and B gains, gamma, exposure, sometimes defocus and JPEG.  The ranges are
    wider than `SHIFTS` and contain them, so a model trained with it is not blind to the audit's shifts."""
    gains = (float(rng.uniform(0.78, 1.25)), 1.0, float(rng.uniform(0.78, 1.25)))
    img = _colour(rgb, gains, float(rng.uniform(0.75, 1.4)), float(rng.uniform(0.45, 1.35)))
    if rng.random() < 0.5:
        img = np.ascontiguousarray(cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.6, 2.2))))
    if rng.random() < 0.3:
        img = _jpeg(img, int(rng.integers(25, 85)))
    return img


CROP_VARIANTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "shipped crop": lambda crop: crop, "exposure-normalised crop": exposure_normalised, "grey-world crop": grey_world}
AUGMENTED_COPIES = 2  # random_photometric copies of each training image


def _grey_world_frame(rgb: np.ndarray, box: Box) -> np.ndarray:
    """The whole frame under the gains that grey-world-balance and exposure-normalise its face crop."""
    crop = rgb[box.top : box.bottom, box.left : box.right].astype(np.float32)
    means = crop.reshape(-1, 3).mean(axis=0) + 1e-3
    gains = means.mean() / means
    gains = gains * NORMALISED_LUMA / (float(((crop * gains) @ LUMA).mean()) + 1e-3)
    return np.ascontiguousarray(np.clip(rgb.astype(np.float32) * gains + 0.5, 0, 255).astype(np.uint8))


def _crop_features(img: np.ndarray, box: Box, norm: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    return texture_features(norm(np.ascontiguousarray(img[box.top : box.bottom, box.left : box.right])))


def photometric_features(kept: Sequence[Item], models_dir: Path, cache: Path | None) -> dict[str, np.ndarray]:
    """Per crop variant: texture features clean ("<v>|clean"), through the camera model ("<v>|camera"), under
    `random_photometric` ("<v>|aug", copies × n × d) and under each shift ("<v>|<shift>"); and MiniFASNet on
    the grey-world-balanced frame ("minifasnet grey-world|<condition>").  Cached as plain arrays."""
    from limen.pad.minifasnet import minifasnet_scores

    paths = np.array([str(i.path) for i in kept])
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if np.array_equal(z["paths"], paths):
                return {k: z[k] for k in z.files if k != "paths"}
    out: dict[str, list[np.ndarray]] = {}
    for n, item in enumerate(kept):
        if n % 100 == 0:
            print(f"  photometric features {n}/{len(kept)} load {os.getloadavg()[0]:.1f}", file=sys.stderr)
        rgb = load_image(item.path)
        box = faces.locate(Capture.single(rgb)).faces[0].box
        rng = np.random.default_rng([n, 1313])
        augmented = [random_photometric(rgb, rng) for _ in range(AUGMENTED_COPIES)]
        images = {"clean": rgb, "camera": camera_only(rgb, seed=n)} | {s: fn(rgb) for s, fn in SHIFTS.items()}
        for v, norm in CROP_VARIANTS.items():
            for c, img in images.items():
                out.setdefault(f"{v}|{c}", []).append(_crop_features(img, box, norm))
            out.setdefault(f"{v}|aug", []).append(np.stack([_crop_features(a, box, norm) for a in augmented]))
        for c, img in images.items():
            if c != "camera":
                mf = minifasnet_scores([_grey_world_frame(img, box)], [box], models_dir)[0]
                out.setdefault(f"minifasnet grey-world|{c}", []).append(np.asarray(mf))
    arrays = {k: np.stack(v) for k, v in out.items()}
    arrays = {k: (np.swapaxes(v, 0, 1) if k.endswith("|aug") else v) for k, v in arrays.items()}
    if cache is not None:
        np.savez(cache, paths=paths, **arrays)  # type: ignore[arg-type]
    return arrays


def photometric_study(kept: Sequence[Item], f: AuditFeatures, members: Sequence[Member],
                      pf: dict[str, np.ndarray]) -> dict[str, dict[str, object]]:
    """Texture crop variant × (camera model only | + random photometric augmentation of both classes) ×
    MiniFASNet (as shipped | on the grey-world frame) × texture weight, each at its BPCER-2 % point on the
    clean pooled leave-one-dataset-out scores, held fixed under every shift (as `door_point`).
    "<variant>" → condition → metrics, plus "worst" (highest BPCER, highest species APCER over conditions)."""
    y = np.array([int(i.species == BONA_FIDE) for i in kept])
    ds = np.array([i.dataset for i in kept])
    conditions = ["clean", *SHIFTS]
    deep = {"minifasnet": {"clean": f.minifasnet} | {c: f.shifted_minifasnet[c] for c in SHIFTS},
            "minifasnet on the grey-world frame": {c: pf[f"minifasnet grey-world|{c}"] for c in conditions}}
    every = np.ones(len(kept), dtype=bool)
    out: dict[str, dict[str, object]] = {}
    for v in CROP_VARIANTS:
        for augmented in (False, True):
            extra = [pf[f"{v}|aug"][k] for k in range(AUGMENTED_COPIES)] if augmented else []
            tex = {c: np.zeros(len(kept)) for c in conditions}
            for d in sorted(set(ds)):
                tr = ds != d
                rows = [pf[f"{v}|camera"][tr], *(a[tr] for a in extra)]
                model = fit_model(np.vstack([pf[f"{v}|clean"][tr]] * len(rows)), np.vstack(rows),
                                  np.concatenate([y[tr]] * len(rows)), members)
                for c in conditions:
                    tex[c][ds == d] = model.logits_all(pf[f"{v}|{c}"][ds == d])
            for mname, mf in deep.items():
                for w in (0.0, 0.25, 0.5):
                    if w == 0.0 and (v != "shipped crop" or augmented):
                        continue  # the deep cue alone does not depend on the texture variant
                    name = (f"{mname} alone" if w == 0.0 else
                            f"{mname} + {w} × texture ({v}{', photometric augmentation' if augmented else ''})")
                    fixed = _bpcer_threshold((mf["clean"] + w * tex["clean"])[y == 1])
                    res: dict[str, object] = {c: _metrics(kept, every, mf[c] + w * tex[c], fixed) for c in conditions}
                    res["worst"] = {
                        "bpcer": max(float(res[c]["bpcer_fixed"]) for c in conditions),  # type: ignore[index]
                        "apcer": max(max(res[c]["apcer_fixed"].values()) for c in conditions)}  # type: ignore[index]
                    out[name] = res
            fixed_t = _bpcer_threshold(tex["clean"][y == 1])
            out[f"texture alone ({v}{', photometric augmentation' if augmented else ''}): live refused"] = {
                c: round(float(np.mean(tex[c][y == 1] < fixed_t)), 4) for c in conditions}
    return out


def choose(report: dict[str, dict[str, dict[str, object]]]) -> tuple[str, dict[str, tuple[float, float]]]:
    """The candidate with the lowest worst EER over the leave-one-dataset-out folds × conditions (the
    held-out proxies), ties broken by the mean; MiniFASNet alone, texture alone and the refit are candidates."""
    table: dict[str, list[float]] = {}
    for fold, conds in report.items():
        if fold.startswith("leave "):
            continue
        for res in conds.values():
            for name, m in res.items():
                if name in CANDIDATES:
                    table.setdefault(name, []).append(float(m["eer"]))  # type: ignore[index]
    summary = {k: (max(v), float(np.mean(v))) for k, v in table.items()}
    best = min(summary, key=lambda k: summary[k])
    return best, {k: (round(w, 4), round(m, 4)) for k, (w, m) in summary.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Cross-condition robustness audit of the PAD fusion.")
    ap.add_argument("recapture_set", type=Path)
    ap.add_argument("--nuaa", type=Path, default=SHARED / "nuaa-dev")
    ap.add_argument("--models-dir", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--blind-bursts", type=Path, default=None, metavar="DIR",
                    help="also run the door on this burst set with a texture model that never saw nuaa-dev")
    ap.add_argument("--photometric", type=Path, default=None, metavar="CACHE_NPZ",
                    help="also run the photometric study (crop normalisation, random photometric augmentation, "
                         "MiniFASNet on a white-balanced frame); its features are cached in CACHE_NPZ")
    ap.add_argument("--write-fusion", type=Path, default=None, metavar="NPZ",
                    help="write the chosen candidate (when it is a monotone combination) as the fusion model")
    args = ap.parse_args(argv)
    all_items = items(args.recapture_set, args.nuaa)
    f = extract(all_items, args.models_dir, args.cache)
    kept = [i for i, ok in zip(all_items, f.usable, strict=True) if ok]
    members = shipped_members()
    saved = args.cache.with_suffix(".folds.json") if args.cache is not None else None
    if saved is not None and saved.is_file():
        folds_report = json.loads(saved.read_text())
    else:
        folds_report = run(kept, f, members)
        if saved is not None:
            saved.write_text(json.dumps(folds_report))
    best, summary = choose(folds_report)
    report = {"folds": folds_report, "selection": {"chosen": best, "leave-one-dataset-out folds": summary},
              "door operating point (BPCER 2 % on pooled clean leave-one-dataset-out scores)":
                  door_point(kept, f, members)}
    report["live frames under each shift, per cue"] = live_shift(kept, f, members)
    weights = {f"minifasnet + {w} texture": w for w in WEIGHTS}
    if best in weights:
        comb, points = monotone_fusion(kept, f, members, weights[best])
        report["chosen fusion"] = points
        if args.write_fusion is not None:
            model = FusionModel(FusionModel.load(PREVIOUS_MODEL_FILE).edges, (comb,))
            model.save(args.write_fusion, trained=dt.date.today().isoformat(), selection=f"limen.lab.pad_audit: {best}")
    if args.photometric is not None:
        report["photometric study (BPCER / APCER at each candidate's clean BPCER-2 % point)"] = photometric_study(
            kept, f, members, photometric_features(kept, args.models_dir, args.photometric))
    if args.blind_bursts is not None:
        report["bursts, texture model without nuaa-dev (Purpose.VERIFY)"] = blind_bursts(
            kept, f, members, args.blind_bursts, args.models_dir)
    text = json.dumps(report, indent=1)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
