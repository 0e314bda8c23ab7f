"""The minutiae-only score (FINGER_MATCH_MINUTIAE_*): the full model's fit on templates without a block field.

A reference without a field (another system's ISO record, or one of Limen's sealed before the field was kept) is
scored by `matcher.similarity` with a logistic model on the first features only, and that score is carried onto
the full model's scale through its FMR 1e-2 / 1e-3 / 1e-4 points.  This refits both exactly as
`python -m limen.lab.finger` fits the full model — every pair of impressions of each database, class-balanced
logistic regression (`finger.fit_score`), leave-one-database-out EERs over all pairs and over the FVC protocol's
pairs — on the same templates with their fields removed (so the pairing kept is the heaviest, as such a reference
gets it), then takes the points as the scores at the same impostor counts as the full model's (115 / 11 / 1 of
11,520 on FVC2002 B).  The extracted templates are cached (`--cache DIR`, pickles of `FingerTemplate`s: biometric
data, lab only).

    python -m limen.lab.finger_minutiae ../shared/data/fvc2002/DB{1,2,3,4}_B [--cache DIR] [--field]
                                        [--references DIR]

(`--field`: the same on the templates as extracted, a check that reproduces the full model's fit.
`--references DIR`: another extractor's cache — e.g. this module run under the code before a fix — as the
references of the same pairs, probed by this extractor's templates; the constants and the refit judged there.)
"""

from __future__ import annotations

import dataclasses
import pickle
import sys
from pathlib import Path

import numpy as np

from limen import thresholds
from limen.bio.finger import matcher
from limen.bio.finger.extract import extract_file
from limen.bio.finger.template import FingerTemplate
from limen.errors import BadImage
from limen.lab.finger import FvcSample, ScoreFit, fit_score, fvc_samples
from limen.lab.metrics import equal_error_rate

FMR_COUNTS = (115, 11, 1)   # impostor pairs at or above each point (FMR 1e-2, 1e-3, 1e-4 of 11,520)


def templates(samples: list[FvcSample], cache: Path | None) -> dict[int, FingerTemplate]:
    """Sample index → extracted template (FTEs left out), read from / written to `cache` when given."""
    if cache is not None and cache.is_file():
        with cache.open("rb") as f:
            kept: dict[int, FingerTemplate] = pickle.load(f)  # noqa: S301 - the lab's own cache
        return kept
    kept = {}
    for k, s in enumerate(samples):
        try:
            kept[k] = extract_file(s.path)
        except BadImage:
            continue
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with cache.open("wb") as f:
            pickle.dump(kept, f)
    return kept


