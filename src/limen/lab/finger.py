"""`limen lab finger`: the FVC protocol on a folder of `FFF_I` fingerprint images.

Protocol (FVC2000–2006): genuine = every pair of impressions of the same finger
(i < j; 280 for 10 fingers × 8 impressions); impostor = the first impressions
of every two different fingers (45).  Scores are similarities (higher = more
alike).  A failure to extract (FTE) scores 0 for every comparison it touches,
as FVC does: it is counted, never dropped.  FMR100 / FMR1000 are the lowest
FNMR at FMR ≤ 1 % / 0.1 %; with 45 impostor pairs both equal ZeroFMR (the set
cannot show a non-zero FMR below 2.2 %), which the report says.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from limen.bio.finger import matcher
from limen.bio.finger.extract import extract_file
from limen.errors import BadImage, BadRequest, ConfigError
from limen.lab.metrics import equal_error_rate, plot_det

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".bmp", ".pgm")


@dataclass(frozen=True)
class FvcSample:
    finger: int
    impression: int
    path: Path


def fvc_samples(folder: Path) -> list[FvcSample]:
    """Images named `FFF_I.<ext>` in `folder`, sorted; `BadRequest` when there are none."""
    if not folder.is_dir():
        raise BadRequest("folder", f"{folder} is not a folder")
    found = []
    for p in sorted(folder.iterdir()):
        parts = p.stem.split("_")
        if p.suffix.lower() in IMAGE_SUFFIXES and len(parts) == 2 and all(x.isdigit() for x in parts):
            found.append(FvcSample(int(parts[0]), int(parts[1]), p))
    if not found:
        raise BadRequest("folder", f"no FFF_I images in {folder}")
    return found


def fvc_pairs(samples: list[FvcSample]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(genuine, impostor) index pairs of the FVC protocol."""
    genuine = [(a, b) for a, sa in enumerate(samples) for b, sb in enumerate(samples)
               if sa.finger == sb.finger and sa.impression < sb.impression]
    first: dict[int, int] = {}
    for i, s in enumerate(samples):
        if s.finger not in first or s.impression < samples[first[s.finger]].impression:
            first[s.finger] = i
    firsts = [first[f] for f in sorted(first)]
    impostor = [(a, b) for k, a in enumerate(firsts) for b in firsts[k + 1:]]
    return genuine, impostor


class FingerSystem(Protocol):
    """An extractor + matcher under test."""

    name: str

    def extract(self, path: Path) -> object:
        """A template, or raise `BadImage` (counted as FTE)."""

    def compare(self, probe: object, candidate: object) -> float:
        """Similarity, higher = more alike."""


class LimenFinger:
    """Limen's own extractor and matcher."""

    name = "limen"

    def extract(self, path: Path) -> object:
        return matcher.prepare(extract_file(path))

    def compare(self, probe: object, candidate: object) -> float:
        assert isinstance(probe, matcher.PreparedTemplate) and isinstance(candidate, matcher.PreparedTemplate)
        return matcher.similarity(probe, candidate)


class AfisPeer:
    """The open `afis` package (PyPI, MIT): its MINDTCT port + its Python bozorth3 (lab extra)."""

    def __init__(self, method: str = "bozorth3") -> None:
        try:
            import afis  # noqa: PLC0415 - optional lab dependency, imported only when asked for
        except ModuleNotFoundError as exc:
            raise ConfigError("the peer matcher needs the 'afis' package: pip install 'limen[lab]'") from exc
        self._afis = afis
        self._extractor: Any = afis.NbisExtractor(extractor="mindtct", matcher=method, quality_mode="none")
        self._method = method
        self.name = f"afis-{method}"

    def extract(self, path: Path) -> object:
        import cv2  # noqa: PLC0415

        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise BadImage(path, "not a decodable image")
        return self._extractor.extract_minutiae(image)

    def compare(self, probe: object, candidate: object) -> float:
        return float(self._extractor.match(probe, candidate, method=self._method).score)


