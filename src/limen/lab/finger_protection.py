"""`limen lab finger --protected`: what the protected fingerprint code costs and what it protects.

Two codes: `bio.finger.fixed`'s spectral minutiae under a device's `SpectralKey`, and
`bio.finger.cylinders`' protected Minutia Cylinder-Code under a `CylinderKey` (`cylinder_code`, with encoding
and comparison CPU times).  For each, on one FVC database:

- **accuracy**: EER on the FVC pairs of the minutiae matcher (what the lock decides on), of the unprotected
  spectral code, and of the protected code under `devices` random keys (mean and worst) — the accuracy loss;
- **unlinkability**: D↔sys (Gomez-Barrero et al. 2018) between codes of the database's prints made under two
  device keys (mated: the same finger), with a same-key control and the estimator's shuffled-label floor; for
  the cylinder code also of the number of strings alone (`d_sys_count_*`: 0 now that every code holds
  FINGER_MCC_STRINGS);
- **an inversion attempt**: an attacker who holds the device key and one stored code hill-climbs a random
  minutiae set until its code matches.  Reported: how often the forgery passes the *protected* comparison at
  the protected EER threshold (a key holder can forge a probe for that device), and how often it passes the
  *minutiae matcher* at FINGER_MATCH_DEFAULT against the finger's other impressions (irreversibility).

Development data only: the codes' parameters were chosen on these same images.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from limen import thresholds
from limen.bio.finger import cylinders, matcher
from limen.bio.finger.cylinders import CylinderKey, ProtectedFingerCode
from limen.bio.finger.extract import extract_file
from limen.bio.finger.fixed import SpectralKey, protected_similarity, spectral_minutiae, spectral_similarity
from limen.bio.finger.template import FingerTemplate, Minutia, MinutiaType
from limen.errors import BadImage
from limen.lab.finger import fvc_pairs, fvc_samples
from limen.lab.metrics import equal_error_rate
from limen.lab.protection import linkability

Pairs = tuple[list[tuple[str, str]], list[tuple[str, str]]]  # (genuine, impostor) sample names
Code = TypeVar("Code")


@dataclass(frozen=True)
class InversionFigures:
    targets: int
    iterations: int
    passes_protected: int           # forged code accepted by the protected comparison (same key)
    passes_minutiae: int            # forged minutiae accepted by the minutiae matcher (irreversibility broken)
    best_minutiae_score: float      # the forgeries' best minutiae-matcher score, for scale …
    genuine_median_score: float     # … beside the median genuine score of that database


@dataclass(frozen=True)
class CylinderFigures:
    """The protected Minutia Cylinder-Code on one database (EERs on the same FVC pairs as the spectral code's)."""

    eer_unprotected: float          # bit-based MCC, Local Similarity Sort, before the keyed projection
    eer_protected_mean: float
    eer_protected_worst: float
    eer_protected_all_impostors: float      # first key, every pair of impressions of different fingers
    eer_fused_with_minutiae: float  # minutiae score + protected code, as FMR decades added (`_decades`)
    unlinkability: dict[str, float] = field(default_factory=dict)
    inversion: InversionFigures | None = None
    encode_ms: tuple[float, float] = (0.0, 0.0)     # CPU per template, median and p95
    compare_ms: tuple[float, float] = (0.0, 0.0)    # CPU per comparison of two protected codes, median and p95
    code_bytes_median: int = 0


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
    cylinder_code: CylinderFigures | None = None


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
    genuine_median = float(np.median(genuine_scores))
    inversion = invert_codes(usable, keys[0], protected[0][1], genuine_median,
                             inversion_targets, inversion_iterations, seed) if inversion_targets else None
    cylinder = evaluate_cylinders(usable, pairs, genuine_median, devices=devices,
                                  inversion_targets=inversion_targets, inversion_iterations=inversion_iterations,
                                  seed=seed)
    return SpectralProtectionFigures(database, len(templates) - len(usable), eer_minutiae, eer_raw,
                                     float(np.mean([e for e, _ in protected])), max(e for e, _ in protected),
                                     link, inversion, cylinder)


def _cpu_ms(run: Callable[[], object]) -> float:
    start = time.process_time()
    run()
    return 1000 * (time.process_time() - start)


def _median_p95(ms: list[float]) -> tuple[float, float]:
    return float(np.median(ms)), float(np.percentile(ms, 95))


def _all_impostors(names: Sequence[str]) -> list[tuple[str, str]]:
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if _finger(a) != _finger(b)]


