"""Benchmark of `limen serve`: unlock latency through the HTTP API, and how many clients it holds.

    python bench/service.py [--requests 20] [--frames 5] [--seconds 6]

1. Face unlock latency: a burst of `--frames` real 640×480 NUAA webcam JPEGs
   of the enrolled person, POSTed to /api/kiosk/unlock one after another
   (decode + PAD + face pipeline + vault search + access engine + audit).
2. Capacity: N concurrent API clients (each alternating GET /api/lock with a
   bearer token and a keypad PIN at /api/kiosk/keypad) for `--seconds`; the
   largest N whose p95 stays under 1 s.  Also face-unlock clients at N = 1, 2, 4.

The server runs in its own process (uvicorn, one worker, malloc arenas capped, as `limen serve`);
the load generator uses threads in this process.  Rate limits are lifted in
the benchmark server (they would answer 429 long before the machine is busy).
Writes bench/results/service.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
NUAA = ROOT.parent / "shared" / "data" / "nuaa-dev"
RESULTS = ROOT / "bench" / "results"
PIN = "482915"
ENROLLED = "0004"

SERVER = """
import sys, uvicorn
from limen.cli.serve import limit_malloc_arenas
limit_malloc_arenas()  # as `limen serve` does before it starts
from limen.config import load_settings
from limen.service import create_app
from limen.service.ratelimit import RateLimiter
app = create_app(load_settings(__import__('pathlib').Path(sys.argv[1]), port=int(sys.argv[2])))
app.state.ctx.unlock_limiter = RateLimiter(1e9, 10**9, 1e9)
app.state.ctx.login_limiter = RateLimiter(1e9, 10**9, 1e9)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def frames(subject: str, session: str, n: int, start: int = 0, kind: str = "live") -> list[Path]:
    folder = NUAA / kind / subject
    found = sorted((p for p in folder.glob("*.jpg") if p.stem.split("_")[3] == session),  # not GG/PP == session
                   key=lambda p: int(p.stem.rsplit("_", 1)[-1]))
    return found[start:start + n]


def import_pad_models(data_dir: Path) -> str:
    """PAD's MiniFASNet weights into `data_dir` (as the owner does with `limen models import`), if available."""
    source = ROOT.parent / "shared" / "models" / "minifasnet"
    if not source.is_dir():
        return f"no MiniFASNet weights at {source}: PAD cannot pass a face, enrolment will be refused"
    out = subprocess.run([sys.executable, "-m", "limen", "models", "import", str(source)],
                         env={**os.environ, "LIMEN_DATA_DIR": str(data_dir)}, capture_output=True, text=True,
                         check=False)
    return "MiniFASNet imported" if out.returncode == 0 else f"MiniFASNet import failed: {out.stderr.strip()[-200:]}"


def prepare(data_dir: Path) -> dict[str, str]:
    """Owner + enrolled face + API token + a paired door screen in `data_dir`; returns the clients' headers."""
    import cv2

    from limen.config import load_settings
    from limen.service import close_app, create_app
    from limen.service.accounts import Scope
    from limen.service.lockservice import Upload

    app = create_app(load_settings(data_dir))
    try:
        ctx = app.state.ctx
        user_id = ctx.lock.first_owner("Bench Owner", PIN)
        owner = ctx.accounts.create_first_owner(ctx.setup_token, "bench", "bench password 123", user_id)
        token = ctx.accounts.issue_token(owner, "bench", {Scope.READ}, 1)[1]
        kiosk = ctx.accounts.pair_local_screen()
        burst = [Upload(p.name, "image/jpeg", cv2.imencode(".jpg", cv2.imread(str(p)))[1].tobytes())
                 for p in frames(ENROLLED, "01", 8)]
        ctx.lock.enrol(user_id, "Dana", burst, "benchmark", 1, True, from_camera=True)
        return {"Authorization": f"Bearer {token}", "Cookie": f"limen_kiosk={kiosk}"}
    finally:
        close_app(app)


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(data_dir), str(port)])
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(f"{url}/api/health", timeout=1)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


def summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"n": len(ms), "median_ms": round(statistics.median(ms), 1), "p95_ms": round(p95, 1),
            "max_ms": round(ordered[-1], 1)}


def face_files(paths: list[Path]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("frames", (p.name, p.read_bytes(), "image/jpeg")) for p in paths]


