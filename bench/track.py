"""Following a face through a burst: landmarks first (detector confirms) vs the detector near every box.

    python bench/track.py [--step 6] [--match-step 4]

On nuaa-dev (development data), bursts of 5 consecutive frames of every
subject and session (live and print), starting every `--step` frames:

1. tracks: does each frame have a face under both, and the CPU time of
   `detect_burst` (one core);
2. PAD: the same decision (passed, reason) from both sets of boxes, and how
   far the cue scores moved;
3. face: every live burst (every `--match-step` frames) against every
   subject's reference (8 frames of session 01), accepted at
   `FACE_MATCH_DEFAULT` — genuine and impostor accepts under both.

"detector near every box" is the follow used before (bio.face.burst before
TRACK_CONFIRM_MARGIN), rebuilt here from the library's parts.  Writes
bench/results/track.json and track.md.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NUAA = ROOT.parent / "shared" / "data" / "nuaa-dev"
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "bench"))


def load() -> float:
    return round(os.getloadavg()[0], 2)


def detector_near_every_box(rgb: np.ndarray, previous: Any) -> Any:
    """The previous follow: the detector searches around the last box, landmarks fitted in what it finds."""
    from limen import thresholds
    from limen.bio.face import align, burst, detect

    found = detect.detect_near(rgb, previous.box, thresholds.TRACK_SEARCH_MARGIN, thresholds.TRACK_SEARCH_FACE_PX)
    if not found:
        return None
    fitted = burst._fit(rgb, align.landmarks(rgb, found[0].box))  # noqa: SLF001 - the same fit, as before
    if fitted is None:
        return None
    box, marks = fitted
    return burst.FaceTrack(box, marks, previous.others, detected=False)


def groups(kind: str) -> dict[tuple[str, str], list[Path]]:
    out: dict[tuple[str, str], list[Path]] = {}
    for folder in sorted((NUAA / kind).iterdir()):
        files = sorted(folder.glob("*.jpg"), key=lambda f: (f.name.split("_")[:4], int(f.stem.split("_")[4])))
        for f in files:
            out.setdefault((folder.name, "_".join(f.name.split("_")[1:4])), []).append(f)
    return out


def bursts(kind: str, step: int) -> Iterator[tuple[str, str, list[Path]]]:
    for (subject, group), files in groups(kind).items():
        for i in range(0, len(files) - 5, step):
            yield subject, group, files[i : i + 5]


def run_both(images: list[np.ndarray], follows: dict[str, Callable[..., Any]], cpu: dict[str, list[float]]
             ) -> dict[str, Any]:
    from limen.bio.face import burst

    real = burst.follow
    out = {}
    try:
        for name, follow in follows.items():
            burst.follow = follow  # type: ignore[assignment]  # bench ablation only
            c0 = time.process_time()
            out[name] = burst.detect_burst(images)
            cpu[name].append((time.process_time() - c0) * 1000)
    finally:
        burst.follow = real  # type: ignore[assignment]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--step", type=int, default=6)
    ap.add_argument("--match-step", type=int, default=4)
    args = ap.parse_args()
    if not NUAA.is_dir():
        print(f"dataset missing: {NUAA}", file=sys.stderr)
        return 2
    import service
    import unlock

    cpu_id = unlock.one_core()
    data_dir = Path(tempfile.mkdtemp(prefix="limen-track-"))
    os.environ["LIMEN_DATA_DIR"] = str(data_dir)
    machine = {"cpus": os.cpu_count(), "pinned_to_cpu": cpu_id, "load_at_start": load(),
               "pad_models": service.import_pad_models(data_dir)}
    print(f"machine: {machine}", flush=True)

    from limen import thresholds
    from limen.bio.face import FaceEngine, FaceSample, burst
    from limen.bio.face.compare import fuse_reference
    from limen.capture import Capture, Frame, load_image
    from limen.config import load_settings
    from limen.pad import Purpose, assess

    models_dir = load_settings(data_dir).models_dir
    engine = FaceEngine()
    engine.warm()
    follows = {"detector near every box": detector_near_every_box, "landmarks, detector confirms": burst.follow}
    names = list(follows)
    result: dict[str, Any] = {"machine": machine, "command": "python bench/track.py " + " ".join(sys.argv[1:])}

    for kind in ("live", "print"):
        cpu: dict[str, list[float]] = {n: [] for n in names}
        n = same_presence = same_pad = 0
        moved: list[float] = []
        for _subject, _group, files in bursts(kind, args.step):
            images = [load_image(f) for f in files]
            capture = Capture(frames=tuple(Frame(rgb=i) for i in images))
            tracks = run_both(images, follows, cpu)
            verdicts = {k: assess(capture, purpose=Purpose.VERIFY, boxes=[t.box if t else None for t in v],
                                  models_dir=models_dir) for k, v in tracks.items()}
            a, b = (verdicts[k] for k in names)
            n += 1
            same_presence += all((x is None) == (y is None) for x, y in zip(*tracks.values(), strict=True))
            same_pad += (a.passed, a.reason) == (b.passed, b.reason)
            moved += [abs(a.scores[c] - b.scores[c]) for c in set(a.scores) & set(b.scores)]
        row = {"bursts": n, "same_face_presence": same_presence, "same_pad_decision": same_pad,
               "score_moved_median": round(float(np.median(moved)), 3) if moved else None,
               "score_moved_max": round(max(moved), 3) if moved else None,
               "detect_burst_cpu_ms": {k: round(statistics.median(v), 2) for k, v in cpu.items()}, "load": load()}
        result[kind] = row
        print(f"{kind}: {row}", flush=True)

    live = groups("live")
    refs = {}
    for (subject, group), files in live.items():
        if group.endswith("_01"):
            samples = [engine.extract(load_image(f)) for f in files[:8]]
            emb = np.array([s.embedding for s in samples if isinstance(s, FaceSample)])
            if len(emb):
                refs.setdefault(subject, []).append(emb)
    references = {s: fuse_reference(np.concatenate(e)) for s, e in refs.items()}
    accepts = {k: {"genuine": 0, "genuine_n": 0, "impostor": 0, "impostor_n": 0} for k in names}
    differ = 0
    for subject, _group, files in bursts("live", args.match_step):
        images = [load_image(f) for f in files]
        tracks = run_both(images, follows, {k: [] for k in names})
        accepted = {}
        for name, t in tracks.items():
            sample = engine.best_of_burst(images, t)
            if not isinstance(sample, FaceSample):
                accepted[name] = None
                continue
            dist = {r: float(np.linalg.norm(sample.embedding - ref)) for r, ref in references.items()}
            accepted[name] = sorted(r for r, d in dist.items() if d <= thresholds.FACE_MATCH_DEFAULT)
            for r, d in dist.items():
                side = "genuine" if r == subject else "impostor"
                accepts[name][side] += d <= thresholds.FACE_MATCH_DEFAULT
                accepts[name][f"{side}_n"] += 1
        differ += accepted[names[0]] != accepted[names[1]]
    result["face"] = {"threshold": thresholds.FACE_MATCH_DEFAULT, "references": len(references), "accepts": accepts,
                      "bursts_whose_accepted_set_differs": differ, "load": load()}
    print(f"face: {result['face']}", flush=True)
    result["load_at_end"] = load()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "track.json").write_text(json.dumps(result, indent=2) + "\n")
    md = ["# bench/track.py", "", f"`{result['command']}`, machine {machine} (nuaa-dev: development data)", "",
          "| | bursts | same face presence | same PAD decision | PAD score moved (median / max) |"
          " detect_burst CPU ms: " + " vs ".join(names) + " | load |", "|---|---|---|---|---|---|---|"]
    for kind in ("live", "print"):
        r = result[kind]
        md.append(f"| {kind} | {r['bursts']} | {r['same_face_presence']} | {r['same_pad_decision']} | "
                  f"{r['score_moved_median']} / {r['score_moved_max']} | "
                  + " vs ".join(str(r["detect_burst_cpu_ms"][k]) for k in names) + f" | {r['load']} |")
    md += ["", f"Face, live bursts against {len(references)} references at {thresholds.FACE_MATCH_DEFAULT}:", ""]
    for k, v in accepts.items():
        md.append(f"- {k}: genuine {v['genuine']}/{v['genuine_n']}, impostor {v['impostor']}/{v['impostor_n']}")
    md += [f"- bursts whose accepted set differs: {differ}", ""]
    (RESULTS / "track.md").write_text("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
