"""Sensor-cue timings on one core: depth + infrared + eye region per frame, pulse per frame amortised.

    python bench/pad_sensors.py [--repeat N]

Input: SIMULATED captures (limen.lab.simulate, 160×160, 4 s at 15 fps) of a
live face and a silicone mask.  Targets (issue 15): depth + IR ≤ 15 ms per
frame; pulse ≤ 2 ms per frame amortised.  The peer in the same run is the
motion cue (the existing multi-frame RGB cue) on the same frames.  Prints
median and p95 with the load average beside every timing; writes
bench/results/pad_sensors.json and .md.
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

from benchstats import pct  # noqa: E402
from limen.lab import simulate  # noqa: E402
from limen.pad.contract import Purpose  # noqa: E402
from limen.pad.depth import DepthCue  # noqa: E402
from limen.pad.eyes import EyeRegionCue  # noqa: E402
from limen.pad.faces import PadSample  # noqa: E402
from limen.pad.infrared import InfraredCue, SubsurfaceCue  # noqa: E402
from limen.pad.motion import MotionCue  # noqa: E402
from limen.pad.pulse import PulseCue  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEPTH, IR, DOTS, EYES = DepthCue(), InfraredCue(), SubsurfaceCue(), EyeRegionCue()


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(fn: Callable[[], object], repeat: int, per: int) -> dict[str, float | str]:
    """Median and p95 of `fn` in ms (wall; and the CPU time's median), divided by `per` (frames), with the load."""
    fn()  # warm-up
    runs, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        runs.append((time.perf_counter() - t) * 1000 / per)
        cpu.append((time.process_time() - c) * 1000 / per)
    return {"median_ms": round(pct(runs, 50), 3), "p95_ms": round(pct(runs, 95), 3),
            "cpu_median_ms": round(pct(cpu, 50), 3), "load": load()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    results: dict[str, dict[str, float | str]] = {}
    for species in (simulate.Species.BONA_FIDE, simulate.Species.SILICONE_MASK):
        sim = simulate.render(simulate.population(species, 1, seed=3)[0], seconds=4.0, fps=15.0)
        sample: PadSample = sim.sample()
        frames = len(sample.faces)
        every = len(sim.capture.frames)
        def sensors(s: PadSample = sample) -> None:
            for cue in (DEPTH, IR, DOTS, EYES):
                cue.score(s, Purpose.VERIFY)

        results[f"{species.value}: depth+infrared+subsurface+eyes per analysed frame ({frames} frames)"] = timed(
            sensors, args.repeat, frames)
        results[f"{species.value}: depth alone per frame"] = timed(
            lambda s=sample: DEPTH.score(s, Purpose.VERIFY), args.repeat, frames)
        results[f"{species.value}: infrared alone per frame"] = timed(
            lambda s=sample: IR.score(s, Purpose.VERIFY), args.repeat, frames)
        results[f"{species.value}: subsurface (dot contrast) alone per frame"] = timed(
            lambda s=sample: DOTS.score(s, Purpose.VERIFY), args.repeat, frames)
        results[f"{species.value}: pulse per capture frame, amortised ({every} frames)"] = timed(
            lambda s=sample: PulseCue().score(s, Purpose.VERIFY), args.repeat, every)
        results[f"{species.value}: peer — motion cue per analysed frame"] = timed(
            lambda s=sample: MotionCue().score(s, Purpose.VERIFY), args.repeat, frames)
    meta = {"machine": platform.processor() or platform.machine(), "python": platform.python_version(),
            "threads": "OMP/OPENBLAS 1", "input": "SIMULATED 160×160 captures, 4 s at 15 fps", "repeat": args.repeat}
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "pad_sensors.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    lines = ["# Sensor cues: time per frame (one core; SIMULATED input)", "",
             f"`python bench/pad_sensors.py --repeat {args.repeat}`", "",
             "| what | median ms | p95 ms | CPU median ms | load average (1/5/15 min) |", "|---|---|---|---|---|"]
    for k, v in results.items():
        lines.append(f"| {k} | {v['median_ms']} | {v['p95_ms']} | {v['cpu_median_ms']} | {v['load']} |")
    (out / "pad_sensors.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