def unlock_latency(url: str, n: int, burst: int, headers: dict[str, str]) -> dict[str, Any]:
    probe = face_files(frames(ENROLLED, "02", burst, start=10))
    ms, opened = [], 0
    with httpx.Client(timeout=60, headers=headers) as c:
        for _ in range(n):
            t0 = time.perf_counter()
            r = c.post(f"{url}/api/kiosk/unlock", files=probe)
            ms.append((time.perf_counter() - t0) * 1000)
            opened += bool(r.json().get("opened"))
    return {**summary(ms), "opened": opened, "frames": burst}


def load(url: str, clients: int, seconds: float, headers: dict[str, str], face: bool, burst: int) -> dict[str, Any]:
    ms: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    probe = face_files(frames(ENROLLED, "02", burst, start=10)) if face else []

    def client(i: int) -> None:
        with httpx.Client(timeout=120, headers=headers) as c:
            k = i
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                if face:
                    r = c.post(f"{url}/api/kiosk/unlock", files=probe)
                elif k % 2:
                    r = c.post(f"{url}/api/kiosk/keypad", json={"entry": PIN})
                else:
                    r = c.get(f"{url}/api/lock")
                elapsed = (time.perf_counter() - t0) * 1000
                k += 1
                with lock:
                    ms.append(elapsed)
                    errors[0] += r.status_code >= 400

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"clients": clients, **summary(ms), "errors": errors[0], "throughput_rps": round(len(ms) / wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    if not NUAA.exists():
        raise SystemExit(f"needs {NUAA}")
    data_dir = Path(tempfile.mkdtemp(prefix="limen-bench-"))
    os.environ["LIMEN_DATA_DIR"] = str(data_dir)
    print(f"PAD models: {import_pad_models(data_dir)}")
    headers = prepare(data_dir)
    proc, url = start_server(data_dir)
    try:
        latency = unlock_latency(url, args.requests, args.frames, headers)
        print(f"face unlock ({args.frames} frames): median {latency['median_ms']} ms, p95 {latency['p95_ms']} ms,"
              f" opened {latency['opened']}/{latency['n']}")
        api_levels = []
        for n in (1, 2, 4, 8, 16, 32, 64):
            row = load(url, n, args.seconds, headers, face=False, burst=args.frames)
            api_levels.append(row)
            print(f"api clients {n:3d}: median {row['median_ms']} ms, p95 {row['p95_ms']} ms, "
                  f"{row['throughput_rps']} req/s, errors {row['errors']}")
            if row["p95_ms"] > 1000:
                break
        face_levels = []
        for n in (1, 2, 4):
            row = load(url, n, args.seconds, headers, face=True, burst=args.frames)
            face_levels.append(row)
            print(f"face clients {n}: median {row['median_ms']} ms, p95 {row['p95_ms']} ms, "
                  f"{row['throughput_rps']} unlocks/s")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    held = max((r["clients"] for r in api_levels if r["p95_ms"] < 1000), default=0)
    held_face = max((r["clients"] for r in face_levels if r["p95_ms"] < 1000), default=0)
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "load_average_1m_at_end": round(os.getloadavg()[0], 1)},
              "command": "python bench/service.py " + " ".join(sys.argv[1:]),
              "face_unlock": latency, "api_load": api_levels, "face_load": face_levels,
              "api_clients_with_p95_under_1s": held, "face_clients_with_p95_under_1s": held_face}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "service.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# limen serve benchmark", "", f"`{result['command']}` on {os.cpu_count()} CPUs", "",
             f"Face unlock through the API ({args.frames} frames): median **{latency['median_ms']} ms**, "
             f"p95 **{latency['p95_ms']} ms** ({latency['opened']}/{latency['n']} opened)", "",
             "| clients | kind | median ms | p95 ms | req/s | errors |", "|---|---|---|---|---|---|"]
    for kind, rows in (("api", api_levels), ("face", face_levels)):
        lines += [f"| {r['clients']} | {kind} | {r['median_ms']} | {r['p95_ms']} | {r['throughput_rps']} | "
                  f"{r['errors']} |" for r in rows]
    lines += ["", f"API clients held with p95 < 1 s: **{held}**; face-unlock clients: **{held_face}**", ""]
    (RESULTS / "service.md").write_text("\n".join(lines))
    print(f"API clients held with p95 < 1 s: {held}; face-unlock clients: {held_face}")


if __name__ == "__main__":
    main()
