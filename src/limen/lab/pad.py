"""PAD evaluation in the terms of ISO/IEC 30107-3: score files, APCER/BPCER, DET curve, HTML report.

Conventions: a PAD score is higher for bona fide; a presentation is *accepted
as bona fide* when `score >= threshold`.  A presentation with no score (PAD
could not judge it: "insufficient evidence") is denied, so it counts as a
correct rejection for an attack and as an error for a bona fide presentation;
both counts are reported separately as non-responses.

- APCER(species) = attack presentations of that species accepted / all of that species
- APCER = the maximum over species (30107-3 reports the worst species)
- BPCER = bona fide presentations denied / all bona fide presentations
- BPCER@APCER=x: BPCER at the lowest threshold whose APCER (max over species) is ≤ x
- APCER@BPCER=x: APCER at the highest threshold whose BPCER is ≤ x
- IAPAR (whole system, PAD + matcher) = impostor attack presentations that pass
  PAD *and* match the targeted identity's reference / all of them
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from limen.capture.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from limen.errors import BadRequest

BONA_FIDE = "bona_fide"
BONA_FIDE_FOLDERS = frozenset({"live", "real", "bona_fide", "bonafide", "genuine", "client"})
SCORE_FIELDS = ("sample", "label", "species", "subject", "score", "fold", "reason")


@dataclass(frozen=True)
class PadSampleRef:
    """One presentation to evaluate: a file (image/video) or a folder of frames, with its labels."""

    path: Path
    species: str  # BONA_FIDE or the attack species ("print", "screen", …)
    subject: str = ""

    @property
    def is_attack(self) -> bool:
        return self.species != BONA_FIDE


@dataclass(frozen=True)
class PadScoreRow:
    """One line of a score file; `score` is None when PAD gave no score (insufficient evidence)."""

    sample: str
    species: str
    subject: str
    score: float | None
    fold: str = ""
    reason: str = ""

    @property
    def is_attack(self) -> bool:
        return self.species != BONA_FIDE


# ------------------------------------------------------------------ datasets


def collect_samples(root: Path, labels_csv: Path | None = None, bursts: bool = False) -> list[PadSampleRef]:
    """Samples under `root`: `<species>/[<subject>/]file`, or as listed in a CSV.

    Folder layout: a top-level folder named live/real/bona_fide/genuine holds bona
    fide samples, any other top-level folder is an attack species named after it;
    a second level of folders names subjects; inside a subject folder, each image
    or video file is a sample and so is each sub-folder of frames (a burst).
    With `bursts`, a second-level folder of frames is itself one presentation
    (`<species>/<presentation>/<frames>`, as the door captures it).  CSV: columns
    `path,species[,subject]` (paths relative to the CSV), species `bona_fide` for bona fide.
    """
    if labels_csv is not None:
        return _from_csv(labels_csv)
    if not root.is_dir():
        raise BadRequest("dataset", f"{root} is not a folder")
    samples: list[PadSampleRef] = []
    for top in sorted(p for p in root.iterdir() if p.is_dir()):
        species = BONA_FIDE if top.name.lower() in BONA_FIDE_FOLDERS else top.name
        for item in sorted(top.iterdir()):
            if bursts and _media_dir(item):
                samples.append(PadSampleRef(item, species, item.name))
            elif item.is_dir():
                samples += [PadSampleRef(f, species, item.name) for f in _media(item)]
                samples += [PadSampleRef(d, species, item.name) for d in sorted(item.iterdir()) if _media_dir(d)]
            elif _is_media(item):
                samples.append(PadSampleRef(item, species, ""))
    if not samples:
        raise BadRequest("dataset", f"no labelled samples under {root} (expected <species>/[<subject>/]file)")
    return samples


def _from_csv(path: Path) -> list[PadSampleRef]:
    if not path.is_file():
        raise BadRequest("labels", f"{path} is not a file")
    out = []
    with path.open(newline="", encoding="utf-8") as fh:
        for i, row in enumerate(csv.DictReader(fh), start=2):
            if not row.get("path") or not row.get("species"):
                raise BadRequest("labels", f"{path.name} line {i}: needs path and species")
            species = BONA_FIDE if row["species"].lower() in BONA_FIDE_FOLDERS else row["species"]
            out.append(PadSampleRef(path.parent / row["path"], species, row.get("subject") or ""))
    if not out:
        raise BadRequest("labels", f"{path.name} lists no samples")
    return out


def _is_media(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES


def _media_dir(p: Path) -> bool:
    """A folder of frames (one presentation, e.g. a burst or an unpacked video)."""
    return p.is_dir() and any(_is_media(f) for f in p.iterdir())


def _media(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if _is_media(p))


# ------------------------------------------------------------------ metrics


def _split(rows: Iterable[PadScoreRow]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Bona fide scores and attack scores per species; no score → -inf (always denied)."""
    bona: list[float] = []
    attacks: dict[str, list[float]] = {}
    for r in rows:
        s = -math.inf if r.score is None or not math.isfinite(r.score) else r.score
        if r.is_attack:
            attacks.setdefault(r.species, []).append(s)
        else:
            bona.append(s)
    return np.asarray(bona, dtype=np.float64), {k: np.asarray(v) for k, v in sorted(attacks.items())}