def _decades(impostor: np.ndarray) -> Callable[[float], float]:
    """A score → −log10 of the share of `impostor` scores at or above it (floored at one in their number)."""
    ranked = np.sort(impostor)

    def decades(score: float) -> float:
        above = ranked.size - int(np.searchsorted(ranked, score, "left"))
        return float(-np.log10(max(above, 1) / ranked.size))
    return decades


def _fused_eer(minutiae: Callable[[str, str], float], code: Callable[[str, str], float], pairs: Pairs,
               impostors: list[tuple[str, str]]) -> float:
    """EER of the minutiae and code scores added as FMR decades, each scaled by its own impostor scores
    (`impostors`: every pair of different fingers; development data: the FVC impostor pairs are among them)."""
    dm = _decades(np.array([minutiae(a, b) for a, b in impostors]))
    dc = _decades(np.array([code(a, b) for a, b in impostors]))
    return _eer(lambda a, b: dm(minutiae(a, b)) + dc(code(a, b)), pairs)[0]


def evaluate_cylinders(usable: dict[str, FingerTemplate], pairs: Pairs, genuine_median: float, *,
                       devices: int = 3, inversion_targets: int = 5, inversion_iterations: int = 300,
                       seed: int = 0) -> CylinderFigures:
    """The protected Minutia Cylinder-Code's figures on one database's usable templates and FVC pairs."""
    cyl = {n: cylinders.cylinders(t) for n, t in usable.items()}
    prepared = {n: matcher.prepare(t) for n, t in usable.items()}
    keys = [CylinderKey(os.urandom(32)) for _ in range(devices)]
    encode_ms = [_cpu_ms(lambda t=t: keys[0].protect(t)) for t in usable.values()]   # type: ignore[misc]
    codes = [{n: k.protect_cylinders(c) for n, c in cyl.items()} for k in keys]
    eer_raw, _ = _eer(lambda a, b: cylinders.unprotected_similarity(cyl[a], cyl[b]), pairs)
    protected = [_eer(_comparing_codes(c), pairs) for c in codes]
    impostors = _all_impostors(sorted(usable))
    everyone = _eer(_comparing_codes(codes[0]), (pairs[0], impostors))[0]
    fused = _fused_eer(lambda a, b: matcher.similarity(prepared[a], prepared[b]), _comparing_codes(codes[0]),
                       pairs, impostors)
    first = codes[0]
    compare_ms = [_cpu_ms(lambda a=a, b=b: cylinders.compare(first[a], first[b]))  # type: ignore[misc]
                  for a, b in pairs[0] + pairs[1]]
    other = codes[1 % devices]
    link = linkability_figures(sorted(cyl), first.__getitem__, other.__getitem__, cylinders.compare)
    count = linkability_figures(sorted(cyl), lambda n: len(first[n]), lambda n: len(other[n]),
                                lambda x, y: -abs(x - y))
    link |= {"d_sys_count_two_devices": count["d_sys_two_devices"],
             "d_sys_count_floor_shuffled_labels": count["d_sys_estimator_floor_shuffled_labels"]}
    inversion = invert(usable, keys[0].protect, cylinders.compare, protected[0][1], genuine_median,
                       inversion_targets, inversion_iterations, seed) if inversion_targets else None
    return CylinderFigures(eer_raw, float(np.mean([e for e, _ in protected])), max(e for e, _ in protected),
                           everyone, fused, link, inversion, _median_p95(encode_ms), _median_p95(compare_ms),
                           int(np.median([len(c.to_bytes()) for c in first.values()])))


def _comparing_codes(codes: dict[str, ProtectedFingerCode]) -> Callable[[str, str], float]:
    return lambda a, b: cylinders.compare(codes[a], codes[b])


def _comparing(codes: dict[str, np.ndarray]) -> Callable[[str, str], float]:
    return lambda a, b: protected_similarity(codes[a], codes[b])


def _finger(name: str) -> str:
    return name.split("_")[0]


