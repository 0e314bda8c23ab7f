"""Face embedding benchmark: dlib's ResNet on ONNX Runtime (`limen.bio.face.fast_embed`) against dlib itself.

    python bench/embed.py [--latency-faces N] [--out bench/results/embed.json]

In one run, side by side:
- identity: every face chip of ../shared/data/lfw-subset and pairs-web embedded by
  both backends; max |fast − dlib| per component and the verification figures
  (lfw-subset all pairs, pairs-web pairs.csv) at `thresholds.FACE_MATCH_DEFAULT`;
- speed: per-face latency on ONE core (process pinned to CPU 0 with
  sched_setaffinity, ONNX Runtime intra_op_num_threads=1; dlib-bin is
  single-threaded), median and p95; batch throughput on two cores;
- start-up: conversion (first run, empty cache) and load (later runs, cache
  verified against its record), and the self-check;
- peak memory: a child process per case (VmHWM after getting the embedder ready
  and embedding a batch of 16 chips, over VmRSS before).

Writes bench/results/embed.json and embed.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchstats import pct

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BATCH = 16




def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000.0 for s in seconds]
    return {"median_ms": round(statistics.median(ms), 2), "p95_ms": round(pct(ms, 95), 2), "n": len(ms)}


def chips_of(paths: list[Path]) -> dict[str, np.ndarray]:
    """Chip of the largest face of each image, keyed by the image's name relative to its set."""
    from limen.bio.face import align, detect
    from limen.capture import load_image

    chips: dict[str, np.ndarray] = {}
    for path in paths:
        rgb = load_image(path)
        found = detect.detect_faces(rgb)
        if found:
            chips[path.name if path.parent.name == "pairs-web" else f"{path.parent.name}/{path.name}"] = (
                align.face_chip(rgb, align.landmarks(rgb, found[0].box))
            )
    return chips


def verification(emb: dict[str, np.ndarray], pairs: list[tuple[str, str, bool]]) -> dict[str, Any]:
    from limen import thresholds
    from limen.lab.metrics import verification_metrics

    usable = [(a, b, g) for a, b, g in pairs if a in emb and b in emb]
    dist = np.array([float(np.linalg.norm(emb[a] - emb[b])) for a, b, _ in usable])
    genuine = np.array([g for _, _, g in usable])
    m = verification_metrics(dist[genuine], dist[~genuine], thresholds.FACE_MATCH_DEFAULT)
    return {"pairs": len(usable), "skipped_pairs": len(pairs) - len(usable), "distances": dist, **m.as_dict()}


def dataset_pairs() -> tuple[list[Path], list[tuple[str, str, bool]], list[Path], list[tuple[str, str, bool]]]:
    from limen.lab.datasets import all_pairs, identity_folder_samples, pairs_csv

    lfw = identity_folder_samples(DATA / "lfw-subset")
    web_samples, web_pairs = pairs_csv(DATA / "pairs-web" / "pairs.csv")
    return (
        [s.path for s in lfw], [(p.a, p.b, p.genuine) for p in all_pairs(lfw)],
        [s.path for s in web_samples], [(p.a, p.b, p.genuine) for p in web_pairs],
    )


def identity(fast: Any, ref: Any) -> dict[str, Any]:
    lfw_paths, lfw_pairs, web_paths, web_pairs = dataset_pairs()
    out: dict[str, Any] = {}
    for name, paths, pairs in (("lfw-subset", lfw_paths, lfw_pairs), ("pairs-web", web_paths, web_pairs)):
        chips = chips_of(paths)
        keys = sorted(chips)
        batch = [chips[k] for k in keys]
        got = fast.embed(batch)
        want = np.concatenate([ref.embed(batch[i : i + BATCH]) for i in range(0, len(batch), BATCH)])
        diff = np.abs(got - want)
        v_fast = verification(dict(zip(keys, got, strict=True)), pairs)
        v_dlib = verification(dict(zip(keys, want, strict=True)), pairs)
        d_fast, d_dlib = v_fast.pop("distances"), v_dlib.pop("distances")
        from limen import thresholds

        flips = int(np.sum((d_fast <= thresholds.FACE_MATCH_DEFAULT) != (d_dlib <= thresholds.FACE_MATCH_DEFAULT)))
        out[name] = {
            "images": len(paths), "faces": len(keys),
            "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
            "max_distance_diff": float(np.max(np.abs(d_fast - d_dlib))),
            "decisions_that_differ": flips,
            "onnx": v_fast, "dlib": v_dlib,
        }
        out.setdefault("_chips", []).extend(batch)
    return out


