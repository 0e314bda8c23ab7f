"""Many owners, one alarm each, at the same instant: the cloud's apprise fan-out (`limen_cloud.notify`).

`bench/fleet.py` gives 1,000 locks to one owner, so its burst is a handful of coalesced apprise messages; this
bench is the other shape — N owners with one lock and one pending alarm each, every owner a json:// channel to a
local HTTP receiver — and times `AlarmNotifier.deliver_pending` until every owner's outcome is written.

    python bench/apprise_owners.py [--owners 1000] [--runs 3] [--db postgresql+psycopg://postgres@127.0.0.1:5432/test]

Each run uses a fresh PostgreSQL schema (dropped after).  Prints wall and CPU seconds per run, their median and
the machine's load beside each run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import secrets
import statistics
import sys
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def _receiver(port_q: Any) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_q.put(server.server_address[1])
    server.serve_forever()


def one_run(url: str, owners: int, port: int) -> dict[str, float]:
    from sqlalchemy import create_engine, func, select, text

    from limen_cloud import notify
    from limen_cloud.db import make_engine, sessions, upgrade
    from limen_cloud.models import Alarm, Lock, Owner

    schema = f"bench_owners_{secrets.token_hex(4)}"
    admin = create_engine(url)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        engine = make_engine(url, schema=schema)
        upgrade(engine)
        with sessions(engine)() as s, s.begin():
            rows = [Owner(email=f"o{i}@example.org", password_hash="-", created_at=datetime(2026, 1, 1),
                          alert_urls=json.dumps([f"json://127.0.0.1:{port}/a"])) for i in range(owners)]
            s.add_all(rows)
            s.flush()
            s.add_all(Lock(lock_id=f"lock-{i:04d}", owner_id=o.id, name=f"lock-{i:04d}", head_count=0,
                           reported_count=0) for i, o in enumerate(rows))
            s.flush()
            s.add_all(Alarm(lock_id=f"lock-{i:04d}", rule="lock:door_forced", detail="forced",
                            raised_at=datetime(2026, 3, 3)) for i in range(owners))
        notifier = notify.AlarmNotifier(engine, ("127.0.0.0/8",))
        notify.apprise_object("json://localhost/")           # apprise's plugins loaded before the clock starts
        load = os.getloadavg()[0]
        t0, c0 = time.monotonic(), time.process_time()
        delivered = notifier.deliver_pending(wait=True)       # returns once every outcome is written
        wall, cpu = time.monotonic() - t0, time.process_time() - c0
        with sessions(engine)() as s:
            notified = s.scalar(select(func.count()).select_from(Alarm).where(Alarm.notified_at.is_not(None)))
        notifier.stop()
        engine.dispose()
        return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "delivered": delivered,
                "notified_in_db": int(notified or 0), "load_1m": round(load, 2)}
    finally:
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--owners", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--db", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    port_q = ctx.Queue()
    receiver = ctx.Process(target=_receiver, args=(port_q,), daemon=True)
    receiver.start()
    port = port_q.get()
    try:
        runs = []
        for i in range(args.runs):
            r = one_run(args.db, args.owners, port)
            runs.append(r)
            print(f"run {i + 1}: {args.owners} owners, {r['delivered']} delivered, {r['notified_in_db']} recorded, "
                  f"wall {r['wall_s']:.2f} s, CPU {r['cpu_s']:.2f} s, load {r['load_1m']}", flush=True)
        print(f"median wall {statistics.median(r['wall_s'] for r in runs):.2f} s, "
              f"CPU {statistics.median(r['cpu_s'] for r in runs):.2f} s (load {os.getloadavg()[0]:.2f})")
    finally:
        receiver.terminate()


if __name__ == "__main__":
    main()
