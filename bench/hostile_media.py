"""Hostile images and videos through the upload decoder: crashes and peak memory.

    python bench/hostile_media.py [--items 10000] [--seed 1] [--chunk 250]

Each item is made here from a few small seeds (no data set): valid images in
seven formats with fuzzed header bytes, truncated at random points, declaring
huge dimensions (PNG/JPEG/GIF/BMP headers patched up to 65,535 px a side),
polyglots (PNG+ZIP, JPEG+HTML, GIF+script, PDF-headed PNG), random bytes; and
videos: small MJPEG AVIs fuzzed, truncated or with patched frame sizes, a real
6000×6000 MJPEG AVI (the issue's memory bomb), YUV4MPEG headers declaring huge
frames.  Every item goes through what the service runs on an upload
(`decode_image_bytes` with one `PixelBudget`, or a temp file + `load_capture`).

Outcomes: decoded, refused (`BadImage`, one line), or crash (any other
exception, or the worker process dying).  Items run in worker processes, a
fresh one per chunk; each reports its peak RSS (VmHWM) above its baseline after
imports.  Prints the figures and the machine load; writes
bench/results/hostile_media.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import struct
import sys
import tempfile
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchstats import pct  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
IMAGE_KINDS = ("fuzz", "truncate", "huge", "polyglot", "random")
VIDEO_KINDS = ("fuzz", "truncate", "huge-header", "huge-real", "y4m-huge", "random")


# ---------------------------------------------------------------------- seeds


def _image_seeds() -> dict[str, bytes]:
    from PIL import Image

    rng = random.Random(7)
    img = Image.new("RGB", (48, 40))
    img.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(48 * 40)])
    seeds = {}
    for fmt, ext in (("PNG", "png"), ("JPEG", "jpg"), ("GIF", "gif"), ("BMP", "bmp"), ("TIFF", "tif"),
                     ("WEBP", "webp"), ("PPM", "ppm")):
        buf = io.BytesIO()
        img.save(buf, fmt)
        seeds[ext] = buf.getvalue()
    return seeds


def _video_seed(path: Path, size: tuple[int, int], frames: int) -> bytes:
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    frame = np.zeros((size[1], size[0], 3), np.uint8)
    frame[::7] = 200
    for _ in range(frames):
        writer.write(frame)
    writer.release()
    return path.read_bytes()


# ---------------------------------------------------------------------- mutations


def _flip(data: bytes, rng: random.Random, head: int = 96, n: int = 4) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, n)):
        i = rng.randrange(min(head, len(out)))
        out[i] = rng.randrange(256)
    return bytes(out)


def _huge_image(ext: str, data: bytes, rng: random.Random) -> bytes:
    w, h = rng.choice([(65535, 65535), (60000, 2), (4097, 4097), (20000, 20000), (1, 65535)])
    out = bytearray(data)
    if ext == "png":
        ihdr = struct.pack(">II", w, h) + out[24:29]
        out[16:29] = ihdr
        out[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)) & 0xFFFFFFFF)
    elif ext == "jpg":
        i = out.find(b"\xff\xc0")
        if i < 0:
            i = out.find(b"\xff\xc2")
        out[i + 5:i + 9] = struct.pack(">HH", h, w)
    elif ext == "gif":
        out[6:10] = struct.pack("<HH", w, h)
        i = out.find(b"\x2c", 13)
        out[i + 5:i + 9] = struct.pack("<HH", w, h)
    elif ext == "bmp":
        out[18:26] = struct.pack("<ii", w, h)
    else:  # a PNG bomb in the clear: every format's header says its size
        return _huge_image("png", _image_seeds_cache["png"], rng)
    return bytes(out)


def _polyglot(seeds: dict[str, bytes], rng: random.Random) -> bytes:
    png, jpg, gif = seeds["png"], seeds["jpg"], seeds["gif"]
    zipped = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("evil.html", "<script>alert(1)</script>")
    return rng.choice([
        png + zipped.getvalue(),
        jpg + b"<html><script>alert(1)</script></html>",
        gif[:-1] + b"*/=alert(1);/*" + gif[-1:],
        b"%PDF-1.4\n" + png,
        zipped.getvalue() + png,
        b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>" + jpg,
    ])


def _avi_patch_size(data: bytes, w: int, h: int) -> bytes:
    out = bytearray(data)
    i = out.find(b"avih")
    if i >= 0:
        out[i + 8 + 32:i + 8 + 40] = struct.pack("<II", w, h)
    i = out.find(b"strf")
    if i >= 0:
        out[i + 8 + 4:i + 8 + 12] = struct.pack("<ii", w, h)
    j = 0
    while (j := out.find(b"\xff\xc0", j + 1)) > 0:  # every JPEG frame's own size too
        out[j + 5:j + 9] = struct.pack(">HH", h, w)
    return bytes(out)


def _y4m_huge(rng: random.Random) -> bytes:
    w, h = rng.choice([(6000, 6000), (65535, 65535), (4097, 4097)])
    return f"YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C420jpeg\nFRAME\n".encode() + os.urandom(rng.randint(0, 4096))


_image_seeds_cache: dict[str, bytes] = {}


def _make_video(kind: str, small: bytes, huge_real: bytes, rng: random.Random) -> bytes:
    if kind == "fuzz":
        return _flip(small, rng, head=len(small), n=16)
    if kind == "truncate":
        return small[:rng.randrange(1, len(small))]
    if kind == "huge-header":
        return _avi_patch_size(small, *rng.choice([(6000, 6000), (65535, 2), (4097, 4097)]))
    if kind == "huge-real":
        return huge_real
    if kind == "y4m-huge":
        return _y4m_huge(rng)
    return os.urandom(rng.randint(1, 64 * 1024))


def _make_image(kind: str, ext: str, seeds: dict[str, bytes], rng: random.Random) -> bytes:
    base = seeds[ext]
    if kind == "fuzz":
        return _flip(base, rng)
    if kind == "truncate":
        return base[:rng.randrange(1, len(base))]
    if kind == "huge":
        return _huge_image(ext, base, rng)
    if kind == "polyglot":
        return _polyglot(seeds, rng)
    return os.urandom(rng.randint(1, 8192))


def make_items(n: int, seed: int, workdir: Path) -> list[tuple[str, str, str]]:
    """(kind, name, path) for each item; the bytes are written under `workdir`."""
    rng = random.Random(seed)
    seeds = _image_seeds()
    _image_seeds_cache.update(seeds)
    small = _video_seed(workdir / "seed-small.avi", (64, 48), 10)
    huge_real = _video_seed(workdir / "seed-huge.avi", (6000, 6000), 2)
    items = []
    for k in range(n):
        video = k % 5 == 4  # one in five is a video
        if video:
            kind = rng.choice(VIDEO_KINDS)
            data = _make_video(kind, small, huge_real, rng)
            ext = ".y4m" if kind == "y4m-huge" else rng.choice([".avi", ".mp4", ".mov", ".webm"])
            kind = "video-" + kind
        else:
            kind = rng.choice(IMAGE_KINDS)
            ext_seed = rng.choice(sorted(seeds))
            data = _make_image(kind, ext_seed, seeds, rng)
            ext = "." + ext_seed
            kind = "image-" + kind
        path = workdir / f"{k:05d}{ext}"
        if kind == "video-huge-real":
            path = workdir / "seed-huge.avi"  # one copy on disk, sent as often as drawn
        else:
            path.write_bytes(data)
        items.append((kind, f"upload{ext}", str(path)))
    return items


# ---------------------------------------------------------------------- worker


def _peak_kb() -> int:
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmHWM")).split()[1])


def run_chunk(items: list[tuple[str, str, str]]) -> dict[str, object]:
    """Decode each item as the service would; outcomes, per-item seconds, and this process's peak RSS growth."""
    import shutil

    import cv2  # noqa: F401 - imported before the baseline, as in the service

    from limen.capture.sources import VIDEO_SUFFIXES, PixelBudget, decode_image_bytes, load_capture
    from limen.errors import BadImage

    baseline = _peak_kb()
    rows = []
    for kind, name, path in items:
        data = Path(path).read_bytes()
        t0 = time.perf_counter()
        try:
            budget = PixelBudget()
            if Path(name).suffix in VIDEO_SUFFIXES:
                tmp = Path(tempfile.mkdtemp(prefix="limen-upload-"))
                try:
                    target = tmp / ("upload" + Path(name).suffix)
                    target.write_bytes(data)
                    load_capture(target, name=name, budget=budget)
                finally:
                    shutil.rmtree(tmp)
            else:
                decode_image_bytes(data, name, budget)
            outcome, detail = "decoded", ""
        except BadImage as exc:
            outcome, detail = "refused", str(exc)
            if "limen-upload" in detail or "/tmp" in detail:
                outcome = "leak"
        except Exception as exc:  # noqa: BLE001 - what the benchmark counts
            outcome, detail = "crash", f"{type(exc).__name__}: {exc}"[:200]
        rows.append((kind, outcome, time.perf_counter() - t0, detail))
    return {"rows": rows, "peak_growth_kb": _peak_kb() - baseline, "baseline_kb": baseline}


