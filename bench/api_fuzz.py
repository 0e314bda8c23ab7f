"""Schemathesis over the whole local API with a valid token: server errors and schema conformance.

    python bench/api_fuzz.py [--max-examples 30] [--checks not_a_server_error]

A fresh lock (temp data dir) with an owner, an API token holding every scope,
a paired door screen and an issued code is served by uvicorn on 127.0.0.1 as
`limen serve` serves it; `schemathesis run` then generates requests for every
operation of /openapi.json (positive and negative data) and runs the checks.
The figure is the number of operations with a failing check (aim: 0 server
errors).  Prints the machine load beside the result; writes
bench/results/api_fuzz.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PIN = "482915"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=30)
    parser.add_argument("--checks", default="not_a_server_error")
    parser.add_argument("--log", type=Path, default=Path(tempfile.gettempdir()) / "limen-api-fuzz.log",
                        help="where schemathesis' full output goes")
    args = parser.parse_args()

    import uvicorn

    from limen.cli.serve import uvicorn_config
    from limen.config import load_settings
    from limen.service import close_app, create_app
    from limen.service.accounts import Scope
    from limen.service.ratelimit import RateLimiter

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    settings = load_settings(Path(tempfile.mkdtemp(prefix="limen-fuzz-")), port=port)
    app = create_app(settings)
    ctx = app.state.ctx
    ctx.unlock_limiter = RateLimiter(1e9, 10**9, 1e9)  # fuzz the handlers, not the 429 in front of them
    ctx.login_limiter = RateLimiter(1e9, 10**9, 1e9)
    user_id = ctx.lock.first_owner("Alice", PIN)
    owner = ctx.accounts.create_first_owner(ctx.setup_token, "alice", "fuzz password 123", user_id)
    token = ctx.accounts.issue_token(owner, "fuzz", set(Scope), 1)[1]
    kiosk = ctx.accounts.pair_local_screen()
    ctx.lock.issue_code(user_id, "single_use")
    server = uvicorn.Server(uvicorn_config(app, settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    load_before = os.getloadavg()[0]
    command = ["schemathesis", "run", f"http://127.0.0.1:{port}/openapi.json", "--checks", args.checks,
               "--max-examples", str(args.max_examples), "--seed", "1", "--workers", "1", "--no-color",
               "-H", f"Authorization: Bearer {token}", "-H", f"Cookie: limen_kiosk={kiosk}"]
    t0 = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
    seconds = time.perf_counter() - t0
    server.should_exit = True
    thread.join(10)
    close_app(app)
    out = run.stdout + run.stderr
    args.log.write_text(out)
    summary = _summary(out)
    result = {"command": "python bench/api_fuzz.py " + " ".join(sys.argv[1:]), "checks": args.checks,
              "max_examples": args.max_examples, "exit_code": run.returncode, "seconds": round(seconds, 1),
              **summary, "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                     "load_1m_before": round(load_before, 1),
                                     "load_1m_after": round(os.getloadavg()[0], 1)}}
    tail = "\n".join(out.strip().splitlines()[-40:])
    print(tail)
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "api_fuzz.json").write_text(json.dumps(result, indent=2) + "\n")


def _summary(out: str) -> dict[str, object]:
    """Operations tested, test cases generated and failures, from schemathesis' closing lines."""
    found: dict[str, object] = {}
    if m := re.search(r"Tested:\s+(\d+)", out):
        found["operations"] = int(m.group(1))
    if m := re.search(r"(\d+) generated", out):
        found["test_cases"] = int(m.group(1))
    m = re.search(r"found (\d+) unique failures", out)
    found["unique_failures"] = int(m.group(1)) if m else 0
    found["server_errors"] = len(re.findall(r"Server error", out))
    found["failures"] = [line.strip() for line in out.splitlines() if line.strip().startswith("_") and "/" in line]
    return found


if __name__ == "__main__":
    main()
