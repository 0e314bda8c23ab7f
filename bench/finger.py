"""Fingerprint benchmark: extraction per image, one comparison, and 1:N over 1,000 enrolled fingers.

    python bench/finger.py [--data ../shared/data/fvc2002] [--gallery 1000] [--probes 50]
                           [--only extraction|comparison|search] [--repeat 1] [--against OLD_TREE]
                           [--out bench/results/finger.json]

One core (OMP/OpenCV threads pinned to 1).  Extraction runs on all 320 images
of the FVC2002 B databases; comparisons on the FVC protocol pairs of DB1_B.  The 1:N
gallery holds impression 1 of the 40 FVC fingers plus filler up to --gallery, two
ways in the same run (each probe searched in both, in alternating order): synthetic
minutia sets (random positions and directions: easy impostors, timing filler), and
real impressions — FVC2002 B impressions of the 39 fingers other than the probe's
(312 distinct, repeated in turn to size; a filler impression of the probe's own
finger would be a hit under another key, not an impostor, so none is there).
Probes are impressions 2–8 of FVC fingers; the rank-1 hit rate (the best key is the
probe's enrolled finger) is reported beside each time.  Machine load is printed
with every timing; medians and p95 in milliseconds.  `--only comparison`
extracts DB1_B alone (untimed) and times the comparisons only, `--only search` extracts
all four databases (untimed) and times the 1:N searches only, `--repeat` times
every pair that many times (results to bench/results/finger-<stage>.json
unless --out says otherwise); `--against DIR` times the matcher of another
source tree (`git archive <commit> | tar -x -C DIR`) on the same pairs,
interleaved pair by pair with this one, so both see the same machine load.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import sys
import time
from functools import partial
from pathlib import Path
from types import ModuleType

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchstats import wall_and_cpu  # noqa: E402

cv2.setNumThreads(1)
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from limen.bio.finger import matcher  # noqa: E402
from limen.bio.finger.extract import extract_file  # noqa: E402
from limen.bio.finger.index import EdgeIndex, edge_keys  # noqa: E402
from limen.bio.finger.template import FingerTemplate, Minutia, MinutiaType  # noqa: E402
from limen.errors import BadImage  # noqa: E402

_stats = partial(wall_and_cpu, digits=3)


def _synthetic(rng: np.random.Generator, n: int) -> FingerTemplate:
    xy = rng.uniform(20, 360, (n, 2)).astype(int)
    ang = rng.uniform(0, 2 * np.pi, n)
    return FingerTemplate(388, 374, 500, tuple(Minutia(int(x), int(y), float(a), MinutiaType(1 + k % 2), 60)
                                                for k, ((x, y), a) in enumerate(zip(xy, ang, strict=True))))


def _matcher_of(tree: Path) -> ModuleType:
    """limen.bio.finger.matcher as it is in another source tree (same thresholds and template module)."""
    spec = importlib.util.spec_from_file_location("against_matcher", tree / "src/limen/bio/finger/matcher.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module                 # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "fvc2002")
    ap.add_argument("--gallery", type=int, default=1000)
    ap.add_argument("--probes", type=int, default=50)
    ap.add_argument("--only", choices=("extraction", "comparison", "search"), help="time one stage only")
    ap.add_argument("--repeat", type=int, default=1, help="times each comparison pair is timed")
    ap.add_argument("--against", type=Path, help="another source tree (e.g. `git archive` of an older commit "
                    "unpacked): its matcher is timed on the same pairs, interleaved with this one")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    out = args.out or ROOT / "bench" / "results" / (f"finger-{args.only}.json" if args.only else "finger.json")
    results: dict[str, object] = {"machine_load_at_start": os.getloadavg()}

    templates: dict[tuple[str, int, int], FingerTemplate] = {}
    extract_ms: list[float] = []
    extract_cpu: list[float] = []
    failures: list[str] = []
    for db in ("DB1_B",) if args.only == "comparison" else ("DB1_B", "DB2_B", "DB3_B", "DB4_B"):
        for p in sorted((args.data / db).glob("*.tif")):
            f, i = map(int, p.stem.split("_"))
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                templates[(db, f, i)] = extract_file(p)
            except BadImage:
                failures.append(p.name)              # timed all the same: a refusal costs a full extraction
            extract_ms.append((time.perf_counter() - t0) * 1e3)
            extract_cpu.append((time.process_time() - c0) * 1e3)
    if args.only in (None, "extraction"):
        results["extraction"] = {**_stats(extract_ms, extract_cpu), "failures_to_extract": failures}
        print(f"extraction: {results['extraction']}", flush=True)

    if args.only == "extraction":
        _write(results, out)
        return
    prepared = {k: matcher.prepare(t) for k, t in templates.items()}
    fingers = sorted({(db, f) for db, f, i in templates if i == 1})
    if args.only == "search":
        results.update(_search(prepared, fingers, args.gallery, args.probes))
        _write(results, out)
        return
    pairs = [((("DB1_B", f, i)), ("DB1_B", f, j)) for f in range(101, 111) for i in range(1, 9)
             for j in range(i + 1, 9)]
    pairs += [(("DB1_B", f, 1), ("DB1_B", g, 1)) for f in range(101, 111) for g in range(f + 1, 111)]
    pairs = [(a, b) for a, b in pairs if a in prepared and b in prepared]
    runs = [("comparison", matcher, prepared)]
    if args.against:                     # the other tree's matcher on its own prepared templates, interleaved
        other = _matcher_of(args.against)
        runs.append(("comparison_against", other, {k: other.prepare(t) for k, t in templates.items()}))
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name, _, _ in runs}
    for r in range(args.repeat):
        for n, (a, b) in enumerate(pairs):
            for name, module, ready in runs if (n + r) % 2 == 0 else runs[::-1]:
                t0, c0 = time.perf_counter(), time.process_time()
                module.similarity(ready[a], ready[b])
                times[name][0].append((time.perf_counter() - t0) * 1e3)
                times[name][1].append((time.process_time() - c0) * 1e3)
    for name, _, _ in runs:
        results[name] = _stats(*times[name])
        print(f"one comparison{' (' + str(args.against) + ')' if name != 'comparison' else ''}: {results[name]}",
              flush=True)
    if args.against:
        results["against"] = str(args.against)
    if args.only:
        _write(results, out)
        return

    results.update(_search(prepared, fingers, args.gallery, args.probes))
    _write(results, out)


def _search(prepared: dict[tuple[str, int, int], matcher.PreparedTemplate], fingers: list[tuple[str, int]],
            gallery: int, n_probes: int) -> dict[str, object]:
    """1:N over `gallery` entries, two ways in the same run, probe by probe in alternating order (same load):

    synthetic filler: the 40 enrolled fingers (impression 1, keyed by finger) + random minutia sets;
    real filler: the same 40 enrolled fingers + FVC2002 B impressions (all 8) of the 39 fingers *other than the
    probe's*, repeated in turn up to the size (312 distinct impressions: each ≈ 3× at 1,000) — built per probe
    finger, so no filler entry is an impression of the probe's own finger (it would be a hit under another
    key, not an impostor); an enrolled finger's filler impressions are impostors for every other probe.
    A rank-1 hit: the best key is the probe's enrolled finger."""
    synthetic = EdgeIndex()
    for db, f in fingers:
        synthetic.add(f"{db}:{f}", prepared[(db, f, 1)])
    rng = np.random.default_rng(0)
    while len(synthetic) < gallery:
        synthetic.add(f"synthetic:{len(synthetic)}", matcher.prepare(_synthetic(rng, int(rng.integers(20, 50)))))
    keys = {k: edge_keys(p) for k, p in prepared.items()}
    order = list(prepared)
    random.Random(1).shuffle(order)
    random.seed(0)
    probes = random.sample([(db, f, i) for db, f in fingers for i in range(2, 9) if (db, f, i) in prepared],
                           n_probes)
    times: dict[str, tuple[list[float], list[float]]] = {"synthetic": ([], []), "real": ([], [])}
    hits = {"synthetic": 0, "real": 0}
    sizes: set[int] = set()
    n = 0
    for db, f in sorted({(db, f) for db, f, _ in probes}):
        real = EdgeIndex()                       # this probe finger's gallery: built, searched, dropped
        for g in fingers:
            real.add(f"{g[0]}:{g[1]}", prepared[(g[0], g[1], 1)], keys[(g[0], g[1], 1)])
        filler = [k for k in order if (k[0], k[1]) != (db, f)]
        copy = 0
        while len(real) < gallery:
            k = filler[copy % len(filler)]
            real.add(f"filler:{k[0]}:{k[1]}:{k[2]}:{copy // len(filler)}", prepared[k], keys[k])
            copy += 1
        sizes.add(len(real))
        for probe in [p for p in probes if (p[0], p[1]) == (db, f)]:
            runs = [("synthetic", synthetic), ("real", real)]
            for name, index in runs if n % 2 == 0 else runs[::-1]:
                t0, c0 = time.perf_counter(), time.process_time()
                found = index.search(prepared[probe])
                times[name][0].append((time.perf_counter() - t0) * 1e3)
                times[name][1].append((time.process_time() - c0) * 1e3)
                hits[name] += bool(found) and found[0].key == f"{db}:{f}"
            n += 1
        real.wipe()
    out: dict[str, object] = {}
    for name, label in (("synthetic", "synthetic filler (random minutia sets: timing filler, easy impostors)"),
                        ("real", "real-impression filler (FVC2002 B impressions of the other 39 fingers, "
                                 "repeated to size)")):
        out[f"search_1_to_n_{name}_filler"] = {
            **_stats(*times[name]), "filler": label, "gallery": len(synthetic) if name == "synthetic" else
            sorted(sizes)[0], "real_fingers": len(fingers), "probes": len(probes),
            "rank1_hit_rate_real_probes": round(hits[name] / len(probes), 3)}
        print(f"1:N over {gallery}, {label}: {out[f'search_1_to_n_{name}_filler']}", flush=True)
    return out


def _write(results: dict[str, object], out: Path) -> None:
    results["machine_load_at_end"] = os.getloadavg()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