@dataclass(frozen=True)
class FvcRun:
    """Scores and timings of one system on one database."""

    system: str
    database: str
    genuine: np.ndarray
    impostor: np.ndarray
    fte: int
    extract_ms: np.ndarray
    match_ms: np.ndarray

    def figures(self) -> dict[str, object]:
        g, i = self.genuine, self.impostor
        eer, _ = equal_error_rate(-g, -i)
        return {
            "system": self.system, "database": self.database,
            "genuine_pairs": int(g.size), "impostor_pairs": int(i.size), "fte": self.fte,
            "eer": eer, "fmr100": fnmr_at_fmr(g, i, 1e-2), "fmr1000": fnmr_at_fmr(g, i, 1e-3),
            "zero_fmr": fnmr_at_fmr(g, i, 0.0),
            "extract_ms_median": float(np.median(self.extract_ms)) if self.extract_ms.size else None,
            "extract_ms_p95": float(np.percentile(self.extract_ms, 95)) if self.extract_ms.size else None,
            "match_ms_median": float(np.median(self.match_ms)),
            "match_ms_p95": float(np.percentile(self.match_ms, 95)),
        }


def fnmr_at_fmr(genuine: np.ndarray, impostor: np.ndarray, fmr: float) -> float:
    """Lowest FNMR over thresholds whose FMR (impostors ≥ threshold) is ≤ `fmr`."""
    candidates = np.unique(np.concatenate([genuine, impostor, [np.inf]]))
    best = 1.0
    for t in candidates:
        if np.mean(impostor >= t) <= fmr:
            best = min(best, float(np.mean(genuine < t)))
            break                                   # thresholds ascend: the first allowed is the lowest FNMR
    return best


def run_fvc(system: FingerSystem, database: str, samples: list[FvcSample],
            on_progress: object = None) -> FvcRun:
    """Extract every sample, then score the FVC pairs; FTEs score 0."""
    templates: list[object | None] = []
    extract_ms = []
    fte = 0
    for s in samples:
        t0 = time.perf_counter()
        try:
            templates.append(system.extract(s.path))
            extract_ms.append((time.perf_counter() - t0) * 1e3)
        except BadImage:
            templates.append(None)
            fte += 1
        if callable(on_progress):
            on_progress()
    genuine_pairs, impostor_pairs = fvc_pairs(samples)
    match_ms: list[float] = []

    def score(a: int, b: int) -> float:
        ta, tb = templates[a], templates[b]
        if ta is None or tb is None:
            return 0.0
        t0 = time.perf_counter()
        value = system.compare(ta, tb)
        match_ms.append((time.perf_counter() - t0) * 1e3)
        return value

    genuine = np.array([score(a, b) for a, b in genuine_pairs])
    impostor = np.array([score(a, b) for a, b in impostor_pairs])
    if not match_ms:                                # every pair touches a failure to extract: no figure to give
        raise BadRequest("folder", f"{database}: {fte} of {len(samples)} images could not be extracted "
                                   f"({system.name}), so no pair of impressions could be compared: no EER to "
                                   "report for this folder")
    return FvcRun(system.name, database, genuine, impostor, fte, np.array(extract_ms), np.array(match_ms))


