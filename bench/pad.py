"""PAD timings on one core: per-frame cue cost, full `assess`, and latency added to a verification.

    python bench/pad.py [--repeat N]

Needs ../shared/data/nuaa-dev.  Prints median and p95 (ms) and writes
bench/results/pad.json and bench/results/pad.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from limen.bio.face import FaceEngine  # noqa: E402
from limen.capture import Capture, Frame, load_image  # noqa: E402
from limen.pad import Purpose, assess, faces  # noqa: E402
from limen.pad.contract import Purpose as P  # noqa: E402
from limen.pad.motion import MotionCue  # noqa: E402
from limen.pad.texture import TextureCue, shipped_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "nuaa-dev"
OUT = ROOT / "bench" / "results"


def timed(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    fn()  # warm-up (lazy model loads)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    arr = np.asarray(samples)
    return {"median_ms": round(float(np.median(arr)), 2), "p95_ms": round(float(np.percentile(arr, 95)), 2),
            "n": repeat}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    files = sorted((DATA / "live" / "0001").glob("0001_00_00_01_*.jpg"), key=lambda p: int(p.stem.split("_")[-1]))
    frames = [load_image(f) for f in files[:4]]
    one = Capture.single(frames[0])
    burst = Capture(tuple(Frame(rgb=f, t=float(i)) for i, f in enumerate(frames)))
    sample_one = faces.locate(one)
    sample_burst = faces.locate(burst)
    shipped_model()
    engine = FaceEngine()
    box = sample_one.faces[0].box
    texture, motion = TextureCue(), MotionCue()
    results = {
        "texture cue, 1 face (features + model)": timed(lambda: texture.score(sample_one, P.VERIFY), args.repeat),
        "face location for PAD, 1 frame (detect + landmarks)": timed(lambda: faces.locate(one), args.repeat),
        "assess(), 1 frame (= latency added to a verification)": timed(
            lambda: assess(one, purpose=Purpose.VERIFY), args.repeat),
        "assess(boxes=…), 1 frame, face box from the face pipeline": timed(
            lambda: assess(one, purpose=Purpose.VERIFY, boxes=[box]), args.repeat),
        "motion cue, 4-frame burst (tracking + homographies)": timed(
            lambda: motion.score(sample_burst, P.VERIFY), args.repeat),
        "assess(), 4-frame burst": timed(lambda: assess(burst, purpose=Purpose.VERIFY), max(5, args.repeat // 3)),
        "verification without PAD: FaceEngine.extract, 1 frame": timed(
            lambda: engine.extract(frames[0]), args.repeat),
    }
    meta = {"machine": platform.processor() or platform.machine(), "python": platform.python_version(),
            "threads": 1, "image": "640x480 NUAA frame", "command": "python bench/pad.py",
            "load_average_1min": round(os.getloadavg()[0], 2)}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "pad.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    lines = ["| measurement | median (ms) | p95 (ms) |", "| --- | --- | --- |"]
    lines += [f"| {k} | {v['median_ms']} | {v['p95_ms']} |" for k, v in results.items()]
    head = f"# PAD timings (one core; machine load average {meta['load_average_1min']})\n\n"
    (OUT / "pad.md").write_text(head + "\n".join(lines) + "\n")
    for k, v in results.items():
        print(f"{k:58s} median {v['median_ms']:8.2f} ms   p95 {v['p95_ms']:8.2f} ms")


if __name__ == "__main__":
    main()
