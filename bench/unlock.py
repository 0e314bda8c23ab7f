"""A 5-frame face unlock on one core, stage by stage, beside its peers in the same run.

    python bench/unlock.py [--runs 30] [--cli-runs 10] [--gallery 100000] [--skip-serve] [--only SECTION ...]

Every figure is printed with the machine's 1-minute load average beside it.
The process pins itself to one core and ONNX Runtime / OpenMP / OpenCV to one
thread.  Sections:

1. In-process unlock of a 640×480 NUAA webcam burst (nuaa-dev live, subject
   0004, session 02 frames 20–24) against a vault enrolled from frames 0–7 of
   sessions 01 and 02 (`REFERENCE`; the protected distance is printed):
   detect (detect + follow), landmarks (inside detect), PAD, sample (chips +
   quality gates), embed (the best frame only), match (vault 1:1 distance).
   Every stage runs whatever PAD decided (the path of a live person); how
   often PAD passed and the face matched is printed beside the figure, and
   PAD's CPU time per step (its face location, each cue, the fusion).
   Beside it, same run: the previous pipeline (full-resolution detection and
   an embedding of every frame), `face_recognition` (`pip install --no-deps
   face_recognition`; skipped with a message when absent) on the same five
   frames, and the embedding floor (5 × the ONNX embedding of one chip).
2. First unlock after a start: fresh processes that open the vault, warm the
   models (face engine, PAD model, vault projection and index, as `limen
   serve` should at start) and unlock once; and the same without warming.
3. `limen --help` and `limen status`: repeated fresh processes (hyperfine-style).
4. Protected 1:N at `--gallery` templates: per-probe time (projection + search,
   the best candidates' full templates unsealed) and index megabytes.
5. `limen serve` resident memory (peak, from /proc) under face load and under
   concurrent PIN load (bench/service.py's server).
6. Where the service's memory goes: a fresh process imports and loads what
   `limen serve` does, one piece at a time, printing the VmRSS each adds.
7. `--only order`: what the order of the burst's work could recover (issue #12,
   cache locality): each stage's CPU time in the unlock's order and run again
   right after itself (warm caches), and dlib's 5-point fits inside the
   unlock, back to back on the burst's frames, and repeated on one frame.

Writes bench/results/unlock.json and unlock.md.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from benchstats import pct  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NUAA = ROOT.parent / "shared" / "data" / "nuaa-dev"
RESULTS = ROOT / "bench" / "results"
SUBJECT = "0004"
LIMEN = [sys.executable, "-m", "limen"]


def load() -> float:
    return round(os.getloadavg()[0], 2)


def stats(ms: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(ms), 2), "p95_ms": round(pct(ms, 95), 2), "n": len(ms),
            "load": load()}


def line(name: str, s: dict[str, float], extra: str = "") -> str:
    text = f"{name:<42}{s['median_ms']:>10.2f}{s['p95_ms']:>10.2f}   load {s['load']:<5}{extra}"
    print(text, flush=True)
    return text


def one_core() -> int:
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    import cv2

    cv2.setNumThreads(1)
    return cpu


def nuaa_frames(session: str, start: int, count: int) -> list[Path]:
    folder = NUAA / "live" / SUBJECT
    found = sorted((f for f in folder.glob("*.jpg") if f.name.split("_")[3] == session),
                   key=lambda f: int(f.stem.split("_")[4]))
    return found[start : start + count]


# ------------------------------------------------------------------ 1. in-process unlock


class _Timed:
    """Wraps a function and adds its time to a counter (to see landmarks inside detect)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn, self.ms = fn, 0.0

    def __call__(self, *args: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kw)
        finally:
            self.ms += (time.perf_counter() - t0) * 1000


REFERENCE = (("01", 0, 8), ("02", 0, 8))  # (session, first frame, frames) enrolled; the burst is session 02, 20–24
# (a reference from session 01 alone sits at the threshold: angle/π 0.086 to the burst vs 0.085, so it matched
# 0/30 or 30/30 by projection key; from both sessions 0.050, 0.049–0.053 protected over 8 keys)


