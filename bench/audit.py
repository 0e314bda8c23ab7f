"""Audit trail benchmark: durable append throughput, verification speed, alarm latency to a
local HTTP receiver, and durability under SIGKILL (≥ 200 kills).

    python bench/audit.py [--appends 500] [--verify-records 20000] [--alarms 50] [--kills 200]
                          [--out bench/results/audit.json]
    python bench/audit.py --runs 1000          # only the SIGKILL campaign, 1000 runs
    python bench/audit.py --witness-only       # only: append with vs without the head witness
    python bench/audit.py --tamper-cases       # only: every tampering case tried, detected or not

The witness figure appends alternately to two logs in the same run — one
with the head witness file (MAC'd, fdatasync'd after every append, as
`open_audit` runs it), one without (the peer) — so both see the same load.

Appends are durable (SQLite WAL, synchronous=FULL: one fsync per event).  The
verification chain is built with fsync disabled (it measures verification,
not appending).  Alarm latency runs from `append(TAMPER event)` on the caller's
thread to the moment the receiver (http.server on 127.0.0.1, in this process)
has read the POST, through the real path: anomaly rule → ALARM record + outbox
row (one durable transaction) → delivery worker → apprise `json://` (or the
signed webhook) → receiver.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchstats import pct

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.audit.fault_campaign (the SIGKILL campaign is test tooling)




def summary_ms(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {"median_ms": round(statistics.median(ms), 2), "p95_ms": round(pct(ms, 95), 2),
            "max_ms": round(max(ms), 2), "n": len(ms)}


def settings_in(path: Path, urls: list[str] | None = None) -> Any:
    from limen.config import load_settings

    return load_settings(path, alert_urls=urls or [])


def bench_append(base: Path, n: int) -> dict[str, Any]:
    from limen.audit import Event, EventKind, open_audit

    log = open_audit(settings_in(base / "append"))
    lat = []
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        log.append(Event(EventKind.UNLOCK_ATTEMPT, datetime.now(UTC), actor="u1", outcome="accept",
                         reason="granted", source="camera", data={"method": "face", "score": 0.31, "i": i}))
        lat.append(time.perf_counter() - t)
    total = time.perf_counter() - start
    log.close()
    return {"events": n, "events_per_s": round(n / total, 1), "latency": summary_ms(lat)}


def bench_witness(base: Path, n: int) -> dict[str, Any]:
    """Durable append with the head witness file vs the same append without it, interleaved."""
    from limen.audit import AuditLog, Event, EventKind, open_audit
    from limen.audit.keys import load_or_create_key

    witnessed = open_audit(settings_in(base / "witnessed"))
    plain_settings = settings_in(base / "plain")
    plain = AuditLog(plain_settings.data_dir / "audit.db", load_or_create_key(plain_settings.keys_dir),
                     plain_settings.keys_dir, plain_settings.device_id)
    lat: dict[str, list[float]] = {"with_witness": [], "without_witness": []}
    load_before = os.getloadavg()[0]
    for i in range(n + 3):
        for name, log in (("with_witness", witnessed), ("without_witness", plain)):
            t = time.perf_counter()
            log.append(Event(EventKind.UNLOCK_ATTEMPT, datetime.now(UTC), actor="u1", outcome="accept",
                             reason="granted", source="camera", data={"method": "face", "i": i}))
            if i >= 3:  # the first 3 warm up
                lat[name].append(time.perf_counter() - t)
    witnessed.close()
    plain.close()
    return {"appends_each": n, "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            **{name: summary_ms(values) for name, values in lat.items()}}


def _sql(db: Path, *statements: str) -> None:
    import sqlite3

    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER IF EXISTS records_no_delete")
    conn.execute("DROP TRIGGER IF EXISTS records_no_update")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def _refill(settings: Any, n: int) -> None:
    """What a forger with the audit key would append after a cut (same count, other records)."""
    from limen.audit import AuditLog, Event, EventKind
    from limen.audit.keys import load_or_create_key

    log = AuditLog(settings.data_dir / "audit.db", load_or_create_key(settings.keys_dir), settings.keys_dir,
                   settings.device_id)
    for i in range(n):
        log.append(Event(EventKind.SYSTEM, datetime.now(UTC), actor="system", reason="forged", subject=f"f{i}"))
    log._live().close()
    log._conn = None


TAMPER_CASES: dict[str, Any] = {
    "edit a record's field": lambda s, db: _sql(db, "UPDATE records SET subject = 'x' WHERE idx = 40"),
    "delete one record mid-chain": lambda s, db: _sql(db, "DELETE FROM records WHERE idx = 40"),
    "insert a record (shifted indices)": lambda s, db: _sql(
        db, "UPDATE records SET idx = idx + 1000 WHERE idx > 40", "UPDATE records SET idx = idx - 999 WHERE idx > 1000",
        "INSERT INTO records SELECT 41, v, prev, hash, recorded_at, at, kind, actor, 'x', outcome, reason, source, "
        "data FROM records WHERE idx = 40"),
    "swap two records": lambda s, db: _sql(
        db, "UPDATE records SET idx = -1 WHERE idx = 40", "UPDATE records SET idx = 40 WHERE idx = 41",
        "UPDATE records SET idx = 41 WHERE idx = -1"),
    "forge a checkpoint signature": lambda s, db: _sql(
        db, "UPDATE checkpoints SET signature = 'AAAA' || substr(signature, 5) WHERE idx = 63"),
    "delete one checkpoint": lambda s, db: _sql(db, "DELETE FROM checkpoints WHERE idx = 63"),
    "cut back to an earlier checkpoint (records + checkpoints)": lambda s, db: _sql(
        db, "DELETE FROM records WHERE idx > 31", "DELETE FROM checkpoints WHERE idx > 31"),
    "drop the last 5 records and the shutdown checkpoint": lambda s, db: _sql(
        db, "DELETE FROM records WHERE idx > 167", "DELETE FROM checkpoints WHERE idx > 167"),
    "empty both tables": lambda s, db: _sql(db, "DELETE FROM records", "DELETE FROM checkpoints"),
    "delete audit.db": lambda s, db: [db.with_name(db.name + x).unlink(missing_ok=True) for x in ("", "-wal", "-shm")],
    "cut back and refill to the same length": lambda s, db: (
        _sql(db, "DELETE FROM records WHERE idx > 31", "DELETE FROM checkpoints WHERE idx > 31"), _refill(s, 141)),
    "forge the witness file": lambda s, db: (s.keys_dir / "audit.witness").write_bytes(os.urandom(146)),
    "delete audit.db and the witness file": lambda s, db: (
        [db.with_name(db.name + x).unlink(missing_ok=True) for x in ("", "-wal", "-shm")],
        (s.keys_dir / "audit.witness").unlink()),
}


def bench_tamper_cases(base: Path, records: int = 173) -> dict[str, Any]:
    """Each case on a fresh lock (vault + audit as `open_runtime` opens them): detected at the next start/verify?"""
    from limen.audit import Event, EventKind, attach_witness, open_audit
    from limen.errors import LimenError
    from limen.vault import open_template_store
    from limen.vault.witness import SealedHeadWitness

    out: dict[str, Any] = {}
    for i, (name, attack) in enumerate(TAMPER_CASES.items()):
        settings = settings_in(base / f"tamper-{i}")
        store = open_template_store(settings)
        log = open_audit(settings)
        attach_witness(log, SealedHeadWitness(store.vault))
        for k in range(records):
            log.append(Event(EventKind.SYSTEM, datetime.now(UTC), actor="system", reason="bench", subject=f"r{k}"))
        log.close()
        store.close()
        attack(settings, settings.data_dir / "audit.db")
        store = open_template_store(settings)
        try:
            log = open_audit(settings)
            attach_witness(log, SealedHeadWitness(store.vault))  # what every start does
            log.verify()
            out[name] = "NOT DETECTED"
        except LimenError as exc:
            out[name] = f"detected: {str(exc)[:110]}"
        finally:
            log.close()
            store.close()
    return {"records_before": records, "cases": out,
            "detected": sum(v.startswith("detected") for v in out.values()), "tried": len(out)}


def bench_verify(base: Path, n: int) -> dict[str, Any]:
    from limen.audit import Event, EventKind, open_audit, verify_export

    log = open_audit(settings_in(base / "verify"))
    assert log._conn is not None
    log._conn.execute("PRAGMA synchronous=OFF")  # building the fixture only
    for i in range(n):
        log.append(Event(EventKind.SYSTEM, datetime.now(UTC), actor="system", reason="bench", data={"i": i}))
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        summary = log.verify()
        runs.append(time.perf_counter() - t)
    export = base / "verify" / "trail.jsonl"
    t = time.perf_counter()
    log.export(export)
    export_s = time.perf_counter() - t
    t = time.perf_counter()
    verify_export(export)
    offline_s = time.perf_counter() - t
    log.close()
    best = statistics.median(runs)
    return {"records": summary.records, "checkpoints": summary.checkpoints,
            "verify_events_per_s": round(summary.records / best, 0), "verify_s": round(best, 3),
            "export_s": round(export_s, 3), "verify_export_events_per_s": round(summary.records / offline_s, 0),
            "export_bytes": export.stat().st_size}


class Receiver:
    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.perf_counter()
                self.send_response(200)
                self.end_headers()
                with outer.cond:
                    outer.arrivals.append(now)
                    outer.cond.notify_all()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int, timeout: float = 30.0) -> float | None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.arrivals) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.arrivals[n - 1]


def bench_alarm_latency(base: Path, n: int, kind: str) -> dict[str, Any]:
    from limen.audit import Event, EventKind, open_audit, open_dispatcher

    receiver = Receiver()
    url = (f"json://127.0.0.1:{receiver.port}/" if kind == "apprise"
           else f"signed+http://127.0.0.1:{receiver.port}/hook")
    settings = settings_in(base / f"latency-{kind}", [url])
    log = open_audit(settings)
    dispatcher = open_dispatcher(settings, log).start()
    lat, lost = [], 0
    try:
        for i in range(n + 3):  # the first 3 warm up (imports, connections)
            t0 = time.perf_counter()
            log.append(Event(EventKind.TAMPER, datetime.now(UTC), reason="case_opened", source=f"tamper:bench-{i}"))
            arrived = receiver.wait(i + 1)
            if arrived is None:
                lost += 1
                break
            if i >= 3:
                lat.append(arrived - t0)
            time.sleep(0.02)
    finally:
        dispatcher.stop()
        log.close()
        receiver.server.shutdown()
    return {"channel": kind, "latency": summary_ms(lat), "not_received": lost}


def bench_kills(base: Path, runs: int) -> dict[str, Any]:
    from tests.audit.fault_campaign import kill_campaign  # test tooling, beside the repository's tests

    t = time.perf_counter()
    results = kill_campaign(base / "kills", runs, seed=2026, early_fraction=0.1, max_wait_s=0.4)
    return {"runs": len(results), "early_kills": sum(r.early for r in results),
            "acknowledged_events": sum(r.acknowledged for r in results),
            "lost_acknowledged_events": sum(r.lost for r in results),
            "alarms_in_final_chain": max((r.alarms for r in results), default=0),
            "alarm_outbox_mismatches": sum(r.orphans for r in results),
            "final_chain_records": max((r.records for r in results if not r.early), default=0),
            "chain_valid_after_every_kill": True, "seconds": round(time.perf_counter() - t, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=500)
    parser.add_argument("--verify-records", type=int, default=20_000)
    parser.add_argument("--alarms", type=int, default=50)
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--runs", type=int, default=None, help="Only the SIGKILL campaign, with this many runs.")
    parser.add_argument("--witness-only", action="store_true", help="Only the head-witness append cost.")
    parser.add_argument("--tamper-cases", action="store_true", help="Only: try every tampering case.")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "audit.json")
    args = parser.parse_args()
    only = ("kills" if args.runs is not None else "witness" if args.witness_only
            else "tamper" if args.tamper_cases else "")
    if only:
        args.out = args.out.with_name(f"audit-{only}.json")
    os.environ.pop("LIMEN_ALERT_URLS", None)
    results: dict[str, Any] = {"machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                                           "cpus": os.cpu_count()},
                               "command": "python bench/audit.py " + " ".join(sys.argv[1:])}
    with tempfile.TemporaryDirectory(prefix="limen-bench-audit-") as tmp:
        base = Path(tmp)
        if only:
            if only == "witness":
                results["witness"] = bench_witness(base, args.appends)
            elif only == "tamper":
                results["tamper"] = bench_tamper_cases(base)
            else:
                results["kills"] = bench_kills(base, args.runs)
            results["load_avg_1min_end"] = round(os.getloadavg()[0], 2)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n")
            print(json.dumps(results, indent=2))
            return
        print("append (durable) …", flush=True)
        results["append"] = bench_append(base, args.appends)
        print(json.dumps(results["append"]), flush=True)
        print("append with vs without the head witness …", flush=True)
        results["witness"] = bench_witness(base, args.appends)
        print(json.dumps(results["witness"]), flush=True)
        print("verify …", flush=True)
        results["verify"] = bench_verify(base, args.verify_records)
        print(json.dumps(results["verify"]), flush=True)
        for kind in ("apprise", "webhook"):
            print(f"alarm latency ({kind}) …", flush=True)
            results[f"alarm_latency_{kind}"] = bench_alarm_latency(base, args.alarms, kind)
            print(json.dumps(results[f"alarm_latency_{kind}"]), flush=True)
        if args.kills:
            print(f"SIGKILL campaign ({args.kills} runs) …", flush=True)
            results["kills"] = bench_kills(base, args.kills)
            print(json.dumps(results["kills"]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(results))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")


def markdown(r: dict[str, Any]) -> str:
    a, v = r["append"], r["verify"]
    lines = [f"# Audit benchmark\n\n`{r['command']}` on {r['machine']['platform']} ({r['machine']['cpus']} CPUs)\n",
             "| figure | value |", "|---|---|",
             f"| durable append | {a['events_per_s']} events/s (median {a['latency']['median_ms']} ms, "
             f"p95 {a['latency']['p95_ms']} ms) |"]
    if "witness" in r:
        w = r["witness"]
        lines.append(f"| append with head witness vs without (interleaved, load {w['load_avg_1min']}) | "
                     f"median {w['with_witness']['median_ms']} vs {w['without_witness']['median_ms']} ms, "
                     f"p95 {w['with_witness']['p95_ms']} vs {w['without_witness']['p95_ms']} ms |")
    lines += [
             f"| verify (SQLite) | {v['verify_events_per_s']:.0f} events/s over {v['records']} records |",
             f"| verify export (offline) | {v['verify_export_events_per_s']:.0f} events/s |"]
    for kind in ("apprise", "webhook"):
        lat = r[f"alarm_latency_{kind}"]["latency"]
        lines.append(f"| alarm latency, {kind} | median {lat['median_ms']} ms, p95 {lat['p95_ms']} ms "
                     f"(n={lat['n']}) |")
    if "kills" in r:
        k = r["kills"]
        lines.append(f"| SIGKILL while appending | {k['runs']} runs, {k['acknowledged_events']} acknowledged, "
                     f"{k['lost_acknowledged_events']} lost, {k['alarm_outbox_mismatches']} alarm/outbox mismatches, "
                     "chain valid after every kill |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