def unlinkability_figures(spectra: dict[str, np.ndarray], a: SpectralKey, b: SpectralKey) -> dict[str, float]:
    """D↔sys of spectral codes made under keys `a` and `b` (mated: same finger), a same-key control, the floor."""
    return linkability_figures(sorted(spectra), lambda n: a.protect_spectrum(spectra[n]),
                               lambda n: b.protect_spectrum(spectra[n]), protected_similarity)


def linkability_figures(names: Sequence[str], code_a: Callable[[str], Code], code_b: Callable[[str], Code],
                        similarity: Callable[[Code, Code], float]) -> dict[str, float]:
    """D↔sys of the codes of `names` under two keys (mated: same finger), a same-key control, the floor."""
    under_a = {n: code_a(n) for n in names}
    under_b = {n: code_b(n) for n in names}
    cross_mated: list[float] = []
    cross_non: list[float] = []
    same_mated: list[float] = []
    same_non: list[float] = []
    for i, x in enumerate(names):
        for j, y in enumerate(names):
            mated = _finger(x) == _finger(y)
            (cross_mated if mated else cross_non).append(similarity(under_a[x], under_b[y]))
            if j > i:
                (same_mated if mated else same_non).append(similarity(under_a[x], under_a[y]))
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


def hill_climb(target: Code, protect: Callable[[FingerTemplate], Code], similarity: Callable[[Code, Code], float],
               width: int, height: int, count: int, iterations: int, rng: np.random.Generator
               ) -> tuple[FingerTemplate, float]:
    """A minutiae set whose code (`protect`: under the attacker's key) comes as close to `target` as
    `iterations` random moves get."""
    xy = rng.uniform((0, 0), (width, height), size=(count, 2))
    ang = rng.uniform(0, 2 * np.pi, count)
    best = similarity(protect(_synthetic(width, height, xy, ang)), target)
    for _ in range(iterations):
        k = int(rng.integers(count))
        old = xy[k].copy(), float(ang[k])
        if rng.random() < 0.2:
            xy[k], ang[k] = rng.uniform((0, 0), (width, height)), rng.uniform(0, 2 * np.pi)
        else:
            xy[k] = np.clip(xy[k] + rng.normal(0, 15, 2), 0, (width - 1, height - 1))
            ang[k] = ang[k] + rng.normal(0, 0.4)
        score = similarity(protect(_synthetic(width, height, xy, ang)), target)
        if score >= best:
            best = score
        else:
            xy[k], ang[k] = old
    return _synthetic(width, height, xy, ang), best


def invert_codes(templates: dict[str, FingerTemplate], key: SpectralKey, protected_threshold: float,
                 genuine_median: float, targets: int, iterations: int, seed: int = 0) -> InversionFigures:
    """The inversion attempt of the module docstring against the spectral code."""
    return invert(templates, key.protect, protected_similarity, protected_threshold, genuine_median, targets,
                  iterations, seed)


def invert(templates: dict[str, FingerTemplate], protect: Callable[[FingerTemplate], Code],
           similarity: Callable[[Code, Code], float], protected_threshold: float, genuine_median: float,
           targets: int, iterations: int, seed: int = 0) -> InversionFigures:
    """The inversion attempt of the module docstring on the first impression of `targets` fingers: does the
    forgery's code pass the code's comparison at `protected_threshold` against the finger's other impressions,
    and do its minutiae pass the minutiae matcher at FINGER_MATCH_DEFAULT?"""
    rng = np.random.default_rng(seed)
    fingers = sorted({_finger(n) for n in templates})[:targets]
    passes_protected = passes_minutiae = 0
    best_score = 0.0
    for f in fingers:
        mine = sorted((n for n in templates if _finger(n) == f), key=lambda n: int(n.split("_")[1]))
        stolen = templates[mine[0]]
        forged, _ = hill_climb(protect(stolen), protect, similarity, stolen.width, stolen.height,
                               len(stolen.minutiae), iterations, rng)
        others: Sequence[FingerTemplate] = [templates[n] for n in mine[1:]] or [stolen]
        forged_code = protect(forged)
        if max(similarity(forged_code, protect(t)) for t in others) >= protected_threshold:
            passes_protected += 1
        score = max(matcher.similarity(matcher.prepare(forged), matcher.prepare(t)) for t in others)
        best_score = max(best_score, score)
        passes_minutiae += score >= thresholds.FINGER_MATCH_DEFAULT
    return InversionFigures(len(fingers), iterations, passes_protected, passes_minutiae, best_score, genuine_median)