def apcer(attacks: dict[str, np.ndarray], threshold: float) -> dict[str, float]:
    return {k: float(np.mean(v >= threshold)) if v.size else 0.0 for k, v in attacks.items()}


def bpcer(bona: np.ndarray, threshold: float) -> float:
    return float(np.mean(bona < threshold)) if bona.size else 0.0


def _candidates(bona: np.ndarray, attacks: dict[str, np.ndarray]) -> np.ndarray:
    every = np.concatenate([bona] + list(attacks.values()))
    finite = np.unique(every[np.isfinite(every)])
    return np.concatenate([finite, [np.inf]])  # accept ≥ t; +inf denies everything


def threshold_at_apcer(bona: np.ndarray, attacks: dict[str, np.ndarray], target: float) -> float:
    """Lowest threshold whose worst-species APCER is ≤ `target`."""
    for t in _candidates(bona, attacks):
        if max(apcer(attacks, float(t)).values(), default=0.0) <= target + 1e-12:
            return float(t)
    return math.inf


def threshold_at_bpcer(bona: np.ndarray, attacks: dict[str, np.ndarray], target: float) -> float:
    """Highest threshold whose BPCER is ≤ `target`."""
    best = -math.inf
    for t in _candidates(bona, attacks):
        if bpcer(bona, float(t)) <= target + 1e-12:
            best = float(t)
    return best


@dataclass(frozen=True)
class PadMetrics:
    """ISO/IEC 30107-3 figures of one set of scores at one threshold (rates in 0–1)."""

    threshold: float
    bona_fide: int
    attacks: dict[str, int]
    no_response_bona_fide: int
    no_response_attack: int
    apcer: dict[str, float]
    apcer_max: float
    bpcer: float
    bpcer_at_apcer: dict[str, float]
    threshold_at_apcer: dict[str, float]
    apcer_at_bpcer: dict[str, float]
    threshold_at_bpcer: dict[str, float]
    eer: float
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        def clean(v: Any) -> Any:
            if isinstance(v, float):
                return None if not math.isfinite(v) else round(v, 6)
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            return v

        return {k: clean(v) for k, v in self.__dict__.items()}


def compute_metrics(rows: list[PadScoreRow], threshold: float, targets: tuple[float, ...] = (0.01, 0.05)) -> PadMetrics:
    """Every figure the report shows, at `threshold` and at the standard's operating points."""
    bona, attacks = _split(rows)
    if bona.size == 0 or not attacks:
        raise BadRequest("dataset", "PAD metrics need bona fide and attack samples")
    per_species = apcer(attacks, threshold)
    t_apcer = {f"{t:g}": threshold_at_apcer(bona, attacks, t) for t in targets}
    t_bpcer = {"0.01": threshold_at_bpcer(bona, attacks, 0.01)}
    return PadMetrics(
        threshold=threshold,
        bona_fide=int(bona.size),
        attacks={k: int(v.size) for k, v in attacks.items()},
        no_response_bona_fide=int(np.sum(~np.isfinite(bona))),
        no_response_attack=int(sum(np.sum(~np.isfinite(v)) for v in attacks.values())),
        apcer=per_species,
        apcer_max=max(per_species.values()),
        bpcer=bpcer(bona, threshold),
        bpcer_at_apcer={k: bpcer(bona, t) for k, t in t_apcer.items()},
        threshold_at_apcer=t_apcer,
        apcer_at_bpcer={k: max(apcer(attacks, t).values()) for k, t in t_bpcer.items()},
        threshold_at_bpcer=t_bpcer,
        eer=_eer(bona, attacks),
    )


