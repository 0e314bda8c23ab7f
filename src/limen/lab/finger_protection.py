"""`limen lab finger --protected`: what the protected fingerprint code costs and what it protects.

The code is `bio.finger.fixed`'s spectral minutiae under a device's `SpectralKey`.  On one FVC database:

- **accuracy**: EER on the FVC pairs of the minutiae matcher (what the lock decides on), of the unprotected
  spectral code, and of the protected code under `devices` random keys (mean and worst) — the accuracy loss;
- **unlinkability**: D↔sys (Gomez-Barrero et al. 2018) between codes of the database's prints made under two
  device keys (mated: the same finger), with a same-key control and the estimator's shuffled-label floor;
- **an inversion attempt**: an attacker who holds the device key and one stored code hill-climbs a random
  minutiae set until its code matches.  Reported: how often the forgery passes the *protected* comparison at
  the protected EER threshold (a key holder can forge a probe for that device), and how often it passes the
  *minutiae matcher* at FINGER_MATCH_DEFAULT against the finger's other impressions (irreversibility).

Development data only: the code's parameters were chosen on these same images.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from limen import thresholds
from limen.bio.finger import matcher
from limen.bio.finger.extract import extract_file
from limen.bio.finger.fixed import SpectralKey, protected_similarity, spectral_minutiae, spectral_similarity
from limen.bio.finger.template import FingerTemplate, Minutia, MinutiaType
from limen.errors import BadImage
from limen.lab.finger import fvc_pairs, fvc_samples
from limen.lab.metrics import equal_error_rate
from limen.lab.protection import linkability

Pairs = tuple[list[tuple[str, str]], list[tuple[str, str]]]  # (genuine, impostor) sample names


@dataclass(frozen=True)
class InversionFigures:
    targets: int
    iterations: int
    passes_protected: int           # forged code accepted by the protected comparison (same key)
    passes_minutiae: int            # forged minutiae accepted by the minutiae matcher (irreversibility broken)
    best_minutiae_score: float      # the forgeries' best minutiae-matcher score, for scale …
    genuine_median_score: float     # … beside the median genuine score of that database


@dataclass(frozen=True)
class SpectralProtectionFigures:
    database: str
    fte: int
    eer_minutiae: float
    eer_unprotected: float
    eer_protected_mean: float
    eer_protected_worst: float
    unlinkability: dict[str, float] = field(default_factory=dict)
    inversion: InversionFigures | None = None


def _eer(score: Callable[[str, str], float], pairs: Pairs) -> tuple[float, float]:
    """(EER, threshold) of a similarity over the pairs (the metrics module works on distances)."""
    genuine = np.array([score(a, b) for a, b in pairs[0]])
    impostor = np.array([score(a, b) for a, b in pairs[1]])
    eer, threshold = equal_error_rate(-genuine, -impostor)
    return eer, -threshold


def samples_of(folder: Path) -> tuple[dict[str, FingerTemplate | None], Pairs]:
    """Templates (None: failure to enrol) and FVC pairs of the `FFF_I` images in `folder`."""
    samples = fvc_samples(folder)
    templates: dict[str, FingerTemplate | None] = {}
    for s in samples:
        try:
            templates[s.path.stem] = extract_file(s.path)
        except BadImage:
            templates[s.path.stem] = None
    genuine, impostor = fvc_pairs(samples)
    return templates, ([(samples[a].path.stem, samples[b].path.stem) for a, b in genuine],
                       [(samples[a].path.stem, samples[b].path.stem) for a, b in impostor])


def evaluate(database: str, templates: dict[str, FingerTemplate | None], pairs: Pairs, *, devices: int = 3,
             inversion_targets: int = 5, inversion_iterations: int = 300, seed: int = 0
             ) -> SpectralProtectionFigures:
    """The figures for one database; `templates` by sample name (None: a failure to enrol, left out)."""
    usable = {n: t for n, t in templates.items() if t is not None}
    pairs = ([p for p in pairs[0] if p[0] in usable and p[1] in usable],
             [p for p in pairs[1] if p[0] in usable and p[1] in usable])
    prepared = {n: matcher.prepare(t) for n, t in usable.items()}
    spectra = {n: spectral_minutiae(t) for n, t in usable.items()}
    keys = [SpectralKey(os.urandom(32)) for _ in range(devices)]
    codes = [{n: k.protect_spectrum(s) for n, s in spectra.items()} for k in keys]
    eer_minutiae, _ = _eer(lambda a, b: matcher.similarity(prepared[a], prepared[b]), pairs)
    eer_raw, _ = _eer(lambda a, b: spectral_similarity(spectra[a], spectra[b]), pairs)
    protected = [_eer(_comparing(c), pairs) for c in codes]
    link = unlinkability_figures(spectra, keys[0], keys[1 % devices])
    genuine_scores = [matcher.similarity(prepared[a], prepared[b]) for a, b in pairs[0]]
    inversion = invert_codes(usable, keys[0], protected[0][1], float(np.median(genuine_scores)),
                             inversion_targets, inversion_iterations, seed) if inversion_targets else None
    return SpectralProtectionFigures(database, len(templates) - len(usable), eer_minutiae, eer_raw,
                                     float(np.mean([e for e, _ in protected])), max(e for e, _ in protected),
                                     link, inversion)


def _comparing(codes: dict[str, np.ndarray]) -> Callable[[str, str], float]:
    return lambda a, b: protected_similarity(codes[a], codes[b])


def _finger(name: str) -> str:
    return name.split("_")[0]


def unlinkability_figures(spectra: dict[str, np.ndarray], a: SpectralKey, b: SpectralKey) -> dict[str, float]:
    """D↔sys of codes made under keys `a` and `b` (mated: same finger), a same-key control, the floor."""
    names = sorted(spectra)
    code_a = {n: a.protect_spectrum(spectra[n]) for n in names}
    code_b = {n: b.protect_spectrum(spectra[n]) for n in names}
    cross_mated: list[float] = []
    cross_non: list[float] = []
    same_mated: list[float] = []
    same_non: list[float] = []
    for i, x in enumerate(names):
        for j, y in enumerate(names):
            mated = _finger(x) == _finger(y)
            (cross_mated if mated else cross_non).append(protected_similarity(code_a[x], code_b[y]))
            if j > i:
                (same_mated if mated else same_non).append(protected_similarity(code_a[x], code_a[y]))
    m, nm = np.array(cross_mated), np.array(cross_non)
    pooled = np.random.default_rng(0).permutation(np.concatenate([m, nm]))
    return {
        "d_sys_two_devices": linkability(m, nm),
        "d_sys_estimator_floor_shuffled_labels": linkability(pooled[: m.size], pooled[m.size:]),
        "d_sys_control_same_device": linkability(np.array(same_mated), np.array(same_non)),
        "mated_comparisons": float(m.size),
        "non_mated_comparisons": float(nm.size),
    }


def _synthetic(width: int, height: int, xy: np.ndarray, ang: np.ndarray) -> FingerTemplate:
    minutiae = tuple(Minutia(int(round(x)), int(round(y)), float(a % (2 * np.pi)), MinutiaType.ENDING, 50)
                     for (x, y), a in zip(xy, ang, strict=True))
    return FingerTemplate(width, height, 500, minutiae)


def hill_climb(target: np.ndarray, key: SpectralKey, width: int, height: int, count: int, iterations: int,
               rng: np.random.Generator) -> tuple[FingerTemplate, float]:
    """A minutiae set whose code under `key` comes as close to `target` as `iterations` random moves get."""
    xy = rng.uniform((0, 0), (width, height), size=(count, 2))
    ang = rng.uniform(0, 2 * np.pi, count)
    best = protected_similarity(key.protect(_synthetic(width, height, xy, ang)), target)
    for _ in range(iterations):
        k = int(rng.integers(count))
        old = xy[k].copy(), float(ang[k])
        if rng.random() < 0.2:
            xy[k], ang[k] = rng.uniform((0, 0), (width, height)), rng.uniform(0, 2 * np.pi)
        else:
            xy[k] = np.clip(xy[k] + rng.normal(0, 15, 2), 0, (width - 1, height - 1))
            ang[k] = ang[k] + rng.normal(0, 0.4)
        score = protected_similarity(key.protect(_synthetic(width, height, xy, ang)), target)
        if score >= best:
            best = score
        else:
            xy[k], ang[k] = old
    return _synthetic(width, height, xy, ang), best


def invert_codes(templates: dict[str, FingerTemplate], key: SpectralKey, protected_threshold: float,
                 genuine_median: float, targets: int, iterations: int, seed: int = 0) -> InversionFigures:
    """The inversion attempt of the module docstring on the first impression of `targets` fingers."""
    rng = np.random.default_rng(seed)
    fingers = sorted({_finger(n) for n in templates})[:targets]
    passes_protected = passes_minutiae = 0
    best_score = 0.0
    for f in fingers:
        mine = sorted((n for n in templates if _finger(n) == f), key=lambda n: int(n.split("_")[1]))
        stolen = templates[mine[0]]
        forged, _ = hill_climb(key.protect(stolen), key, stolen.width, stolen.height, len(stolen.minutiae),
                               iterations, rng)
        others: Sequence[FingerTemplate] = [templates[n] for n in mine[1:]] or [stolen]
        forged_code = key.protect(forged)
        if max(protected_similarity(forged_code, key.protect(t)) for t in others) >= protected_threshold:
            passes_protected += 1
        score = max(matcher.similarity(matcher.prepare(forged), matcher.prepare(t)) for t in others)
        best_score = max(best_score, score)
        passes_minutiae += score >= thresholds.FINGER_MATCH_DEFAULT
    return InversionFigures(len(fingers), iterations, passes_protected, passes_minutiae, best_score, genuine_median)