def enrolled_store(data_dir: Path) -> Any:
    """A vault in `data_dir` holding subject 0004's reference from `REFERENCE` (no frame of the burst)."""
    import numpy as np

    from limen.bio.face import FaceEngine, FaceSample
    from limen.bio.face.compare import fuse_reference
    from limen.bio.templates import Modality
    from limen.capture import load_image
    from limen.config import load_settings
    from limen.vault import open_template_store

    store = open_template_store(load_settings(data_dir))
    engine = FaceEngine()
    samples = [engine.extract(load_image(p)) for part in REFERENCE for p in nuaa_frames(*part)]
    embeddings = np.array([s.embedding for s in samples if isinstance(s, FaceSample)])
    store.put("dana", Modality.FACE, fuse_reference(embeddings))
    return store


def bench_unlock(runs: int, data_dir: Path) -> dict[str, Any]:
    import numpy as np

    from limen.bio.face import FaceEngine, FaceSample, align, burst, detect
    from limen.bio.templates import Modality
    from limen.capture import Capture, Frame, load_image
    from limen.config import load_settings
    from limen.pad import Purpose, assess, pipeline

    store = enrolled_store(data_dir)
    models_dir = load_settings(data_dir).models_dir
    engine = FaceEngine()
    engine.warm()
    images = [load_image(p) for p in nuaa_frames("02", 20, 5)]
    capture = Capture(frames=tuple(Frame(rgb=i) for i in images))
    threshold = store.threshold(Modality.FACE)
    timed = _Timed(align.landmarks)
    stages: dict[str, list[float]] = {k: [] for k in ("detect", "landmarks", "pad", "sample", "embed", "match")}
    total: list[float] = []
    matched = pad_passed = 0
    distances: list[float] = []
    pad_reason = ""
    # CPU time of this process (pinned to one core): what other jobs on the machine cannot inflate
    cpu: dict[str, list[float]] = {"unlock": [], "unlock: detect": [], "unlock: pad": [], "previous": [], "floor": []}
    cue_cpu: dict[str, float] = {}  # PAD's CPU time per step of one assessment (face location, each cue, fusion)
    pad_steps: dict[str, list[float]] = {}
    run_cue, locate, fuse = pipeline._run, pipeline.faces.locate, pipeline.fusion.fuse

    def cpu_of(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kw: Any) -> Any:
            c = time.process_time()
            try:
                return fn(*args, **kw)
            finally:
                key = args[0].name if name == "cue" else name
                cue_cpu[key] = cue_cpu.get(key, 0.0) + (time.process_time() - c) * 1000
        return wrapped

    # the floor is measured in the same iterations as the unlock (interleaved), so both medians come from the
    # same minutes of a shared machine
    chip = align.face_chip(images[0], align.landmarks(images[0], detect.detect_faces(images[0])[0].box))
    floor: list[float] = []
    burst.align.landmarks = timed  # type: ignore[attr-defined]  # bench instrumentation only
    pipeline._run = cpu_of("cue", run_cue)  # type: ignore[assignment]
    pipeline.faces.locate = cpu_of("face location", locate)  # type: ignore[assignment]
    pipeline.fusion.fuse = cpu_of("fusion", fuse)  # type: ignore[assignment]
    try:
        for i in range(runs + 2):
            timed.ms = 0.0
            cue_cpu.clear()
            t0, c0 = time.perf_counter(), time.process_time()
            tracks = burst.detect_burst(images)
            t1, c1 = time.perf_counter(), time.process_time()
            in_detect = timed.ms
            verdict = assess(capture, purpose=Purpose.VERIFY, boxes=[t.box if t else None for t in tracks],
                             models_dir=models_dir)
            t2, c2 = time.perf_counter(), time.process_time()
            out = engine.best_of_burst(images, tracks)  # timed whatever PAD said: the path of a live person
            t3 = time.perf_counter()
            dist = store.distance("dana", Modality.FACE, out.embedding) if isinstance(out, FaceSample) else None
            t4 = time.perf_counter()
            if i < 2:
                continue  # first runs warm the caches
            matched += dist is not None and dist <= threshold
            distances.append(float("nan") if dist is None else dist)
            pad_passed += verdict.passed
            pad_reason = f"{verdict.reason} {getattr(verdict, 'detail', '')}".strip()
            stages["detect"].append((t1 - t0) * 1000)
            stages["landmarks"].append(in_detect)
            stages["pad"].append((t2 - t1) * 1000)
            timings = out.timings
            stages["sample"].append(timings.get("chip", 0.0) + timings.get("quality", 0.0))
            stages["embed"].append(timings.get("embed", 0.0))
            stages["match"].append((t4 - t3) * 1000)
            total.append((t4 - t0) * 1000)
            cpu["unlock"].append((time.process_time() - c0) * 1000)
            cpu["unlock: detect"].append((c1 - c0) * 1000)
            cpu["unlock: pad"].append((c2 - c1) * 1000)
            for step, ms in cue_cpu.items():
                pad_steps.setdefault(f"unlock: pad: {step}", []).append(ms)
            f0, g0 = time.perf_counter(), time.process_time()
            for _ in range(5):
                engine.embedder.embed([chip])
            floor.append((time.perf_counter() - f0) * 1000)
            cpu["floor"].append((time.process_time() - g0) * 1000)
    finally:
        burst.align.landmarks = timed.fn  # type: ignore[attr-defined]
        pipeline._run, pipeline.faces.locate, pipeline.fusion.fuse = run_cue, locate, fuse  # type: ignore[assignment]

    previous: list[float] = []  # the pipeline before: full-resolution detection + every frame embedded
    for i in range(runs + 2):
        t0, c0 = time.perf_counter(), time.process_time()
        found = [detect.detect_faces(rgb) for rgb in images]
        verdict = assess(capture, purpose=Purpose.VERIFY, boxes=[f[0].box if f else None for f in found],
                         models_dir=models_dir)
        outs = [engine.extract(rgb, f) for rgb, f in zip(images, found, strict=True)]
        best = max((o for o in outs if isinstance(o, FaceSample)), key=lambda o: o.quality.sharpness)
        store.distance("dana", Modality.FACE, best.embedding)
        if i >= 2:
            previous.append((time.perf_counter() - t0) * 1000)
            cpu["previous"].append((time.process_time() - c0) * 1000)

    peer = bench_face_recognition(images, runs)
    store.close()
    result: dict[str, Any] = {
        "embedder": engine.embedder.name, "matched": f"{matched}/{runs}", "pad_passed": f"{pad_passed}/{runs}",
        "distance": {"median": round(statistics.median(distances), 4), "threshold": threshold,
                     "reference": [list(r) for r in REFERENCE]},
        "pad_last_verdict": pad_reason,
        "stages": {k: stats(v) for k, v in stages.items()}, "unlock": stats(total),
        "previous_pipeline": stats(previous), "embedding_floor_5x": stats(floor),
        "face_recognition": stats(peer) if peer else None,
        "ratio_to_floor": round(statistics.median(total) / statistics.median(floor), 2),
        "cpu_ms": {k: stats(v) for k, v in cpu.items() if k in ("unlock", "unlock: detect", "unlock: pad")}
        | {k: stats(v) for k, v in sorted(pad_steps.items(), key=lambda kv: -statistics.median(kv[1]))
           if statistics.median(v) >= 0.05}
        | {k: stats(v) for k, v in cpu.items() if k in ("previous", "floor")},
        "cpu_ratio_to_floor": round(statistics.median(cpu["unlock"]) / statistics.median(cpu["floor"]), 2),
        "tracks": [("detected" if t.detected else "followed") if t else "none" for t in burst.detect_burst(images)],
    }
    del np
    return result