def _eer(bona: np.ndarray, attacks: dict[str, np.ndarray]) -> float:
    best, gap = 1.0, math.inf
    for t in _candidates(bona, attacks):
        a = max(apcer(attacks, float(t)).values())
        b = bpcer(bona, float(t))
        if abs(a - b) < gap:
            gap, best = abs(a - b), (a + b) / 2
    return best


def det_points(rows: list[PadScoreRow]) -> tuple[np.ndarray, np.ndarray]:
    """(APCER max over species, BPCER) at every candidate threshold, for a DET curve."""
    bona, attacks = _split(rows)
    ts = _candidates(bona, attacks)
    a = np.array([max(apcer(attacks, float(t)).values()) for t in ts])
    b = np.array([bpcer(bona, float(t)) for t in ts])
    return a, b


# ------------------------------------------------------------------ files


def write_scores(rows: list[PadScoreRow], path: Path) -> None:
    """A CSV score file (one presentation per line), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(SCORE_FIELDS)
        for r in rows:
            label = "attack" if r.is_attack else BONA_FIDE
            score = "" if r.score is None else f"{r.score:.6f}"
            w.writerow([r.sample, label, r.species, r.subject, score, r.fold, r.reason])
    tmp.replace(path)


def read_scores(path: Path) -> list[PadScoreRow]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [
            PadScoreRow(r["sample"], r["species"], r["subject"], float(r["score"]) if r["score"] else None,
                        r.get("fold", ""), r.get("reason", ""))
            for r in csv.DictReader(fh)
        ]


def det_png(rows: list[PadScoreRow], title: str) -> bytes:
    """The DET curve (APCER vs BPCER on normal-deviate axes) as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    a, b = det_points(rows)
    eps = 1e-4
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.plot(norm.ppf(np.clip(a, eps, 1 - eps)), norm.ppf(np.clip(b, eps, 1 - eps)), lw=1.5)
    ticks = [0.001, 0.01, 0.05, 0.2, 0.5]
    ax.set_xticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_xlim(norm.ppf(eps), norm.ppf(0.6))
    ax.set_ylim(norm.ppf(eps), norm.ppf(0.6))
    ax.set_xlabel("APCER (%) — worst species")
    ax.set_ylabel("BPCER (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def html_report(metrics: PadMetrics, config: dict[str, Any], dataset: dict[str, Any], det: bytes) -> str:
    """A self-contained HTML page: configuration, dataset, every figure, the DET curve."""

    def pct(x: float) -> str:
        return f"{100 * x:.2f} %"

    def table(rows: list[tuple[str, str]]) -> str:
        cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
        return f"<table>{cells}</table>"

    figures = [("threshold", f"{metrics.threshold:.4f}"), ("BPCER", pct(metrics.bpcer)),
               ("APCER (max over species)", pct(metrics.apcer_max))]
    figures += [(f"APCER [{k}]", pct(v)) for k, v in metrics.apcer.items()]
    figures += [(f"BPCER @ APCER = {float(k):.0%}", pct(v)) for k, v in metrics.bpcer_at_apcer.items()]
    figures += [(f"APCER @ BPCER = {float(k):.0%}", pct(v)) for k, v in metrics.apcer_at_bpcer.items()]
    figures += [("EER", pct(metrics.eer)),
                ("non-responses (bona fide / attack)",
                 f"{metrics.no_response_bona_fide} / {metrics.no_response_attack}")]
    figures += [(k, json.dumps(v)) for k, v in metrics.extra.items()]
    img = base64.b64encode(det).decode("ascii")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Limen PAD report</title>"
        "<style>body{font-family:sans-serif;max-width:52em;margin:2em auto}table{border-collapse:collapse}"
        "th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}</style></head><body>"
        "<h1>Presentation attack detection — ISO/IEC 30107-3 report</h1>"
        f"<h2>Configuration</h2>{table([(k, str(v)) for k, v in config.items()])}"
        f"<h2>Dataset</h2>{table([(k, str(v)) for k, v in dataset.items()])}"
        f"<h2>Figures</h2>{table(figures)}"
        f"<h2>DET curve</h2><img alt='DET curve' src='data:image/png;base64,{img}'>"
        "</body></html>"
    )