def minutiae_evidence(samples: list[FvcSample], found: dict[int, FingerTemplate], *, field: bool = False,
                      probes: dict[int, FingerTemplate] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`finger.pair_evidence` on the given templates, with their block fields removed unless `field`; with
    `probes` (the same samples extracted otherwise), each pair's later impression is taken from `probes` and
    compared as the probe with the earlier one from `found` as the reference."""
    def ready(t: FingerTemplate) -> matcher.PreparedTemplate:
        return matcher.prepare(t if field else dataclasses.replace(t, field=None))

    prepared = {k: ready(t) for k, t in found.items()}
    probing = prepared if probes is None else {k: ready(t) for k, t in probes.items()}
    rows, labels, fvc = [], [], []
    first = {s.finger: min(t.impression for t in samples if t.finger == s.finger) for s in samples}
    for a in prepared:
        for b in probing:
            sa, sb = samples[a], samples[b]
            if (sa.finger, sa.impression) < (sb.finger, sb.impression):
                rows.append(matcher.features(prepared[a], prepared[b]) if probes is None
                            else matcher.features(probing[b], prepared[a]))
                labels.append(int(sa.finger == sb.finger))
                fvc.append(sa.finger == sb.finger or (sa.impression == first[sa.finger]
                                                      and sb.impression == first[sb.finger]))
    return np.array(rows), np.array(labels), np.array(fvc, bool)


def fmr_points(z: np.ndarray, labels: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The softplus scores with FMR_COUNTS impostor pairs at or above — each the n-th highest impostor score cut
    to 3 decimals, raised by 0.001 while that lets more than n through (ties) — and the genuine pairs' FNMR at
    each."""
    score = np.logaddexp(0.0, z)
    impostor = np.sort(score[labels == 0])[::-1]
    genuine = score[labels == 1]
    points = []
    for n in FMR_COUNTS:
        point = float(np.floor(impostor[n - 1] * 1000) / 1000)
        while np.sum(impostor >= point) > n:
            point = round(point + 0.001, 3)
        points.append(point)
    return tuple(points), tuple(float(np.mean(genuine < p)) for p in points)


def report(name: str, fit: ScoreFit, x: np.ndarray, y: np.ndarray, weights: tuple[float, ...], bias: float
           ) -> None:
    """Held-out EERs of `fit`, and the points / FNMR / in-sample EER of (weights, bias) over all databases."""
    for db, eer in fit.leave_one_out_eer.items():
        print(f"{name} {db}: held out EER {100 * eer:.2f} % all pairs, {100 * fit.leave_one_out_fvc_eer[db]:.2f} % "
              "FVC protocol")
    fvc = np.mean(list(fit.leave_one_out_fvc_eer.values()))
    print(f"{name} mean held out: {100 * fvc:.2f} % FVC, {100 * np.mean(list(fit.leave_one_out_eer.values())):.2f} "
          "% all pairs")
    z = x[:, :len(weights)] @ np.array(weights) + bias
    points, fnmr = fmr_points(z, y)
    counts = [int(np.sum(np.logaddexp(0.0, z[y == 0]) >= p)) for p in points]
    print(f"{name} in-sample EER {100 * equal_error_rate(-z[y == 1], -z[y == 0])[0]:.2f} % all pairs; points "
          f"{points}, impostors at or above {counts}, FNMR {[round(100 * f, 1) for f in fnmr]} %")


def judge(name: str, x: np.ndarray, y: np.ndarray, weights: tuple[float, ...], bias: float,
          points: tuple[float, ...]) -> None:
    """Impostor pairs at or above each point, the genuine pairs' FNMR there, and the EER of (weights, bias)."""
    z = x[:, :len(weights)] @ np.array(weights) + bias
    score = np.logaddexp(0.0, z)
    print(f"{name}: impostors at or above {points}: {[int(np.sum(score[y == 0] >= p)) for p in points]} of "
          f"{int(np.sum(y == 0))}, FNMR {[round(100 * float(np.mean(score[y == 1] < p)), 1) for p in points]} % of "
          f"{int(np.sum(y == 1))}, EER {100 * equal_error_rate(-z[y == 1], -z[y == 0])[0]:.2f} % all pairs")


def main(argv: list[str]) -> None:
    options = {k: Path(argv[argv.index(k) + 1]) for k in ("--cache", "--references") if k in argv}
    cache, older = options.get("--cache"), options.get("--references")
    folders = [Path(a) for a in argv if not a.startswith("--") and Path(a) not in options.values()]
    if not folders:
        sys.exit("usage: python -m limen.lab.finger_minutiae FOLDER… [--cache DIR] [--field] [--references DIR]")
    evidence, mixed = {}, []
    for f in folders:
        samples = fvc_samples(f)
        found = templates(samples, cache / f"{f.name}.pickle" if cache else None)
        evidence[f.name] = minutiae_evidence(samples, found, field="--field" in argv)
        if older is not None:
            mixed.append(minutiae_evidence(samples, templates(samples, older / f"{f.name}.pickle"), probes=found))
    x = np.concatenate([e[0] for e in evidence.values()])
    y = np.concatenate([e[1] for e in evidence.values()])
    n = x.shape[1] if "--field" in argv else len(thresholds.FINGER_MATCH_MINUTIAE_WEIGHTS)
    current = fit_score({k: (e[0][:, :n], e[1]) for k, e in evidence.items()}, {k: e[2] for k, e in evidence.items()})
    report("refit", current, x, y, current.weights, current.bias)
    prefix = "FINGER_MATCH" if "--field" in argv else "FINGER_MATCH_MINUTIAE"
    print(f"{prefix}_WEIGHTS = {current.weights}")
    print(f"{prefix}_BIAS = {current.bias}")
    if "--field" in argv:
        return
    constants = (thresholds.FINGER_MATCH_MINUTIAE_WEIGHTS, thresholds.FINGER_MATCH_MINUTIAE_BIAS,
                 thresholds.FINGER_MATCH_MINUTIAE_FMR_POINTS)
    judge("the constants in thresholds.py", x, y, *constants)
    if mixed:
        xm, ym = np.concatenate([m[0] for m in mixed]), np.concatenate([m[1] for m in mixed])
        refit_points = fmr_points(x[:, :n] @ np.array(current.weights) + current.bias, y)[0]
        judge("references from --references, probes from this extractor: the constants", xm, ym, *constants)
        judge("references from --references, probes from this extractor: the refit", xm, ym, current.weights,
              current.bias, refit_points)


if __name__ == "__main__":
    main(sys.argv[1:])