def bench_face_recognition(images: list[Any], runs: int) -> list[float] | None:
    try:
        import face_recognition
    except ImportError:
        print("face_recognition not installed (pip install --no-deps face_recognition): its column is skipped")
        return None
    out = []
    for i in range(runs + 2):
        t0 = time.perf_counter()
        for rgb in images:
            face_recognition.face_encodings(rgb, model="small")
        if i >= 2:
            out.append((time.perf_counter() - t0) * 1000)
    return out


# ------------------------------------------------------------------ 2. first unlock after a start

FIRST = """
import json, os, sys, time
t0 = time.perf_counter()
cpu = max(os.sched_getaffinity(0)); os.sched_setaffinity(0, {cpu})
sys.path.insert(0, sys.argv[3])
import unlock
from limen.bio.face import FaceEngine, FaceSample, detect_burst
from limen.bio.templates import Modality
from limen.capture import Capture, Frame, load_image
from limen.config import load_settings
from limen.pad import Purpose, assess
from limen.pad.texture import shipped_model
from limen.pad.minifasnet import MiniFasNetCue
from limen.vault import open_template_store
settings = load_settings(__import__('pathlib').Path(sys.argv[1]))
store = open_template_store(settings)
engine = FaceEngine()
t1 = time.perf_counter()
if sys.argv[2] == "warm":  # what `limen serve` warms at start (service.app._warm_models)
    engine.warm(); shipped_model(); MiniFasNetCue(settings.models_dir).check()
    assess(Capture(frames=(Frame(rgb=__import__("numpy").zeros((240, 320, 3), dtype="uint8")),)),
           purpose=Purpose.VERIFY, models_dir=settings.models_dir)
    store.search(Modality.FACE, __import__("numpy").zeros(128), 1)
t2 = time.perf_counter()
images = [load_image(p) for p in unlock.nuaa_frames("02", 20, 5)]
capture = Capture(frames=tuple(Frame(rgb=i) for i in images))
t3, c3 = time.perf_counter(), time.process_time()
tracks = detect_burst(images)
verdict = assess(capture, purpose=Purpose.VERIFY, boxes=[t.box if t else None for t in tracks],
                 models_dir=settings.models_dir)
out = engine.best_of_burst(images, tracks)
d = store.distance("dana", Modality.FACE, out.embedding)
t4 = time.perf_counter()
print(json.dumps({"start_ms": (t1 - t0) * 1000, "warm_ms": (t2 - t1) * 1000, "first_unlock_ms": (t4 - t3) * 1000,
                  "first_unlock_cpu_ms": (time.process_time() - c3) * 1000,
                  "matched": bool(d <= store.threshold(Modality.FACE))}))
"""


