"""The protected Minutia Cylinder-Code in the lock's protocol (enrol several impressions, probe with the others).

    OPENBLAS_NUM_THREADS=1 python bench/finger_protection_lock.py ../shared/data/fvc2002/DB{1,2,3,4}_B \\
        [--triples first|all] [--bits 256] [--keys 1] [--cache DIR]

The lock enrols FINGER_CONSOLE_CAPTURES = 3 impressions a finger and scores a probe by the best of them.  Here:
enrol impressions 1-3 of every finger (`--triples all`: each of the 56 triples of impression numbers in turn,
the same for every finger), probe with the other impressions against every finger's reference.  Genuine: a
probe against its own finger; impostor: against every other finger.  Methods:

- `minutiae`: the minutiae matcher (what the lock decides on), best over the enrolled impressions;
- `code-lss`: the protected code under MCC's Local Similarity Sort (the comparison before 1 Dec 2026), best over
  the enrolled impressions;
- `code`: the protected code under `cylinders.compare` (one-to-one assignment), best over the impressions;
- `code-union`: one reference per finger, the union of its impressions' bit strings, compared once by
  `cylinders.compare`.

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
from limen.lab.metrics import equal_error_rate

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("minutiae", "code-lss", "code", "code-union")


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
    out = {"eer": float(equal_error_rate(-g, -i)[0]), "genuine": float(g.size), "impostor": float(i.size)}
    ranked = np.sort(i)[::-1]
    for fmr in (1e-2, 1e-3):
        allowed = int(np.floor(fmr * i.size))          # impostors allowed above the threshold
        out[f"fnmr_at_fmr_{fmr:g}"] = float(np.mean(g <= ranked[allowed]))
    return out


def database(folder: Path, triples: str, key: CylinderKey, cache: Path | None) -> dict[str, dict[str, float]]:
    ts = templates(folder, cache)
    names = sorted(ts)
    index = {n: k for k, n in enumerate(names)}
    prepared = [matcher.prepare(ts[n]) for n in names]
    codes = [key.protect(ts[n]) for n in names]
    pairwise = {
        "minutiae": lambda p, r: matcher.similarity(prepared[p], prepared[r]),
        "code-lss": lambda p, r: cylinders.local_similarity_sort(cylinders.code_similarities(codes[p], codes[r])),
        "code": lambda p, r: cylinders.compare(codes[p], codes[r]),
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
                    best = max(memo.setdefault((m, p, r), score(p, r)) for r in rs)
                    scores[m][0 if f == n[0] else 1].append(best)
                scores["code-union"][0 if f == n[0] else 1].append(cylinders.compare(codes[p], union[f]))
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
    runs = []
    for _ in range(args.keys):
        key = CylinderKey(os.urandom(32), bits=args.bits)
        runs.append({f.name: database(f, args.triples, key, args.cache) for f in args.folders})
    result: dict[str, object] = {"triples": args.triples, "bits": args.bits, "keys": args.keys,
                                 "load_1min": [load_start, os.getloadavg()[0]], "runs": runs}
    for m in METHODS:
        per = {db: float(np.mean([r[db][m]["eer"] for r in runs])) for db in runs[0]}
        f2 = np.mean([r[db][m]["fnmr_at_fmr_0.01"] for r in runs for db in r])
        f3 = np.mean([r[db][m]["fnmr_at_fmr_0.001"] for r in runs for db in r])
        print(f"{m:11s} EER " + " ".join(f"{db} {100 * e:5.2f} %" for db, e in per.items())
              + f" | mean {100 * np.mean(list(per.values())):5.2f} % | FNMR@FMR1e-2 {100 * f2:5.1f} %"
              + f" @1e-3 {100 * f3:5.1f} %")
    print(f"load (1 min) {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    out = ROOT / "bench" / "results" / "finger_protection_lock.json"
    out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
