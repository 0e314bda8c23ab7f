"""The protected Minutia Cylinder-Code in the lock's protocol (enrol several impressions, probe with the others).

    OPENBLAS_NUM_THREADS=1 python bench/finger_protection_lock.py ../shared/data/fvc2002/DB{1,2,3,4}_B \\
        [--triples first|all] [--bits 256] [--keys 1] [--cache DIR]

The lock enrols FINGER_CONSOLE_CAPTURES = 3 impressions a finger and scores a probe by the best of them.  Here:
enrol impressions 1-3 of every finger (`--triples all`: each of the 56 triples of impression numbers in turn,
the same for every finger), probe with the other impressions against every finger's reference.  Genuine: a
probe against its own finger; impostor: against every other finger.  Methods:

- `minutiae`: the minutiae matcher (what the lock decides on), best over the enrolled impressions;
- `code-lss`: the variable-count protected code (before 2 Dec 2026) under MCC's Local Similarity Sort (the
  comparison before 1 Dec 2026), best over the enrolled impressions;
- `code-variable`: the variable-count code (one string per cylinder, before 2 Dec 2026) under
  `cylinders.compare` (one-to-one assignment), best over the impressions;
- `code`: the stored code as now — FINGER_MCC_STRINGS strings, decoys included (`CylinderKey.protect`) —
  against the probe's strings (`CylinderKey.probe`), best over the impressions;
- `code-union`: one reference per finger, the union of its impressions' stored codes, compared once.

Unlinkability, per database and key, of the variable-count and the fixed-count codes: D↔sys (Gomez-Barrero et
al.) between every impression's code under the run's key and under a second random key (mated: the same finger,
the same impression included), of the full comparison (`bits`) and of the number of strings alone (`count`, the
stored header), each beside the estimator's shuffled-label floor.

Prints EER and FNMR at FMR 1e-2 / 1e-3 per database and the mean, with the machine load; writes
bench/results/finger_protection_lock.json.  FVC2002 B is development data.  With 10 fingers a database has
50 genuine and 450 impostor scores per triple: FMR 1e-3 there means no impostor above the threshold; the 56
triples reuse the same images (the scores are not independent).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
from itertools import combinations
from pathlib import Path

import numpy as np

from limen import thresholds
from limen.bio.finger import cylinders, matcher
from limen.bio.finger.cylinders import CylinderKey, ProtectedFingerCode
from limen.bio.finger.extract import extract_file
from limen.bio.finger.template import FingerTemplate
from limen.errors import BadImage
from limen.lab.finger import fvc_samples
from limen.lab.finger_protection import linkability_figures
from limen.lab.metrics import equal_error_rate

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("minutiae", "code-lss", "code-variable", "code", "code-union")


def templates(folder: Path, cache: Path | None) -> dict[tuple[int, int], FingerTemplate]:
    """(finger, impression) → template; failures to enrol left out."""
    path = cache / f"templates_{folder.name}.pkl" if cache else None
    if path and path.exists():
        named = pickle.loads(path.read_bytes())
    else:
        named = {}
        for s in fvc_samples(folder):
            try:
                named[s.path.stem] = extract_file(s.path)
            except BadImage:
                named[s.path.stem] = None
        if path:
            path.write_bytes(pickle.dumps(named))
    return {(int(n.split("_")[0]), int(n.split("_")[1])): t for n, t in named.items() if t is not None}


def figures(genuine: list[float], impostor: list[float]) -> dict[str, float]:
    g, i = np.asarray(genuine), np.asarray(impostor)
    out = {"eer": float(equal_error_rate(-g, -i)[0]), "genuine": float(g.size), "impostor": float(i.size),
           "impostor_mean": float(i.mean()), "impostor_p99": float(np.percentile(i, 99)),
           "genuine_median": float(np.median(g))}
    ranked = np.sort(i)[::-1]
    for fmr in (1e-2, 1e-3):
        allowed = int(np.floor(fmr * i.size))          # impostors allowed above the threshold
        out[f"fnmr_at_fmr_{fmr:g}"] = float(np.mean(g <= ranked[allowed]))
    return out


def unlinkability(ts: dict[tuple[int, int], FingerTemplate], secrets: tuple[bytes, bytes], bits: int
                  ) -> dict[str, dict[str, float]]:
    """D↔sys across two keys of the full comparison and of the string count, variable and fixed codes."""
    names = [f"{f}_{k}" for f, k in sorted(ts)]
    template = {f"{f}_{k}": t for (f, k), t in ts.items()}
    out: dict[str, dict[str, float]] = {}
    for form, strings in (("variable", 0), ("fixed", thresholds.FINGER_MCC_STRINGS)):
        a, b = (CylinderKey(k, bits=bits, strings=strings) for k in secrets)
        ca, cb = {n: a.protect(template[n]) for n in names}, {n: b.protect(template[n]) for n in names}
        na, nb = {n: len(c) for n, c in ca.items()}, {n: len(c) for n, c in cb.items()}
        full = linkability_figures(names, ca.__getitem__, cb.__getitem__, cylinders.compare)
        count = linkability_figures(names, na.__getitem__, nb.__getitem__, lambda x, y: -abs(x - y))
        out[form] = {"bits": full["d_sys_two_devices"], "bits_floor": full["d_sys_estimator_floor_shuffled_labels"],
                     "count": count["d_sys_two_devices"],
                     "count_floor": count["d_sys_estimator_floor_shuffled_labels"],
                     "strings_min": float(min(len(c) for c in ca.values())),
                     "strings_max": float(max(len(c) for c in ca.values()))}
    return out


def database(folder: Path, triples: str, secret: bytes, bits: int, cache: Path | None
             ) -> dict[str, dict[str, float]]:
    ts = templates(folder, cache)
    names = sorted(ts)
    index = {n: k for k, n in enumerate(names)}
    prepared = [matcher.prepare(ts[n]) for n in names]
    key, variable = CylinderKey(secret, bits=bits), CylinderKey(secret, bits=bits, strings=0)
    before = [variable.protect(ts[n]) for n in names]
    codes = [key.protect(ts[n]) for n in names]
    probes = [key.probe(ts[n]) for n in names]
    pairwise = {
        "minutiae": lambda p, r: matcher.similarity(prepared[p], prepared[r]),
        "code-lss": lambda p, r: cylinders.local_similarity_sort(cylinders.code_similarities(before[p], before[r])),
        "code-variable": lambda p, r: cylinders.compare(before[p], before[r]),
        "code": lambda p, r: cylinders.compare(probes[p], codes[r]),
    }
    memo: dict[tuple[str, int, int], float] = {}
    fingers = sorted({f for f, _ in names})
    scores: dict[str, tuple[list[float], list[float]]] = {m: ([], []) for m in METHODS}
    chosen = [(1, 2, 3)] if triples == "first" else list(combinations(range(1, 9), 3))
    for triple in chosen:
        refs = {f: [index[(f, k)] for k in triple if (f, k) in index] for f in fingers}
        union = {f: ProtectedFingerCode(np.concatenate([codes[r].bits for r in rs])) for f, rs in refs.items() if rs}
        for n in names:
            if n[1] in triple:
                continue
            p = index[n]
            for f, rs in refs.items():
                if not rs:
                    continue
                for m, score in pairwise.items():
                    for r in rs:
                        if (m, p, r) not in memo:       # (setdefault would score every pair again each triple)
                            memo[(m, p, r)] = score(p, r)
                    best = max(memo[(m, p, r)] for r in rs)
                    scores[m][0 if f == n[0] else 1].append(best)
                scores["code-union"][0 if f == n[0] else 1].append(cylinders.compare(probes[p], union[f]))
    return {m: figures(*scores[m]) for m in METHODS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--triples", choices=("first", "all"), default="first")
    ap.add_argument("--bits", type=int, default=thresholds.FINGER_MCC_BITS)
    ap.add_argument("--keys", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=None, help="folder for extracted templates (biometric data)")
    args = ap.parse_args()
    load_start = os.getloadavg()[0]
    runs: list[dict[str, dict[str, dict[str, float]]]] = []
    links: list[dict[str, dict[str, dict[str, float]]]] = []
    for _ in range(args.keys):
        secrets = os.urandom(32), os.urandom(32)
        runs.append({f.name: database(f, args.triples, secrets[0], args.bits, args.cache) for f in args.folders})
        links.append({f.name: unlinkability(templates(f, args.cache), secrets, args.bits) for f in args.folders})
    result: dict[str, object] = {"triples": args.triples, "bits": args.bits, "keys": args.keys,
                                 "strings": thresholds.FINGER_MCC_STRINGS,
                                 "load_1min": [load_start, os.getloadavg()[0]], "runs": runs, "unlinkability": links}
    for m in METHODS:
        per = {db: float(np.mean([r[db][m]["eer"] for r in runs])) for db in runs[0]}
        f2 = np.mean([r[db][m]["fnmr_at_fmr_0.01"] for r in runs for db in r])
        f3 = np.mean([r[db][m]["fnmr_at_fmr_0.001"] for r in runs for db in r])
        print(f"{m:11s} EER " + " ".join(f"{db} {100 * e:5.2f} %" for db, e in per.items())
              + f" | mean {100 * np.mean(list(per.values())):5.2f} % | FNMR@FMR1e-2 {100 * f2:5.1f} %"
              + f" @1e-3 {100 * f3:5.1f} % | impostor mean / p99 "
              + f"{np.mean([r[db][m]['impostor_mean'] for r in runs for db in r]):.3f} / "
              + f"{np.mean([r[db][m]['impostor_p99'] for r in runs for db in r]):.3f}, genuine median "
              + f"{np.mean([r[db][m]['genuine_median'] for r in runs for db in r]):.3f}")
    for form in ("variable", "fixed"):
        link = [r[db][form] for r in links for db in r]
        print(f"{form:8s} code, D↔sys across two keys: count {min(x['count'] for x in link):.3f}–"
              f"{max(x['count'] for x in link):.3f} (floor {min(x['count_floor'] for x in link):.3f}–"
              f"{max(x['count_floor'] for x in link):.3f}), bits {min(x['bits'] for x in link):.3f}–"
              f"{max(x['bits'] for x in link):.3f} (floor {min(x['bits_floor'] for x in link):.3f}–"
              f"{max(x['bits_floor'] for x in link):.3f}); strings {min(x['strings_min'] for x in link):.0f}–"
              f"{max(x['strings_max'] for x in link):.0f}")
    print(f"load (1 min) {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    out = ROOT / "bench" / "results" / "finger_protection_lock.json"
    out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
