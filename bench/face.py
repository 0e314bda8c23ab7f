"""Face pipeline benchmark: per-stage latency (median, p95), peak memory, and end-to-end
time side by side with the `face_recognition` package (same dlib models) in the same run.

    python bench/face.py [--images N] [--out bench/results/face.json]

Data: ../shared/data/lfw-subset (250×250 JPEGs).  The peer is installed with
`pip install --no-deps face_recognition` (its own dependency on `dlib` would
compile dlib from source; `dlib-bin` provides the same module).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

from benchstats import pct

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared" / "data" / "lfw-subset"




def summary(values: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(values), 2), "p95_ms": round(pct(values, 95), 2), "n": len(values)}


def bench_limen(files: list[Path], backend: str) -> tuple[dict[str, dict[str, float]], list[float], str]:
    from limen.bio.face import FaceEngine
    from limen.capture import load_image
    from limen.config import EmbedBackend

    engine = FaceEngine(EmbedBackend(backend))
    engine.extract(load_image(files[0]))  # load models outside the timings
    stages: dict[str, list[float]] = {}
    total: list[float] = []
    for f in files:
        t0 = time.perf_counter()
        rgb = load_image(f)
        t1 = time.perf_counter()
        out = engine.extract(rgb)
        total.append((time.perf_counter() - t0) * 1000)
        stages.setdefault("decode", []).append((t1 - t0) * 1000)
        for k, v in out.timings.items():
            stages.setdefault(k, []).append(v)
    return {k: summary(v) for k, v in stages.items()}, total, engine.embedder.name


def bench_peer(files: list[Path]) -> list[float] | None:
    try:
        import face_recognition
    except ImportError:
        return None
    face_recognition.face_encodings(face_recognition.load_image_file(files[0]))
    total = []
    for f in files:
        t0 = time.perf_counter()
        img = face_recognition.load_image_file(f)
        face_recognition.face_encodings(img, model="small")  # detect (HOG, upsample 1) + 5-point + ResNet
        total.append((time.perf_counter() - t0) * 1000)
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--backend", choices=["auto", "dlib", "onnx"], default="auto", help="embedding backend")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "face.json")
    args = ap.parse_args()
    if not LFW.is_dir():
        print(f"dataset missing: {LFW}", file=sys.stderr)
        return 2
    files = sorted(LFW.glob("*/*.jpg"))[: args.images]
    stages, limen_total, embedder = bench_limen(files, args.backend)
    peak_limen = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peer_total = bench_peer(files)
    result = {
        "dataset": "lfw-subset", "images": len(files), "embedder": embedder,
        "limen_stages": stages, "limen_end_to_end": summary(limen_total),
        "face_recognition_end_to_end": summary(peer_total) if peer_total else None,
        "peak_rss_mib": round(peak_limen, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"embedder: {embedder}")
    print(f"{'stage':<12}{'median ms':>12}{'p95 ms':>10}")
    for k, v in stages.items():
        print(f"{k:<12}{v['median_ms']:>12.2f}{v['p95_ms']:>10.2f}")
    e2e = result["limen_end_to_end"]
    print(f"{'limen e2e':<12}{e2e['median_ms']:>12.2f}{e2e['p95_ms']:>10.2f}")
    if peer_total:
        fr = result["face_recognition_end_to_end"]
        print(f"{'face_recog.':<12}{fr['median_ms']:>12.2f}{fr['p95_ms']:>10.2f}")
    print(f"peak RSS after the Limen run {result['peak_rss_mib']} MiB; written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