def single_core_latency(cache: Path, ref: Any, chips: list[np.ndarray], n: int) -> dict[str, Any]:
    from limen.bio.face import fast_embed

    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    fast = fast_embed.load(cache_dir=cache, threads=1)
    for c in chips[:3]:  # warm both
        fast.embed([c])
        ref.embed([c])
    t_fast: list[float] = []
    t_dlib: list[float] = []
    c_fast: list[float] = []
    c_dlib: list[float] = []
    for c in (chips * (1 + n // max(1, len(chips))))[:n]:  # interleaved: same load on both
        t0, u0 = time.perf_counter(), time.thread_time()
        fast.embed([c])  # one intra-op thread: ONNX Runtime computes on the calling thread
        t1, u1 = time.perf_counter(), time.thread_time()
        ref.embed([c])
        t2, u2 = time.perf_counter(), time.thread_time()
        t_fast.append(t1 - t0)
        t_dlib.append(t2 - t1)
        c_fast.append(u1 - u0)
        c_dlib.append(u2 - u1)
    s_fast, s_dlib = summary_ms(t_fast), summary_ms(t_dlib)
    cpu_fast, cpu_dlib = summary_ms(c_fast), summary_ms(c_dlib)
    return {
        "cpu": sorted(os.sched_getaffinity(0)), "onnx": s_fast, "dlib": s_dlib,
        "speedup_median": round(s_dlib["median_ms"] / s_fast["median_ms"], 2),
        "speedup_p95": round(s_dlib["p95_ms"] / s_fast["p95_ms"], 2),
        "onnx_cpu_time": cpu_fast, "dlib_cpu_time": cpu_dlib,
        "speedup_cpu_time_median": round(cpu_dlib["median_ms"] / cpu_fast["median_ms"], 2),
    }


def two_core_throughput(cache: Path, ref: Any, chips: list[np.ndarray], rounds: int = 6) -> dict[str, Any]:
    from limen.bio.face import fast_embed

    cpus = set(range(os.cpu_count() or 1))
    os.sched_setaffinity(0, cpus)
    fast = fast_embed.load(cache_dir=cache, threads=len(cpus))
    batch = (chips * (1 + BATCH // max(1, len(chips))))[:BATCH]
    fast.embed(batch)
    t0 = time.perf_counter()
    for _ in range(rounds):
        fast.embed(batch)
    fast_fps = rounds * len(batch) / (time.perf_counter() - t0)
    one: list[float] = []
    for c in batch:
        t = time.perf_counter()
        fast.embed([c])
        one.append(time.perf_counter() - t)
    t0 = time.perf_counter()
    ref.embed(batch)
    dlib_fps = len(batch) / (time.perf_counter() - t0)
    return {
        "cpus": len(cpus), "batch": len(batch),
        "onnx_faces_per_s": round(fast_fps, 1), "dlib_faces_per_s": round(dlib_fps, 1),
        "onnx_per_face_two_threads": summary_ms(one),
    }


def startup(cache: Path) -> dict[str, Any]:
    from limen.bio.face import fast_embed
    from limen.bio.face.embed import DlibEmbedder

    first = fast_embed.load(cache_dir=cache, threads=1)
    later = [fast_embed.load(cache_dir=cache, threads=1).info.load_seconds for _ in range(5)]
    ref = DlibEmbedder()
    t0 = time.perf_counter()
    ref.embed(fast_embed.check_chips(1))  # loads dlib's network (needed by the self-check anyway)
    dlib_load = time.perf_counter() - t0
    answers = fast_embed.answers_path(first.info)
    t0 = time.perf_counter()
    diff = fast_embed.self_check(first, ref, answers=answers)  # dlib side computed, answers stored
    check = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast_embed.self_check(first, ref, answers=answers)  # later processes: against the stored answers
    check_stored = time.perf_counter() - t0
    return {
        "first_run_convert_s": round(first.info.convert_seconds, 3),
        "first_run_session_s": round(first.info.load_seconds, 3),
        "later_run_load_s": summary_ms(later),
        "dlib_load_and_first_face_s": round(dlib_load, 3),
        "self_check_s": round(check, 3), "self_check_stored_answers_s": round(check_stored, 3),
        "self_check_max_abs_diff": diff,
        "onnx_bytes": first.info.path.stat().st_size if first.info.path else None,
    }


def _status_mib(field: str) -> float:
    """VmRSS / VmHWM of this process in MiB (Linux); ru_maxrss survives exec, so it is not used."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover - not Linux


def memory_child(backend: str, cache: str) -> None:
    """Run in a child: RSS (MiB) before, peak RSS after getting `backend` ready and embedding 16 chips."""
    from limen.bio.face import fast_embed
    from limen.bio.face.embed import DlibEmbedder
    from limen.config import EmbedBackend

    chips = fast_embed.check_chips(BATCH)
    import dlib  # noqa: F401  - imported before the baseline in every child, so only models count
    import onnx  # noqa: F401
    import onnxruntime  # noqa: F401

    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before = _status_mib("VmRSS")
    t0 = time.perf_counter()
    if backend == "dlib":
        embedder: Any = DlibEmbedder()
    else:
        embedder = fast_embed.create(EmbedBackend.AUTO, DlibEmbedder(), cache_dir=Path(cache))
    embedder.embed(chips)
    seconds = time.perf_counter() - t0
    after = _status_mib("VmHWM")
    figures = {"embedder": embedder.name, "before_mib": round(before, 1), "peak_mib": round(after, 1),
               "added_mib": round(after - before, 1), "ready_and_16_faces_s": round(seconds, 2)}
    print(json.dumps(figures))


def memory(cache: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    empty = tempfile.mkdtemp(prefix="embed-bench-empty-")
    for label, backend, where in (("dlib", "dlib", str(cache)),
                                  ("auto, later runs (cache + stored answers)", "auto", str(cache)),
                                  ("auto, first run (convert + self-check with dlib)", "auto", empty)):
        res = subprocess.run([sys.executable, __file__, "--memory-child", backend, where],
                             capture_output=True, text=True, check=True)
        out[label] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def markdown(r: dict[str, Any]) -> str:
    lat, thr, st, mem = r["single_core"], r["two_cores"], r["startup"], r["memory"]
    lines = [
        "# Face embedding: ONNX Runtime vs dlib", "",
        f"`python bench/embed.py` — {r['when']}, {r['machine']}", "",
        "## Identity (every face chip, both backends)", "",
        "| set | faces | max abs diff | max distance diff | decisions that differ | EER onnx / dlib | "
        "accuracy onnx / dlib |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("lfw-subset", "pairs-web"):
        d = r["identity"][name]
        lines.append(
            f"| {name} | {d['faces']}/{d['images']} | {d['max_abs_diff']:.1e} | {d['max_distance_diff']:.1e} | "
            f"{d['decisions_that_differ']} of {d['onnx']['pairs']} | {d['onnx']['eer']:.4f} / {d['dlib']['eer']:.4f} | "
            f"{d['onnx']['accuracy']:.4f} / {d['dlib']['accuracy']:.4f} |"
        )
    lines += [
        "", "## Speed", "",
        "| | onnx | dlib | speed-up |", "|---|---|---|---|",
        f"| per face, 1 core, median | {lat['onnx']['median_ms']} ms | {lat['dlib']['median_ms']} ms | "
        f"{lat['speedup_median']}× |",
        f"| per face, 1 core, p95 | {lat['onnx']['p95_ms']} ms | {lat['dlib']['p95_ms']} ms | {lat['speedup_p95']}× |",
        f"| per face, 1 core, CPU time median (insensitive to other jobs) | {lat['onnx_cpu_time']['median_ms']} ms | "
        f"{lat['dlib_cpu_time']['median_ms']} ms | {lat['speedup_cpu_time_median']}× |",
        f"| batch of {thr['batch']}, {thr['cpus']} cores | {thr['onnx_faces_per_s']} faces/s | "
        f"{thr['dlib_faces_per_s']} faces/s | {thr['onnx_faces_per_s'] / thr['dlib_faces_per_s']:.1f}× |",
        f"| per face, {thr['cpus']} threads, median / p95 | {thr['onnx_per_face_two_threads']['median_ms']} / "
        f"{thr['onnx_per_face_two_threads']['p95_ms']} ms | | |",
        "", "## Start-up and memory", "",
        f"- first run: conversion {st['first_run_convert_s']} s + session {st['first_run_session_s']} s "
        f"(ONNX file {st['onnx_bytes']} bytes)",
        f"- later runs: load (hash source, verify cache, session) median {st['later_run_load_s']['median_ms']} ms, "
        f"p95 {st['later_run_load_s']['p95_ms']} ms",
        f"- self-check ({r['self_check_chips']} chips): first run, both backends {st['self_check_s']} s "
        f"(+ dlib's own load and first face {st['dlib_load_and_first_face_s']} s); later runs, against "
        f"the stored answers {st['self_check_stored_answers_s']} s; max diff {st['self_check_max_abs_diff']:.1e}",
    ]
    for label, m in mem.items():
        lines.append(f"- {label} → {m['embedder']}: peak RSS {m['peak_mib']} MiB ({m['added_mib']:+} MiB over "
                     f"{m['before_mib']} MiB), ready + 16 faces in {m['ready_and_16_faces_s']} s")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latency-faces", type=int, default=40)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "embed.json")
    ap.add_argument("--memory-child", nargs=2, metavar=("BACKEND", "CACHE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return
    if not (DATA / "lfw-subset").is_dir():
        sys.exit(f"needs {DATA}/lfw-subset and pairs-web")
    from limen import thresholds
    from limen.bio.face.embed import DlibEmbedder

    cache = Path(tempfile.mkdtemp(prefix="embed-bench-"))
    load_before = os.getloadavg()[0]
    print("start-up …", flush=True)
    st = startup(cache)
    ref = DlibEmbedder()
    print("identity on every chip of lfw-subset and pairs-web …", flush=True)
    from limen.bio.face import fast_embed

    ident = identity(fast_embed.load(cache_dir=cache), ref)
    chips = ident.pop("_chips")
    print("single-core latency …", flush=True)
    lat = single_core_latency(cache, ref, chips[:: max(1, len(chips) // args.latency_faces)], args.latency_faces)
    print("two-core throughput …", flush=True)
    thr = two_core_throughput(cache, ref, chips)
    print("memory …", flush=True)
    mem = memory(cache)
    import onnxruntime

    result = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} CPUs, {os.uname().machine}, onnxruntime {onnxruntime.__version__}, "
                   f"load average {load_before:.1f} → {os.getloadavg()[0]:.1f}",
        "tolerance": thresholds.EMBED_MAX_ABS_DIFF, "self_check_chips": thresholds.EMBED_SELF_CHECK_CHIPS,
        "identity": ident, "single_core": lat, "two_cores": thr, "startup": st, "memory": mem,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=float) + "\n", encoding="utf-8")
    md = markdown(result)
    args.out.with_suffix(".md").write_text(md, encoding="utf-8")
    print(md)


if __name__ == "__main__":
    main()
