"""What the door path adds to a face unlock: `controller.face(capture)` beside `recognizer.identify(capture)`.

    python bench/door_path.py [--runs 20]

Same run, same 5-frame NUAA webcam burst (nuaa-dev live, subject 0004,
session 02 frames 20–24; reference from 8 session-01 frames put straight in
the vault), one core.  Rows: the recognizer alone (detect, PAD, embed, vault
match → FaceEvidence), the whole door path through the runtime's controller
(the same + policy judged in one SQLite transaction + one audit record + the
simulated door, tamper-intent check included), and their difference.  Median
and p95 in ms, with the 1-minute load average beside every row.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from benchstats import pct  # noqa: E402
from unlock import enrolled_store, nuaa_frames, one_core  # noqa: E402


def row(name: str, ms: list[float]) -> None:
    print(f"{name:<34}{statistics.median(ms):>10.2f}{pct(ms, 95):>10.2f}   load {os.getloadavg()[0]:.2f}",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    cpu = one_core()
    from limen import thresholds
    from limen.access.model import PermissionLevel
    from limen.capture import Capture, Frame, load_image
    from limen.config import load_settings
    from limen.runtime import open_runtime

    thresholds.PIN_ARGON2_MEMORY_KIB, thresholds.PIN_ARGON2_TIME_COST = 64, 1  # no PIN is typed here
    with tempfile.TemporaryDirectory(prefix="limen-bench-") as tmp:
        data = Path(tmp) / "data"
        enrolled_store(data).close()
        rt = open_runtime(load_settings(data))
        try:
            rt.access().add_user("Owner", "", rt.clock.now(), pin="482915", permission=PermissionLevel.OWNER)
            rt.conn.execute("INSERT INTO users(id, name, created_at, created_by) VALUES ('dana', 'Dana', ?, 'bench')",
                            (rt.clock.now().isoformat(),))  # the person behind the vault's reference
            rt.conn.commit()
            capture = Capture(tuple(Frame(rgb=load_image(p)) for p in nuaa_frames("02", 20, 5)))
            recognizer, controller = rt.recognizer(), rt.controller
            rt.engine.warm()
            alone: list[float] = []
            door: list[float] = []
            reasons: dict[str, int] = {}
            for i in range(args.runs + 2):  # the first two warm caches and are dropped
                t0 = time.perf_counter()
                recognizer.identify(capture)
                t1 = time.perf_counter()
                decision = controller.face(capture)
                t2 = time.perf_counter()
                if i >= 2:
                    alone.append((t1 - t0) * 1000)
                    door.append((t2 - t1) * 1000)
                    reasons[decision.reason.value] = reasons.get(decision.reason.value, 0) + 1
        finally:
            rt.close()
    print(f"door path, {args.runs} runs on CPU {cpu} ({os.cpu_count()} cores), decisions {reasons}")
    print(f"{'':<34}{'median':>10}{'p95':>10}")
    row("recognizer.identify (evidence)", alone)
    row("controller.face (door path)", door)
    row("difference (policy+audit+door)", [d - a for a, d in zip(alone, door, strict=True)])


if __name__ == "__main__":
    main()
