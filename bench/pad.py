"""PAD timings on one core: every cue per frame, the fused `assess`, beside the face pipeline's own time.

    python bench/pad.py [--repeat N] [--models-dir DIR]

Needs ../shared/data/nuaa-dev.  `--models-dir`: a models directory with
MiniFASNet imported (`limen models import`); without it that cue is reported
as not run.  The process pins itself to one core.  Prints median and p95 (ms,
wall) and the median CPU time of this process (what other jobs on the shared
machine cannot inflate) with the machine's load average beside every timing,
and writes bench/results/pad.json and bench/results/pad.md.
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

from benchstats import pct  # noqa: E402
from limen.bio.face import FaceEngine  # noqa: E402
from limen.capture import Capture, Frame, load_image  # noqa: E402
from limen.pad import Purpose, assess, faces  # noqa: E402
from limen.pad.edges import EdgeCue  # noqa: E402
from limen.pad.fusion import fused_score  # noqa: E402
from limen.pad.fusion_model import shipped_fusion  # noqa: E402
from limen.pad.minifasnet import MiniFasNetCue  # noqa: E402
from limen.pad.motion import MotionCue  # noqa: E402
from limen.pad.photometric import FlickerCue  # noqa: E402
from limen.pad.texture import TextureCue, shipped_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "nuaa-dev"
OUT = ROOT / "bench" / "results"


def timed(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    fn()  # warm-up (lazy model loads)
    samples, cpu = [], []
    load_before = os.getloadavg()[0]
    for _ in range(repeat):
        start, cpu_start = time.perf_counter(), time.process_time()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
        cpu.append((time.process_time() - cpu_start) * 1000.0)
    return {"median_ms": round(pct(samples, 50), 2), "p95_ms": round(pct(samples, 95), 2),
            "cpu_median_ms": round(pct(cpu, 50), 2), "n": repeat,
            "load_1min": round((load_before + os.getloadavg()[0]) / 2, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--models-dir", type=Path, default=None)
    args = ap.parse_args()
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    cv2.setNumThreads(1)
    files = sorted((DATA / "live" / "0001").glob("0001_00_00_01_*.jpg"), key=lambda p: int(p.stem.split("_")[-1]))
    frames = [load_image(f) for f in files[:5]]
    one = Capture.single(frames[0])
    burst = Capture(tuple(Frame(rgb=f, t=float(i)) for i, f in enumerate(frames)))
    sample_one = faces.locate(one)
    sample_burst = faces.locate(burst)
    shipped_model()
    model = shipped_fusion()
    engine = FaceEngine()
    box = sample_one.faces[0].box
    boxes = [f.box for f in sample_burst.faces]
    texture, edges, motion, flicker = TextureCue(), EdgeCue(), MotionCue(), FlickerCue()
    mfn = MiniFasNetCue(args.models_dir)
    have_mfn = mfn.check()

    def all_cues_one_frame() -> None:  # the single-frame cues the door decides on, and their fusion
        results = [texture.score(sample_one, Purpose.VERIFY)]
        if have_mfn:
            results.append(mfn.score(sample_one, Purpose.VERIFY))
        fused_score(results, Purpose.VERIFY, model)

    results = {
        "texture cue, 1 face (features + model)": timed(lambda: texture.score(sample_one, Purpose.VERIFY),
                                                         args.repeat),
        "edge cue, 1 frame (lab cue, not in the decision)": timed(lambda: edges.score(sample_one, Purpose.VERIFY),
                                                                   args.repeat),
    }
    if have_mfn:
        results["MiniFASNet cue, 1 frame (2 crops, 2 ONNX runs)"] = timed(
            lambda: mfn.score(sample_one, Purpose.VERIFY), args.repeat)
    results |= {
        "ALL decision cues per frame: texture + MiniFASNet + fusion": timed(all_cues_one_frame, args.repeat),
        "flicker cue, 5-frame burst (4 pairs; lab cue)": timed(lambda: flicker.score(sample_burst, Purpose.VERIFY),
                                                       args.repeat),
        "motion cue, 5-frame burst (4 pairs)": timed(lambda: motion.score(sample_burst, Purpose.VERIFY),
                                                      args.repeat),
        "face location for PAD, 1 frame (detect + landmarks)": timed(lambda: faces.locate(one), args.repeat),
        "assess(boxes=…), 1 frame, face box from the face pipeline": timed(
            lambda: assess(one, purpose=Purpose.VERIFY, boxes=[box], models_dir=args.models_dir), args.repeat),
        "assess(boxes=…), 5-frame burst": timed(
            lambda: assess(burst, purpose=Purpose.VERIFY, boxes=boxes, models_dir=args.models_dir),
            max(5, args.repeat // 3)),
        "peer: face pipeline FaceEngine.extract, 1 frame": timed(lambda: engine.extract(frames[0]), args.repeat),
    }
    meta = {"machine": platform.processor() or platform.machine(), "python": platform.python_version(),
            "threads": 1, "image": "640x480 NUAA frame", "command": "python bench/pad.py",
            "minifasnet": "run" if have_mfn else "not imported (not run)",
            "load_average_1min_at_start": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "pad.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    lines = ["| measurement | median (ms) | p95 (ms) | CPU time, median (ms) | load (1 min) |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {k} | {v['median_ms']} | {v['p95_ms']} | {v['cpu_median_ms']} | {v['load_1min']} |"
              for k, v in results.items()]
    head = (f"# PAD timings (one core of {meta['cpus']}; MiniFASNet {meta['minifasnet']}; "
            f"load average at start {meta['load_average_1min_at_start']})\n\n")
    (OUT / "pad.md").write_text(head + "\n".join(lines) + "\n")
    for k, v in results.items():
        print(f"{k:58s} median {v['median_ms']:8.2f} ms   p95 {v['p95_ms']:8.2f} ms   "
              f"CPU {v['cpu_median_ms']:8.2f} ms   load {v['load_1min']}")


if __name__ == "__main__":
    main()