def write_report(
    rows: list[PadScoreRow], metrics: PadMetrics, out: Path, config: dict[str, Any], dataset: dict[str, Any]
) -> dict[str, str]:
    """Score file, metrics JSON, DET PNG and HTML report under `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"scores": out / "pad_scores.csv", "metrics": out / "pad_metrics.json",
             "det": out / "pad_det.png", "report": out / "pad_report.html"}
    write_scores(rows, files["scores"])
    det = det_png(rows, str(dataset.get("name", "")))
    _atomic_write(files["det"], det)
    summary = {"config": config, "dataset": dataset, "metrics": metrics.as_dict()}
    _atomic_write(files["metrics"], json.dumps(summary, indent=2, default=str).encode())
    _atomic_write(files["report"], html_report(metrics, config, dataset, det).encode())
    return {k: str(v) for k, v in files.items()}


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


# ------------------------------------------------------------------ running PAD over a dataset


def verdict_margin(scores: dict[str, float], cue_thresholds: dict[str, float]) -> float:
    """One number per verdict for DET curves: the smallest score − threshold over the cues that ran.

    Fusion passes a presentation exactly when every cue's margin is ≥ 0, so the
    operating threshold of this score is 0.
    """
    return min(scores[k] - cue_thresholds[k] for k in scores)


def score_with_pad(samples: list[PadSampleRef], purpose_name: str = "verify",
                   on_progress: Any = None, models_dir: Path | None = None) -> list[PadScoreRow]:
    """Run the shipped `limen.pad.assess` on every sample (image, video or folder of frames)."""
    return score_presentations(samples, purpose_name, on_progress, models_dir).presentations


@dataclass(frozen=True)
class ScoredSet:
    """Scores per presentation (as the door decides on the whole burst) and per frame (each frame alone)."""

    presentations: list[PadScoreRow]
    frames: list[PadScoreRow]


def _row(s: PadSampleRef, verdict: Any, name: str) -> PadScoreRow:
    score = verdict_margin(verdict.scores, verdict.thresholds) if verdict.scores else None
    if verdict.reason == "insufficient_evidence":
        score = None
    return PadScoreRow(name, s.species, s.subject, score, reason=verdict.reason)


def score_presentations(samples: list[PadSampleRef], purpose_name: str = "verify", on_progress: Any = None,
                        models_dir: Path | None = None, per_frame: bool = False) -> ScoredSet:
    """`assess` on each presentation (the door's decision) and, with `per_frame`, on each of its frames alone."""
    from limen.capture import Capture, load_capture
    from limen.errors import InputError
    from limen.pad import Purpose, assess

    purpose = Purpose(purpose_name)
    rows: list[PadScoreRow] = []
    frames: list[PadScoreRow] = []
    for s in samples:
        try:
            capture = load_capture(s.path)
        except InputError as exc:
            rows.append(PadScoreRow(str(s.path), s.species, s.subject, None, reason=f"unreadable: {exc}"))
        else:
            rows.append(_row(s, assess(capture, purpose=purpose, models_dir=models_dir), str(s.path)))
            if per_frame:
                for i, frame in enumerate(capture.frames):
                    verdict = assess(Capture((frame,)), purpose=purpose, models_dir=models_dir)
                    frames.append(_row(s, verdict, f"{s.path}#{i}"))
        if on_progress is not None:
            on_progress(1)
    return ScoredSet(rows, frames)


def score_cross_validated(samples: list[PadSampleRef], cache: Path | None = None) -> list[PadScoreRow]:
    """Subject-disjoint folds: retrain the texture model without each subject, score that subject.

    Uses the shipped model's members (families, C) and the training recipe of
    `limen.lab.pad_train` (with camera augmentation); the margin is relative to
    `PAD_TEXTURE_VERIFY`, so 0 is the verification operating point.
    """
    from limen import thresholds
    from limen.lab import pad_train as train

    subjects = sorted({s.subject for s in samples})
    if len(subjects) < 2 or "" in subjects:
        raise BadRequest("dataset", "subject-disjoint folds need at least two named subjects per sample")
    x, xa, usable = train.extract(samples, cache)
    kept = [s for s, ok in zip(samples, usable, strict=True) if ok]
    y = np.array([int(not s.is_attack) for s in kept])
    subj = np.array([s.subject for s in kept])
    members = train.shipped_members()
    oof = train.leave_one_subject_out(x, xa, y, subj, members) - thresholds.PAD_TEXTURE_VERIFY
    it = iter(oof)
    return [
        PadScoreRow(str(s.path), s.species, s.subject, float(next(it)) if ok else None, fold=s.subject,
                    reason="" if ok else "insufficient_evidence")
        for s, ok in zip(samples, usable, strict=True)
    ]


@dataclass(frozen=True)
class IaparReport:
    """Impostor attack presentations (attacks aimed at an enrolled identity) and how many got in."""

    attacks: int
    matched: int  # the matcher alone would accept
    accepted: int  # PAD passed and the matcher accepted
    threshold: float
    references: int
    not_embedded: int = 0  # attack samples the face pipeline could not embed (counted as not matched)

    @property
    def iapar(self) -> float:
        return self.accepted / self.attacks if self.attacks else 0.0

    @property
    def iapar_without_pad(self) -> float:
        return self.matched / self.attacks if self.attacks else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"attacks": self.attacks, "matched_by_face_matcher": self.matched, "accepted": self.accepted,
                "iapar": round(self.iapar, 6), "iapar_without_pad": round(self.iapar_without_pad, 6),
                "match_threshold": self.threshold, "references": self.references,
                "not_embedded": self.not_embedded}


