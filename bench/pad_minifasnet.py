"""MiniFASNet cue on nuaa-dev: per-frame scores, ISO/IEC 30107-3 figures, operating points, and its cost.

    python bench/pad_minifasnet.py [--models-dir DIR] [--repeat N] [--simulated] [--forms-only]

Needs ../shared/data/nuaa-dev and MiniFASNet imported (`limen models import
../shared/models/minifasnet`; without --models-dir it is imported into a
cache under /tmp).  Every nuaa-dev image is one presentation: PAD's own face
location (`pad.faces.locate`, its usability gates), then the cue's per-frame
live log-odds.  DEVELOPMENT DATA: the thresholds in thresholds.py were read off
these same scores.  Also splits by capture session (01 / 02), and times the cue
per frame (median, p95, machine load) beside the texture cue on the same faces.
Scores are cached in /tmp/limen-bench-minifasnet-scores.npz.

Graph forms: the CPU time of one crop through each model as imported (PRelu),
with PRelu as Relus (`prelu_as_relus`, exact), and as the lock runs it
(`run_form`: Relus + channels padded to `PAD_MINIFASNET_CHANNEL_MULTIPLE`),
interleaved in the same run on the lock's session options, plus a 5-crop burst
as five runs and as one batch.  `--forms-only` prints just that.

`--simulated` adds **simulated** species (`limen.lab.recapture`): every live
image of lfw-subset, pairs-web and every 16th of nuaa-dev, through the camera
model alone (bona fide) and recaptured as each print and screen species.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchstats import pct  # noqa: E402
from limen import thresholds  # noqa: E402
from limen.capture import Capture, Frame, load_image  # noqa: E402
from limen.core.onnx import cpu_session  # noqa: E402
from limen.errors import LimenError  # noqa: E402
from limen.lab.pad import apcer, bpcer, threshold_at_apcer, threshold_at_bpcer  # noqa: E402
from limen.pad import faces  # noqa: E402
from limen.pad import onnx_minifasnet as graph  # noqa: E402
from limen.pad.contract import Purpose  # noqa: E402
from limen.pad.faces import FaceView, PadSample  # noqa: E402
from limen.pad.minifasnet import MiniFasNetCue  # noqa: E402
from limen.pad.minifasnet_models import import_models, load_model  # noqa: E402
from limen.pad.texture import TextureCue  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "nuaa-dev"
WEIGHTS = ROOT.parent / "shared" / "models" / "minifasnet"
CACHE = Path("/tmp/limen-bench-minifasnet-scores.npz")
SIM_CACHE = Path("/tmp/limen-bench-minifasnet-simulated.npz")


def located(path: Path) -> FaceView | None:
    sample = faces.locate(Capture((Frame(rgb=load_image(path)),)))
    return sample.faces[0] if sample.faces else None


def score_all(cue: MiniFasNetCue) -> dict[str, np.ndarray]:
    if CACHE.exists():
        z = np.load(CACHE, allow_pickle=False)
        return {k: z[k] for k in z.files}
    scores, kinds, sessions, subjects = [], [], [], []
    for kind in ("live", "print"):
        for path in sorted((DATA / kind).glob("*/*.jpg")):
            view = located(path)
            if view is None:
                continue
            scores.append(float(cue.minifasnet_scores([view.frame.rgb], [view.box])[0]))
            kinds.append(kind)
            sessions.append(path.stem.split("_")[3])
            subjects.append(path.parent.name)
    out = {"score": np.array(scores), "kind": np.array(kinds), "session": np.array(sessions),
           "subject": np.array(subjects)}
    np.savez(CACHE, **out)
    return out


def figures(label: str, bona: np.ndarray, attack: np.ndarray) -> None:
    attacks = {"print": attack}
    print(f"\n{label}: {bona.size} live, {attack.size} print frames")
    for name, t in (("PAD_MINIFASNET_VERIFY", thresholds.PAD_MINIFASNET_VERIFY),
                    ("PAD_MINIFASNET_ENROL", thresholds.PAD_MINIFASNET_ENROL)):
        print(f"  at {name} = {t:+.3f}: APCER {apcer(attacks, t)['print']:.2%}  BPCER {bpcer(bona, t):.2%}")
    for target in (0.01, 0.05):
        t = threshold_at_apcer(bona, attacks, target)
        print(f"  APCER {target:.0%}: threshold {t:+.3f}, BPCER {bpcer(bona, t):.2%}")
        t = threshold_at_bpcer(bona, attacks, target)
        print(f"  BPCER {target:.0%}: threshold {t:+.3f}, APCER {apcer(attacks, t)['print']:.2%}")
    print(f"  highest print score {attack.max():+.3f}; lowest live score {bona.min():+.3f}; "
          f"live below the highest print: {np.mean(bona <= attack.max()):.2%}")


def webcam_sized(rgb: np.ndarray, side: int = 640) -> np.ndarray:
    f = side / max(rgb.shape[:2])
    if f >= 1:
        return rgb
    return cv2.resize(rgb, (round(rgb.shape[1] * f), round(rgb.shape[0] * f)), interpolation=cv2.INTER_AREA)


def score_simulated(cue: MiniFasNetCue) -> dict[str, np.ndarray]:
    from limen.lab import recapture

    if SIM_CACHE.exists():
        z = np.load(SIM_CACHE, allow_pickle=False)
        return {k: z[k] for k in z.files}
    scores, kinds, groups = [], [], []
    for source in recapture.live_sources(ROOT.parent / "shared" / "data", nuaa_stride=16):
        for path in source.files:
            live = webcam_sized(load_image(path))
            seed = zlib.crc32(path.name.encode())
            shown = [("live", recapture.camera_only(live, seed))]
            shown += [(sp.value, recapture.simulate(live, sp, seed)) for sp in recapture.SPECIES]
            for kind, rgb in shown:
                view = faces.locate(Capture((Frame(rgb=rgb),)))
                if view.faces:
                    f = view.faces[0]
                    scores.append(float(cue.minifasnet_scores([f.frame.rgb], [f.box])[0]))
                    kinds.append(kind)
                    groups.append(source.group.split("-")[0])
    out = {"score": np.array(scores), "kind": np.array(kinds), "group": np.array(groups)}
    np.savez(SIM_CACHE, **out)
    return out


def simulated_figures(s: dict[str, np.ndarray], source: str = "all") -> None:
    keep = np.ones(s["score"].size, bool) if source == "all" else s["group"] == source
    bona = s["score"][keep & (s["kind"] == "live")]
    attacks = {k: s["score"][keep & (s["kind"] == k)] for k in sorted(set(s["kind"])) if k != "live"}
    print(f"\nSIMULATED species from {source} live images (limen.lab.recapture; bona fide = camera model only): "
          f"{bona.size} live frames")
    for name, t in (("PAD_MINIFASNET_VERIFY", thresholds.PAD_MINIFASNET_VERIFY),
                    ("PAD_MINIFASNET_ENROL", thresholds.PAD_MINIFASNET_ENROL)):
        per = "  ".join(f"{k} {v:.1%} (of {attacks[k].size})" for k, v in apcer(attacks, t).items())
        print(f"  at {name} = {t:+.3f}: BPCER {bpcer(bona, t):.1%}; APCER {per}")


def timing(cue: MiniFasNetCue, repeat: int) -> None:
    views = [v for v in (located(p) for p in sorted((DATA / "live" / "0001").glob("*.jpg"))[:repeat]) if v]
    texture = TextureCue()
    for name, fn in (("minifasnet", lambda v: cue.minifasnet_scores([v.frame.rgb], [v.box])),
                     ("texture (peer)", lambda v: texture.score(PadSample((v,), analysed=1), Purpose.VERIFY))):
        try:
            fn(views[0])  # warm-up: lazy model loads
        except LimenError as exc:
            print(f"  {name:<15} not timed: {exc}")
            continue
        ms = []
        for v in views:
            t0 = time.perf_counter()
            fn(v)
            ms.append((time.perf_counter() - t0) * 1000)
        print(f"  {name:<15} per frame: median {pct(ms, 50):6.2f} ms  p95 {pct(ms, 95):6.2f} ms  "
              f"({len(ms)} frames, load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")


def forms(models_dir: Path, repeat: int) -> None:
    """CPU time per crop and model of each graph form, interleaved; and a burst as 5 runs vs one batch of 5."""
    views = [v for v in (located(p) for p in sorted((DATA / "live" / "0001").glob("*.jpg"))[:5]) if v]
    multiple = thresholds.PAD_MINIFASNET_CHANNEL_MULTIPLE
    print(f"\ngraph forms: CPU ms per crop (one thread; {repeat} rounds interleaved, "
          f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores at start)")
    for v in graph.Variant:
        imported = load_model(models_dir, v)
        built = {"as imported (PRelu)": imported, "PRelu as Relus": graph.prelu_as_relus(imported),
                 f"run form (Relus, channels to ×{multiple})": graph.run_form(imported, multiple)}
        sessions = {name: cpu_session(model) for name, model in built.items()}
        crops = np.stack([crop_of(view, v) for view in views])
        ms: dict[str, list[float]] = {name: [] for name in sessions}
        burst: dict[str, list[float]] = {"5 runs of 1": [], "1 run of 5": []}
        run_form = sessions[f"run form (Relus, channels to ×{multiple})"]
        for i in range(repeat + 5):
            for name, session in sessions.items():
                c = time.thread_time()
                session.run([graph.OUTPUT_NAME], {graph.INPUT_NAME: crops[i % len(crops)][None]})
                if i >= 5:
                    ms[name].append((time.thread_time() - c) * 1000)
            c = time.thread_time()
            for one in crops:
                run_form.run([graph.OUTPUT_NAME], {graph.INPUT_NAME: one[None]})
            c2 = time.thread_time()
            run_form.run([graph.OUTPUT_NAME], {graph.INPUT_NAME: crops})
            if i >= 5:
                burst["5 runs of 1"].append((c2 - c) * 1000)
                burst["1 run of 5"].append((time.thread_time() - c2) * 1000)
        for name, t in ms.items():
            print(f"  {v.spec.model:<15} {name:<36} median {pct(t, 50):6.3f} ms  p95 {pct(t, 95):6.3f} ms")
        for name, t in burst.items():
            print(f"  {v.spec.model:<15} run form, {len(crops)} crops as {name:<16}  "
                  f"median {pct(t, 50):6.3f} ms  p95 {pct(t, 95):6.3f} ms")
    print(f"  load {os.getloadavg()[0]:.2f} at the end")


def crop_of(view: FaceView, variant: graph.Variant) -> np.ndarray:
    from limen.pad.minifasnet import crop

    return crop(view.frame.rgb, view.box, variant.spec.scale)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--simulated", action="store_true", help="also score simulated recapture species")
    parser.add_argument("--forms-only", action="store_true", help="only time the graph forms")
    args = parser.parse_args()
    models_dir = args.models_dir
    if models_dir is None:
        models_dir = Path("/tmp/limen-bench-models")
        if not (models_dir / "minifasnet" / "MiniFASNetV1SE.json").exists():
            import_models(WEIGHTS, models_dir)
    cue = MiniFasNetCue(models_dir)
    if not cue.check():
        raise SystemExit(f"MiniFASNet not imported into {models_dir}")
    if args.forms_only:
        forms(models_dir, args.repeat * 5)
        return
    s = score_all(cue)
    live, attack = s["kind"] == "live", s["kind"] == "print"
    print(f"machine load: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    figures("nuaa-dev, every frame (DEVELOPMENT DATA)", s["score"][live], s["score"][attack])
    for session in ("01", "02"):
        inside = s["session"] == session
        figures(f"nuaa-dev session {session} only", s["score"][live & inside], s["score"][attack & inside])
    if args.simulated:
        simulated = score_simulated(cue)
        for source in ("all", "nuaa", "lfw", "web"):
            simulated_figures(simulated, source)
    print("\ntiming (one frame, one core; crops + both models):")
    timing(cue, args.repeat)
    forms(models_dir, args.repeat * 5)


if __name__ == "__main__":
    main()
