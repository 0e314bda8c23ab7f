"""Can someone without the device key tell a protected cylinder code's decoys from its real strings?

    OPENBLAS_NUM_THREADS=1 python bench/finger_decoys_attack.py ../shared/data/fvc2002/DB{1,2,3,4}_B [--cache DIR]

Every stored code holds FINGER_MCC_STRINGS strings, decoys included (`cylinders.CylinderKey`).  The attacker
holds every stored code of a device (not its key) and scores each string by two statistics a keyless party can
compute: its agreement with the device's majority bit at each position (real cylinders share a mean the
projection keeps) and its best similarity to the other strings of its own code (a real print's neighbouring
cylinders overlap).  Reported per database: the AUC of each score for real against decoy strings (0.5: no
better than chance), with the chaff decoys of the code and, for contrast, uniform random decoys in the same
places; and D↔sys across two keys of a count estimated from each score (the strings at or above the pooled
median), beside the shuffled-label floor — what is left of the count linkability once the header is fixed.
Development data (FVC2002 B).  Writes bench/results/finger_decoys_attack.json.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from finger_protection_lock import templates as lock_templates
from limen.bio.finger.cylinders import CylinderKey, ProtectedFingerCode, code_similarities
from limen.bio.finger.template import FingerTemplate
from limen.lab.finger_protection import linkability_figures

ROOT = Path(__file__).resolve().parents[1]
Scores = dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]   # name → (majority agreement, best sibling, real?)


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    ranks = np.argsort(np.argsort(np.concatenate([positive, negative]))) + 1
    return float((ranks[: positive.size].sum() - positive.size * (positive.size + 1) / 2)
                 / (positive.size * negative.size))


def codes(templates: dict[str, FingerTemplate], key: CylinderKey, uniform: bool, rng: np.random.Generator
          ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name → (stored strings, which are real); `uniform`: decoys replaced by uniform random strings."""
    out = {}
    for n, t in templates.items():
        bits = key.protect(t).bits.copy()
        real_rows = {r.tobytes() for r in np.packbits(key.probe(t).bits, axis=1)}
        real = np.array([r.tobytes() in real_rows for r in np.packbits(bits, axis=1)])
        if uniform:
            bits[~real] = rng.random((int((~real).sum()), bits.shape[1])) > 0.5
        out[n] = (bits, real)
    return out


def scores(device: dict[str, tuple[np.ndarray, np.ndarray]]) -> Scores:
    majority = np.concatenate([b for b, _ in device.values()]).mean(0) > 0.5
    out = {}
    for n, (b, real) in device.items():
        code = ProtectedFingerCode(b)
        sim = code_similarities(code, code)
        np.fill_diagonal(sim, 0.0)
        out[n] = ((b == majority).mean(1), sim.max(1), real)
    return out


def database(templates: dict[str, FingerTemplate], uniform: bool) -> dict[str, float]:
    rng = np.random.default_rng(0)
    per_key = [scores(codes(templates, CylinderKey(os.urandom(32)), uniform, rng)) for _ in range(2)]
    names = sorted(templates)
    out: dict[str, float] = {}
    for k, what in enumerate(("majority", "sibling")):
        first = per_key[0].values()
        out[f"auc_{what}"] = auc(np.concatenate([s[k][s[2]] for s in first]),
                                 np.concatenate([s[k][~s[2]] for s in first]))
        median = float(np.median(np.concatenate([s[k] for pk in per_key for s in pk.values()])))
        a, b = ({n: float((s[k] >= median).sum()) for n, s in pk.items()} for pk in per_key)
        link = linkability_figures(names, a.__getitem__, b.__getitem__, lambda x, y: -abs(x - y))
        out[f"d_sys_count_by_{what}"] = link["d_sys_two_devices"]
        out[f"d_sys_count_by_{what}_floor"] = link["d_sys_estimator_floor_shuffled_labels"]
    out["decoy_share"] = float(np.mean(np.concatenate([~s[2] for s in per_key[0].values()])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--cache", type=Path, default=None, help="folder for extracted templates (biometric data)")
    args = ap.parse_args()
    load_start = os.getloadavg()[0]
    result: dict[str, object] = {}
    for f in args.folders:
        ts = {f"{a}_{b}": t for (a, b), t in lock_templates(f, args.cache).items()}
        for uniform in (False, True):
            r = database(ts, uniform)
            result[f"{f.name}/{'uniform' if uniform else 'chaff'}"] = r
            print(f"{f.name} {'uniform' if uniform else 'chaff  '} decoys {100 * r['decoy_share']:4.1f} % | AUC real > "
                  f"decoy: majority {r['auc_majority']:.2f}, best sibling {r['auc_sibling']:.2f} | D↔sys of the "
                  f"estimated count across keys: {r['d_sys_count_by_majority']:.3f} (floor "
                  f"{r['d_sys_count_by_majority_floor']:.3f}), {r['d_sys_count_by_sibling']:.3f} (floor "
                  f"{r['d_sys_count_by_sibling_floor']:.3f})", flush=True)
    result["load_1min"] = [load_start, os.getloadavg()[0]]
    print(f"load (1 min) {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    (ROOT / "bench" / "results" / "finger_decoys_attack.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