def write_report(runs: list[FvcRun], out: Path, load: tuple[float, float, float]) -> dict[str, str]:
    """Scores (CSV), figures (JSON), DET curves (PNG) and an HTML page under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [r.figures() for r in runs]
    summary: dict[str, Any] = {"protocol": "FVC (genuine: all impression pairs; impostor: first impressions)",
               "machine_load_1_5_15": load, "runs": rows, "mean_eer": _mean_eer(rows),
               "note": "ZeroFMR equals FMR100 and FMR1000 with 45 impostor pairs per database",
               "times": "wall-clock ms (time.perf_counter) at machine_load_1_5_15, not CPU time"}
    (out / "finger-summary.json").write_text(json.dumps(summary, indent=2))
    with (out / "finger-scores.csv").open("w") as f:
        f.write("system,database,genuine,score\n")
        for r in runs:
            for v in r.genuine:
                f.write(f"{r.system},{r.database},1,{v:.6f}\n")
            for v in r.impostor:
                f.write(f"{r.system},{r.database},0,{v:.6f}\n")
    det = out / "finger-det.png"
    plot_det({f"{r.system} {r.database}": (-r.genuine, -r.impostor) for r in runs}, str(det), "FVC protocol")
    page = out / "finger-report.html"
    page.write_text(_html(rows, summary, det.name))
    return {"summary": str(out / "finger-summary.json"), "scores": str(out / "finger-scores.csv"),
            "det": str(det), "report": str(page)}


def _mean_eer(rows: list[dict[str, object]]) -> dict[str, float]:
    by: dict[str, list[float]] = {}
    for r in rows:
        by.setdefault(str(r["system"]), []).append(float(r["eer"]))  # type: ignore[arg-type]
    return {k: float(np.mean(v)) for k, v in by.items()}


def _html(rows: list[dict[str, object]], summary: dict[str, object], det: str) -> str:
    def pct(v: object) -> str:
        return f"{100 * float(v):.2f} %"  # type: ignore[arg-type]

    def ms(v: object) -> str:
        return "–" if v is None else f"{float(v):.2f}"  # type: ignore[arg-type]

    body = "".join(
        f"<tr><td>{html.escape(str(r['system']))}</td><td>{html.escape(str(r['database']))}</td>"
        f"<td>{pct(r['eer'])}</td><td>{pct(r['fmr100'])}</td><td>{pct(r['fmr1000'])}</td>"
        f"<td>{pct(r['zero_fmr'])}</td><td>{r['fte']}</td><td>{ms(r['extract_ms_median'])}</td>"
        f"<td>{ms(r['match_ms_median'])}</td></tr>" for r in rows)
    load = " / ".join(f"{x:.2f}" for x in summary["machine_load_1_5_15"])  # type: ignore[attr-defined]
    means = ", ".join(f"{html.escape(k)}: {100 * v:.2f} %" for k, v in summary["mean_eer"].items())  # type: ignore[attr-defined]
    return (
        "<!doctype html><meta charset='utf-8'><title>Limen fingerprint lab</title>"
        "<h1>Fingerprint verification — FVC protocol</h1>"
        f"<p>{html.escape(str(summary['protocol']))}. Mean EER: {means}. Machine load (1/5/15 min): {load}."
        " Times are wall-clock (time.perf_counter), median per image / per comparison, at the machine load"
        " shown: not CPU time, and slower than one quiet core when the load exceeds the cores.</p>"
        "<table border=1 cellpadding=4><tr><th>system</th><th>database</th><th>EER</th><th>FMR100</th>"
        "<th>FMR1000</th><th>ZeroFMR</th><th>FTE</th><th>extract ms</th><th>match ms</th></tr>"
        f"{body}</table><p>{html.escape(str(summary['note']))}.</p><img src='{html.escape(det)}' alt='DET curve'>"
    )


def pair_features(samples: list[FvcSample]) -> tuple[np.ndarray, np.ndarray]:
    """`matcher.features` and labels (1 = same finger) of every pair of impressions of one database:
    all genuine pairs and all impostor pairs (every impression, not only the first).  FTEs are left out."""
    x, y, _ = pair_evidence(samples)
    return x, y


def pair_evidence(samples: list[FvcSample]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`pair_features` and, per pair, whether the FVC protocol compares it (every genuine pair; impostors:
    first impressions only)."""
    prepared: dict[int, matcher.PreparedTemplate] = {}
    for k, s in enumerate(samples):
        try:
            prepared[k] = matcher.prepare(extract_file(s.path))
        except BadImage:
            continue
    rows, labels, fvc = [], [], []
    first = {s.finger: min(t.impression for t in samples if t.finger == s.finger) for s in samples}
    for a in prepared:
        for b in prepared:
            sa, sb = samples[a], samples[b]
            if (sa.finger, sa.impression) < (sb.finger, sb.impression):
                rows.append(matcher.features(prepared[a], prepared[b]))
                labels.append(int(sa.finger == sb.finger))
                fvc.append(sa.finger == sb.finger or (sa.impression == first[sa.finger]
                                                      and sb.impression == first[sb.finger]))
    return np.array(rows), np.array(labels), np.array(fvc, bool)


@dataclass(frozen=True)
class ScoreFit:
    """Weights and bias of the matcher's score (FINGER_MATCH_WEIGHTS / _BIAS) and how they generalise."""

    weights: tuple[float, ...]
    bias: float
    leave_one_out_eer: dict[str, float]     # database → EER (all pairs) scored by weights fitted on the others
    leave_one_out_fvc_eer: dict[str, float] = field(default_factory=dict)   # … on its FVC-protocol pairs only