def bench_first(data_dir: Path, runs: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    env = {**os.environ, "LIMEN_DATA_DIR": str(data_dir)}
    for mode in ("warm", "cold"):
        rows = []
        for _ in range(runs):
            out = subprocess.run([sys.executable, "-c", FIRST, str(data_dir), mode, str(ROOT / "bench")], env=env,
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        keys = ("start_ms", "warm_ms", "first_unlock_ms", "first_unlock_cpu_ms")
        result[mode] = {k: stats([r[k] for r in rows]) for k in keys}
        result[mode]["matched"] = sum(r["matched"] for r in rows)
    return result


# ------------------------------------------------------------------ 3. CLI wall times


def bench_cli(data_dir: Path, runs: int) -> dict[str, Any]:
    env = {**os.environ, "LIMEN_DATA_DIR": str(data_dir)}
    result = {}
    for name, args in (("limen --help", ["--help"]), ("limen status", ["status"])):
        ms, cpu = [], []
        for i in range(runs + 1):
            t0, c0 = time.perf_counter(), _children_cpu()
            subprocess.run([*LIMEN, *args], env=env, capture_output=True, check=False)
            if i:
                ms.append((time.perf_counter() - t0) * 1000)
                cpu.append((_children_cpu() - c0) * 1000)
        result[name] = stats(ms)
        result[f"{name} (CPU time)"] = stats(cpu)
    return result


def _children_cpu() -> float:
    """User + system CPU seconds of finished child processes (what other jobs cannot inflate)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ------------------------------------------------------------------ 4. protected 1:N


def bench_search(gallery: int, probes: int) -> dict[str, Any]:
    """The vault's index at `gallery` people; its full-template fetch unseals one record for real.

    Each record is sealed as the vault seals it (AES-256-GCM over the masked
    bits; the mask is HKDF output keyed by the enrolment seed); the fetch
    opens and unmasks it.  Only the SQLite read of the record is left out.
    """
    import numpy as np
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from limen import thresholds
    from limen.vault.hazmat.kdf import derive
    from limen.vault.hazmat.transforms import SignProjection
    from limen.vault.index import BitIndex

    rng = np.random.default_rng(7)
    key, secret = AESGCM(AESGCM.generate_key(256)), bytes(32)
    nbytes = thresholds.VAULT_FACE_BITS // 8
    projection = SignProjection.from_key(b"k" * 32, 128, thresholds.VAULT_FACE_BITS)
    sealed: dict[str, tuple[bytes, bytes, bytes]] = {}

    def fetch(uid: str) -> Any:
        nonce, seed, blob = sealed[uid]
        masked = np.frombuffer(key.decrypt(nonce, blob, uid.encode()), dtype=np.uint8)
        return np.bitwise_xor(masked, np.frombuffer(derive(secret, b"mask", nbytes, salt=seed), dtype=np.uint8))

    people = rng.standard_normal((gallery, 128))
    index = BitIndex(nbytes, fetch=fetch)
    for start in range(0, gallery, 5000):
        block = projection.project(people[start : start + 5000])
        for i, row in enumerate(block):
            uid, seed, nonce = f"u{start + i}", rng.bytes(16), rng.bytes(12)
            mask = np.frombuffer(derive(secret, b"mask", nbytes, salt=seed), dtype=np.uint8)
            sealed[uid] = (nonce, seed, key.encrypt(nonce, np.bitwise_xor(row, mask).tobytes(), uid.encode()))
            index.add(uid, row)
    picked = rng.choice(gallery, probes, replace=False)
    ms, cpu, hits = [], [], 0
    for i in picked:
        probe = people[i] + rng.standard_normal(128) * 0.35  # the same person, another sample
        t0, c0 = time.perf_counter(), time.process_time()
        found = index.search(projection.project(probe[None])[0], 2)
        ms.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        hits += found[0][0] == f"u{i}"
    return {"gallery": gallery, "probe": stats(ms), "probe_cpu": stats(cpu), "rank1": hits / probes,
            "index_mb": round(index.nbytes / 2**20, 1)}


# ------------------------------------------------------------------ 5. limen serve memory


FIRST_START_S = 20.0  # long enough for the first start's conversion and warm-up on a loaded machine


def bench_serve(seconds: float) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "bench"))
    import service

    data_dir = Path(tempfile.mkdtemp(prefix="limen-unlock-serve-"))
    os.environ["LIMEN_DATA_DIR"] = str(data_dir)
    service.import_pad_models(data_dir)
    headers = service.prepare(data_dir)
    result: dict[str, Any] = {}
    proc, _ = service.start_server(data_dir)  # the first start after install converts and caches the embedder
    try:
        time.sleep(FIRST_START_S)
        result["first start after install, idle"] = {"idle_rss_mb": rss(proc.pid)["rss_mb"], "load": load()}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    for kind, clients, face in (("face load, 2 clients", 2, True), ("PIN load, 16 clients", 16, False)):
        proc, url = service.start_server(data_dir)  # a fresh server for each load: RSS never shrinks
        try:
            time.sleep(3.0)  # the background warm-up at start
            idle = rss(proc.pid)["rss_mb"]
            peak = _Peak(proc.pid)
            peak.start()
            row = service.load(url, clients, seconds, headers, face=face, burst=5)
            peak.stop()
            result[kind] = {"idle_rss_mb": idle, "peak_rss_mb": peak.peak, "requests": row["n"],
                            "busy": row["busy"], "matched": f"{row['matched']}/{row['judged']}" if face else None,
                            "median_ms": row["median_ms"], "p95_ms": row["p95_ms"], "errors": row["errors"],
                            "load": load()}  # requests: those judged; busy (503, face only) apart
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    return result


def rss(pid: int) -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"rss_mb": round(int(fields["VmRSS"].split()[0]) / 1024, 1),
            "hwm_mb": round(int(fields["VmHWM"].split()[0]) / 1024, 1)}


class _Peak(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self._stop_at = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self._stop_at.wait(0.05):
            self.peak = max(self.peak, rss(self.pid)["rss_mb"])

    def stop(self) -> None:
        self._stop_at.set()
        self.join()


# ------------------------------------------------------------------ 6. memory by component

MEMORY = """
import json, sys
from pathlib import Path
def rss():
    f = dict(l.split(":", 1) for l in Path("/proc/self/status").read_text().splitlines() if ":" in l)
    return int(f["VmRSS"].split()[0]) / 1024
rows, last = [], rss()
def step(name):
    global last
    now = rss(); rows.append((name, round(now - last, 1))); last = now
rows.append(("python", round(last, 1)))
import numpy; step("import numpy")
import cv2; step("import cv2")
import dlib; step("import dlib")
import onnxruntime; step("import onnxruntime")
import fastapi; step("import fastapi")
import limen.service, limen.runtime; step("import limen.service, limen.runtime")
import numpy as np
from limen.bio.face import models
from limen.bio.face.embed import get_embedder
from limen.bio.face.fast_embed import check_chips
models.detector(); step("dlib face detector")
models.shape_predictor(); step("dlib 5-point landmarks")
e = get_embedder(); e.embed(check_chips(1)); step(f"embedder ({e.name}) session + one embedding")
from limen.pad.texture import shipped_model; from limen.pad.fusion_model import shipped_fusion
shipped_model(); shipped_fusion(); step("PAD texture + fusion models")
from limen.pad.pipeline import default_cues; default_cues(); step("PAD default cues")
from limen.pad.minifasnet import MiniFasNetCue
MiniFasNetCue(Path(sys.argv[1]) / "models").check(); step("MiniFASNet sessions")
from limen import thresholds
from limen.vault.hazmat.transforms import SignProjection
kept = SignProjection.from_key(bytes(32), 128, thresholds.VAULT_FACE_BITS); step("vault projection (32,768 x 128)")
rows.append(("total", round(rss(), 1)))
rows.append(("SciPy imported (1 = yes; the pulse cue loads it to filter a pulse)", float("scipy" in sys.modules)))
print(json.dumps(rows))
"""


def bench_memory(data_dir: Path) -> list[tuple[str, float]]:
    env = {**os.environ, "LIMEN_DATA_DIR": str(data_dir)}
    subprocess.run([sys.executable, "-c", MEMORY, str(data_dir)], env=env, capture_output=True, check=True)  # caches
    out = subprocess.run([sys.executable, "-c", MEMORY, str(data_dir)], env=env, capture_output=True, text=True,
                         check=True)
    return [(str(k), float(v)) for k, v in json.loads(out.stdout.strip().splitlines()[-1])]


# ------------------------------------------------------------------ main


def bench_order(runs: int, data_dir: Path) -> dict[str, Any]:
    """Each unlock stage in the unlock's order vs right after itself, and the fits' cost by context (CPU ms)."""
    from limen.bio.face import FaceEngine, align, burst
    from limen.capture import Capture, Frame, load_image
    from limen.config import load_settings
    from limen.pad import Purpose, assess

    models_dir = load_settings(data_dir).models_dir
    engine = FaceEngine()
    engine.warm()
    images = [load_image(p) for p in nuaa_frames("02", 20, 5)]
    capture = Capture(frames=tuple(Frame(rgb=i) for i in images))
    tracks = burst.detect_burst(images)
    boxes = [t.box if t else None for t in tracks]
    fitted = [(rgb, t.box) for rgb, t in zip(images, tracks, strict=True) if t]
    chip = align.face_chip(images[0], tracks[0].marks) if tracks[0] else None
    stages: dict[str, Callable[[], Any]] = {
        "detect + follow": lambda: burst.detect_burst(images),
        "pad": lambda: assess(capture, purpose=Purpose.VERIFY, boxes=boxes, models_dir=models_dir),
        "chips + embedding": lambda: engine.best_of_burst(images, tracks)}
    fit_ms: list[float] = []  # per unlock: every fit's CPU time (the tracker's and PAD's), summed
    fits = [0]
    landmarks = burst.align.landmarks

    def timed_fit(*args: Any) -> Any:
        c = time.process_time()
        try:
            return landmarks(*args)
        finally:
            fit_ms[-1] += (time.process_time() - c) * 1000
            fits[0] += 1

    def cpu(fn: Callable[[], Any]) -> float:
        c = time.process_time()
        fn()
        return (time.process_time() - c) * 1000

    def floor() -> None:  # what runs between two unlocks in section 1
        for _ in range(5):
            engine.embedder.embed([chip])

    inside: dict[str, list[float]] = {k: [] for k in stages}
    warm: dict[str, list[float]] = {k: [] for k in stages}
    back_to_back: list[float] = []
    one_frame: list[float] = []
    rgb, box = fitted[len(fitted) // 2]
    for _ in range(runs):
        fit_ms.append(0.0)
        burst.align.landmarks = timed_fit  # type: ignore[attr-defined]  # bench instrumentation only
        try:
            for k, fn in stages.items():
                inside[k].append(cpu(fn))
        finally:
            burst.align.landmarks = landmarks  # type: ignore[attr-defined]
        floor()
        for k, fn in stages.items():
            fn()
            warm[k].append(cpu(fn))
        floor()
        for r, b in fitted:  # the model in the cache again
            align.landmarks(r, b)
        back_to_back.append(cpu(lambda: [align.landmarks(r, b) for r, b in fitted]) / len(fitted))
        one_frame.append(cpu(lambda: [align.landmarks(rgb, box) for _ in range(5)]) / 5)
    out: dict[str, Any] = {f"{k}: in the unlock's order": stats(v) for k, v in inside.items()}
    out |= {f"{k}: right after itself": stats(v) for k, v in warm.items()}
    out["unlock: in order (sum of stages)"] = stats([sum(x) for x in zip(*inside.values(), strict=True)])
    out["unlock: each stage warm (sum)"] = stats([sum(x) for x in zip(*warm.values(), strict=True)])
    out[f"a fit, inside the unlock (mean of {fits[0] // runs})"] = stats([ms / (fits[0] / runs) for ms in fit_ms])
    out["a fit, the burst's frames back to back, warm"] = stats(back_to_back)
    out["a fit, one frame repeated"] = stats(one_frame)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--first-runs", type=int, default=3)
    ap.add_argument("--cli-runs", type=int, default=10)
    ap.add_argument("--gallery", type=int, default=100_000)
    ap.add_argument("--probes", type=int, default=50)
    ap.add_argument("--serve-seconds", type=float, default=8.0)
    ap.add_argument("--skip-serve", action="store_true")
    ap.add_argument("--only", choices=["unlock", "first", "cli", "search", "serve", "memory", "order"],
                    action="append",
                    help="run only these sections (repeatable)")
    args = ap.parse_args()
    if not NUAA.is_dir():
        print(f"dataset missing: {NUAA}", file=sys.stderr)
        return 2
    cpu = one_core()
    machine = {"cpus": os.cpu_count(), "pinned_to_cpu": cpu, "python": platform.python_version(),
               "processor": platform.processor() or platform.machine(), "load_at_start": load()}
    print(f"machine: {machine}")
    data_dir = Path(tempfile.mkdtemp(prefix="limen-unlock-"))
    os.environ["LIMEN_DATA_DIR"] = str(data_dir)
    sys.path.insert(0, str(ROOT / "bench"))
    import service

    machine["pad_models"] = service.import_pad_models(data_dir)
    print(f"PAD models: {machine['pad_models']}")
    lines: list[str] = []
    want = set(args.only or ["unlock", "first", "cli", "search"] + ([] if args.skip_serve else ["serve", "memory"]))
    unlock = first = cli = search = serve = memory = None
    print(f"{'':<42}{'median ms':>10}{'p95 ms':>10}")
    if "unlock" in want or "first" in want:
        unlock = bench_unlock(args.runs, data_dir)  # also enrols the person the first-unlock runs match
        for k, v in unlock["stages"].items():
            lines.append(line(f"  {k}", v))
        lines.append(line("5-frame unlock, in-process", unlock["unlock"],
                          f"  ({unlock['ratio_to_floor']}× the floor; face matched {unlock['matched']} at protected"
                          f" distance {unlock['distance']['median']} (threshold {unlock['distance']['threshold']}),"
                          f" PAD passed {unlock['pad_passed']})"))
        if unlock["pad_passed"] != f"{args.runs}/{args.runs}":
            print(f"  PAD's last verdict: {unlock['pad_last_verdict']}")
        lines.append(line("previous pipeline (same run)", unlock["previous_pipeline"]))
        if unlock["face_recognition"]:
            lines.append(line("face_recognition, 5 frames (same run)", unlock["face_recognition"]))
        lines.append(line("embedding floor: 5 × ONNX embedding", unlock["embedding_floor_5x"]))
        for k, v in unlock["cpu_ms"].items():
            lines.append(line(f"CPU time: {k}", v))
        lines.append(f"CPU-time ratio unlock / floor: {unlock['cpu_ratio_to_floor']}")
        print(lines[-1])
    if "first" in want:
        first = bench_first(data_dir, args.first_runs)
        lines.append(line("warm() at start", first["warm"]["warm_ms"]))
        lines.append(line("first unlock after start, warmed", first["warm"]["first_unlock_ms"]))
        lines.append(line("first unlock after start, not warmed", first["cold"]["first_unlock_ms"]))
        lines.append(line("first unlock after start, warmed, CPU time", first["warm"]["first_unlock_cpu_ms"]))
    if "cli" in want:
        cli = bench_cli(data_dir, args.cli_runs)
        for k, v in cli.items():
            lines.append(line(k, v))
    if "search" in want:
        search = bench_search(args.gallery, args.probes)
        lines.append(line(f"1:N at {args.gallery}: projection + search", search["probe"],
                          f"  index {search['index_mb']} MB, rank-1 {search['rank1']:.2f}"))
        lines.append(line("1:N per probe, CPU time", search["probe_cpu"]))
    if "serve" in want:
        try:
            serve = bench_serve(args.serve_seconds)
        except (Exception, SystemExit) as exc:  # a broken server must not lose the figures above
            print(f"serve section failed: {type(exc).__name__}: {exc}")
            serve = {}
        text = "limen serve RSS: " + "; ".join(
            f"{k}: idle {v['idle_rss_mb']} MB, peak {v['peak_rss_mb']} MB ({v['requests']} judged, "
            f"{v['busy']} busy, {v['errors']} errors" + (f", matched {v['matched']}" if v["matched"] else "")
            + f", p95 {v['p95_ms']} ms, load {v['load']})" if "peak_rss_mb" in v else
            f"{k}: {v['idle_rss_mb']} MB (load {v['load']})" for k, v in serve.items())
        print(text)
        lines.append(text)
    if "order" in want:
        for k, v in bench_order(args.runs, data_dir).items():
            lines.append(line(f"CPU time: {k}", v))
    if "memory" in want:
        memory = bench_memory(data_dir)
        text = "service memory by component (VmRSS MB added): " + "; ".join(f"{k} {v}" for k, v in memory)
        print(text)
        lines.append(text)
    result = {"machine": machine, "command": "python bench/unlock.py " + " ".join(sys.argv[1:]),
              "unlock": unlock, "first": first, "cli": cli, "search": search, "serve": serve, "memory": memory,
              "load_at_end": load()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "unlock" if not args.only else "unlock-" + "-".join(sorted(want))
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    md = ["# bench/unlock.py", "", f"`{result['command']}`, machine {machine}", "", "```",
          f"{'':<42}{'median ms':>10}{'p95 ms':>10}", *lines, "```", ""]
    (RESULTS / f"{name}.md").write_text("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