def impostor_attack_rate(rows: list[PadScoreRow], samples: list[PadSampleRef], references_per_subject: int = 5,
                         on_progress: Any = None) -> IaparReport:
    """IAPAR of PAD + face matcher: each attack is compared with its subject's reference.

    A subject's reference is the fused descriptor of its first
    `references_per_subject` bona fide samples (which are then not used as
    probes).  An attack is accepted when PAD passed it (score ≥ 0) and its
    distance to the reference is ≤ `FACE_MATCH_DEFAULT`.
    """
    from limen import thresholds
    from limen.bio.face import FaceEngine, FaceSample
    from limen.bio.face.compare import distance, fuse_reference
    from limen.capture import load_capture
    from limen.errors import InputError

    engine = FaceEngine(check_quality=False)

    def embed(path: Path) -> np.ndarray | None:
        try:
            result = engine.extract(load_capture(path).frames[0].rgb)
        except InputError:  # unreadable sample: no embedding, counted as not matched
            return None
        return result.embedding if isinstance(result, FaceSample) else None

    refs: dict[str, np.ndarray] = {}
    for subject in sorted({s.subject for s in samples if s.is_attack and s.subject}):
        bona = [s for s in samples if not s.is_attack and s.subject == subject][:references_per_subject]
        embs = [e for e in (embed(s.path) for s in bona) if e is not None]
        if embs:
            refs[subject] = fuse_reference(np.stack(embs))
    by_sample = {r.sample: r for r in rows}
    attacks = matched = accepted = not_embedded = 0
    threshold = thresholds.FACE_MATCH_DEFAULT
    for s in samples:
        if not s.is_attack or s.subject not in refs:
            continue
        attacks += 1
        e = embed(s.path)
        if on_progress is not None:
            on_progress(1)
        if e is None:
            not_embedded += 1
            continue
        if distance(e, refs[s.subject]) > threshold:
            continue
        matched += 1
        row = by_sample.get(str(s.path))
        if row is not None and row.score is not None and row.score >= 0.0:
            accepted += 1
    return IaparReport(attacks, matched, accepted, threshold, len(refs), not_embedded)