def fit_score(databases: dict[str, tuple[np.ndarray, np.ndarray]],
              fvc: dict[str, np.ndarray] | None = None) -> ScoreFit:
    """A class-balanced logistic model on `pair_features` of every database (lab extra: scikit-learn),
    and leave-one-database-out EERs: the figure that says whether the weights carry to another sensor —
    over all pairs, and over the FVC protocol's pairs of each database where `fvc` gives their masks."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 - lab extra

    def fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
        mu, sd = x.mean(0), x.std(0) + 1e-9
        model = LogisticRegression(C=1.0, max_iter=5000, class_weight="balanced").fit((x - mu) / sd, y)
        w = model.coef_[0] / sd
        return w, float(model.intercept_[0] - np.dot(w, mu))

    names = sorted(databases)
    held: dict[str, float] = {}
    held_fvc: dict[str, float] = {}
    for name in names:
        x = np.concatenate([databases[n][0] for n in names if n != name])
        y = np.concatenate([databases[n][1] for n in names if n != name])
        if len(names) < 2 or y.min() == y.max():
            break
        w, b = fit(x, y)
        xs, ys = databases[name]
        z = xs @ w + b
        held[name] = equal_error_rate(-z[ys == 1], -z[ys == 0])[0]
        if fvc is not None and name in fvc:
            m = fvc[name]
            held_fvc[name] = equal_error_rate(-z[m & (ys == 1)], -z[m & (ys == 0)])[0]
    w, b = fit(np.concatenate([databases[n][0] for n in names]), np.concatenate([databases[n][1] for n in names]))
    return ScoreFit(tuple(round(float(v), 4) for v in w), round(b, 4), held, held_fvc)


@dataclass(frozen=True)
class ProtectionFigures:
    database: str
    fte: int
    eer_unprotected: float
    eer_protected_mean: float
    eer_protected_worst: float
    unlinkability: dict[str, float]


def protection_figures(database: str, samples: list[FvcSample], devices: int = 3) -> ProtectionFigures:
    """The `limen lab protection` figures for the fixed-length vector (bio.finger.fixed) of one database.

    EER of the vector before protection (angle) and after the vault's keyed sign projection
    (normalised Hamming), over `devices` random device keys, on the FVC pairs; and unlinkability
    D↔sys of the same prints enrolled on two devices.  FTEs are left out (counted).
    """
    from limen.bio.finger.fixed import fixed_vector
    from limen.lab.protection import accuracy, unlinkability
    from limen.vault.lab import DeviceTransform

    vectors: dict[str, np.ndarray] = {}
    for s in samples:
        try:
            vectors[s.path.name] = fixed_vector(extract_file(s.path))
        except BadImage:
            continue
    genuine, impostor = fvc_pairs(samples)
    pairs = [(samples[a].path.name, samples[b].path.name, g) for g, group in ((True, genuine), (False, impostor))
             for a, b in group if samples[a].path.name in vectors and samples[b].path.name in vectors]
    transforms = [DeviceTransform() for _ in range(devices)]
    result = accuracy(database, (vectors, pairs), transforms)
    names = sorted(vectors)
    ids = [n.split("_")[0] for n in names]
    link = unlinkability(np.stack([vectors[n] for n in names]), ids, transforms[0], transforms[1 % devices])
    return ProtectionFigures(database, len(samples) - len(vectors), result.raw["eer"], result.protected["eer"],
                             result.protected_worst["eer"], link)


if __name__ == "__main__":
    import sys

    folders = [Path(a) for a in sys.argv[1:]]
    if not folders:
        sys.exit("usage: python -m limen.lab.finger FOLDER… (fits FINGER_MATCH_WEIGHTS on FVC databases)")
    evidence = {f.name: pair_evidence(fvc_samples(f)) for f in folders}
    result = fit_score({k: (x, y) for k, (x, y, _) in evidence.items()}, {k: m for k, (_, _, m) in evidence.items()})
    for name, eer in result.leave_one_out_eer.items():
        print(f"{name}: EER {100 * eer:.2f} % all pairs, {100 * result.leave_one_out_fvc_eer[name]:.2f} % FVC "
              "protocol, with weights fitted on the other databases")
    print(f"FINGER_MATCH_WEIGHTS = {result.weights}")
    print(f"FINGER_MATCH_BIAS = {result.bias}")