# ---------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=250)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="limen-hostile-") as tmp:
        items = make_items(args.items, args.seed, Path(tmp))
        chunks = [items[i:i + args.chunk] for i in range(0, len(items), args.chunk)]
        results, died = [], []
        for chunk in chunks:
            try:
                with ProcessPoolExecutor(max_workers=1) as pool:  # a fresh process: its own peak RSS
                    results.append(pool.submit(run_chunk, chunk).result(timeout=1800))
            except BrokenProcessPool:
                for item in chunk:  # find the item that killed the worker
                    try:
                        with ProcessPoolExecutor(max_workers=1) as pool:
                            results.append(pool.submit(run_chunk, [item]).result(timeout=600))
                    except BrokenProcessPool:
                        died.append(item[0])
    rows = [r for res in results for r in res["rows"]]  # type: ignore[attr-defined]
    outcomes: dict[str, dict[str, int]] = {}
    for kind, outcome, _, _ in rows:
        outcomes.setdefault(kind, {}).setdefault(outcome, 0)
        outcomes[kind][outcome] += 1
    crashes = [d for _, o, _, d in rows if o == "crash"] + [f"worker died on {k}" for k in died]
    leaks = sum(1 for _, o, _, _ in rows if o == "leak")
    peak_mb = max(int(res["peak_growth_kb"]) for res in results) / 1024  # type: ignore[call-overload]
    base_mb = max(int(res["baseline_kb"]) for res in results) / 1024  # type: ignore[call-overload]
    ms = {k: [s * 1000 for kk, _, s, _ in rows if kk == k] for k in outcomes}
    huge_refused = [s * 1000 for k, o, s, _ in rows if o == "refused" and "huge" in k]
    result = {
        "command": "python bench/hostile_media.py " + " ".join(sys.argv[1:]),
        "items": len(rows) + len(died), "crashes": len(crashes), "crash_examples": crashes[:10],
        "server_paths_in_errors": leaks,
        "peak_rss_growth_mb_max_over_chunks": round(peak_mb, 1), "worker_baseline_mb": round(base_mb, 1),
        "chunk": args.chunk, "outcomes": outcomes,
        "ms_per_item": {k: {"median": round(pct(v, 50), 2), "p95": round(pct(v, 95), 2)} for k, v in ms.items()},
        "huge_refusal_ms": {"median": round(pct(huge_refused, 50), 2), "p95": round(pct(huge_refused, 95), 2),
                            "n": len(huge_refused)},
        "seconds": round(time.perf_counter() - t_start, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_1m_before": round(load_before, 1), "load_1m_after": round(os.getloadavg()[0], 1)},
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "hostile_media.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
