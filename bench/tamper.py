"""Tamper response benchmark: signal → root key destroyed → whole response, and SIGKILL fault injection.

    python bench/tamper.py [--triggers 1000] [--pkcs11-triggers 1000] [--tmpfs-triggers 300]
                           [--kills 200] [--out bench/results/tamper.json]

Latency: a `SimulatedSource` trips through the real monitor → `TamperResponder`
path on a lock with templates enrolled, with the software key store (data dir
on disk), the PKCS#11 store (a throw-away SoftHSM2 token, `apt-get install
softhsm2`), and the software store on tmpfs (/dev/shm: the same code without
fsync cost, to show what is disk and what is code).  Times run from the
signal (the debounced trip handed to the responder) to:

* keys_destroyed – the vault's crypto-erase point (root keys durably gone);
* zeroized – the whole vault erase (wrapped keys wiped, vault marked erased);
* door_secured, audited (TAMPER event appended and its checkpoint signed), alarmed;
* done – lockdown committed and the intent journal cleared (the response's end).

Between triggers the vault is re-provisioned (not timed); before every
`--enrol-every`-th trigger 3 templates are enrolled first (the protected-template
projection a fresh key needs costs about a second of CPU, so enrolling before
every trigger would make the run take hours; a crypto-erase does not depend on
the number of templates, and the "with_templates" rows show those triggers
separately).  Fault injection: `tests/tamper/fault_campaign.py` (SIGKILL at random
points after the intent is durable; restart; check the invariants).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchstats import pct

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "tamper"))

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
STEPS = ("keys_destroyed", "zeroized", "door_secured", "audited", "alarmed", "journal_cleared")




def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "median": round(statistics.median(values), 3), "p95": round(pct(values, 95), 3),
            "p99": round(pct(values, 99), 3), "max": round(max(values), 3)}


def latency(data_dir: Path, triggers: int, enrol_every: int = 10, **overrides: Any) -> dict[str, Any]:
    from limen.audit import open_audit
    from limen.bio.templates import Modality
    from limen.config import load_settings
    from limen.door import SimulatedLock
    from limen.tamper import SimulatedSource, SourceKind, TamperMonitor, open_responder
    from limen.vault import open_template_store

    settings = load_settings(data_dir, **overrides)
    store = open_template_store(settings)
    audit = open_audit(settings)
    door = SimulatedLock(travel_s=0.0)
    responder = open_responder(settings, store=store, audit=audit, door=door)
    clock = [0.0]
    source = SimulatedSource("case", SourceKind.CASE, monotonic=lambda: clock[0])
    monitor = TamperMonitor(responder, [source], monotonic=lambda: clock[0])
    rng = np.random.default_rng(0)
    steps: dict[str, list[float]] = {s: [] for s in STEPS}
    with_templates: dict[str, list[float]] = {s: [] for s in STEPS}
    returned: list[float] = []
    failures = 0
    try:
        for i in range(triggers):
            if store.status().state == "erased":
                store.reprovision()
            enrolled = i % enrol_every == 0
            if enrolled:
                for u in range(3):
                    store.put(f"user-{u}", Modality.FACE, rng.normal(0, 0.1, 128))
            door.unlock()
            source.set(False, clock[0])
            clock[0] += 2.0
            assert monitor.poll() == []                      # quiet for a window: re-armed
            source.set(True, clock[0])
            clock[0] += source.debouncer.profile.hold_s      # held: the next poll trips
            started = time.perf_counter()
            (report,) = monitor.poll()
            returned.append((time.perf_counter() - started) * 1000)
            if not report.complete or store.status().state != "erased":
                failures += 1
            for s in STEPS:
                if s in report.steps_ms:
                    steps[s].append(report.steps_ms[s])
                    if enrolled:
                        with_templates[s].append(report.steps_ms[s])
            if (i + 1) % 100 == 0:
                print(f"  {i + 1}/{triggers}", file=sys.stderr, flush=True)
    finally:
        responder.close()
        store.close()
        audit.close()
    out = {name.replace("journal_cleared", "done"): summary(v) for name, v in steps.items() if v}
    out["respond_returned"] = summary(returned)
    out.update({f"with_templates_{name.replace('journal_cleared', 'done')}": summary(v)
                for name, v in with_templates.items() if v and name in ("keys_destroyed", "journal_cleared")})
    out["failures"] = failures
    out["keystore"] = settings.keystore.value
    return out


def softhsm_token(root: Path) -> dict[str, str] | None:
    if shutil.which("softhsm2-util") is None or not Path(SOFTHSM_MODULE).exists():
        return None
    (root / "tokens").mkdir(parents=True)
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    pin = "bench-user-pin-4711"
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "limen-bench", "--so-pin", "so-0815",
                    "--pin", pin], check=True, capture_output=True)
    return {"pkcs11_module": SOFTHSM_MODULE, "pkcs11_token_label": "limen-bench", "pkcs11_pin": pin}


def faults(root: Path, kills: int) -> dict[str, Any]:
    from fault_campaign import run_campaign

    started = time.perf_counter()
    result = run_campaign(root, kills, seed=2026)
    return {"runs": result.runs, "interrupted_then_recovered": result.recovered,
            "completed_before_kill": result.completed_before_kill, "failures": result.failures,
            "kill_delay_ms": summary(result.delays_ms) if result.delays_ms else None,
            "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--triggers", type=int, default=1000)
    ap.add_argument("--pkcs11-triggers", type=int, default=1000)
    ap.add_argument("--tmpfs-triggers", type=int, default=300)
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--enrol-every", type=int, default=10)
    ap.add_argument("--runs", type=int, default=None, help="Only the SIGKILL campaign, with this many runs.")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "tamper.json")
    args = ap.parse_args()
    if args.runs is not None:
        args.triggers = args.pkcs11_triggers = args.tmpfs_triggers = 0
        args.kills = args.runs
        args.out = args.out.with_name("tamper-kills.json")
    os.environ.pop("LIMEN_DATA_DIR", None)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "command": "python bench/tamper.py " +
        " ".join(sys.argv[1:]),
    }
    every = args.enrol_every
    with tempfile.TemporaryDirectory(prefix="limen-bench-tamper-") as tmp:
        root = Path(tmp)
        if args.triggers:
            print(f"software key store, disk: {args.triggers} triggers", file=sys.stderr)
            results["software_disk"] = latency(root / "sw", args.triggers, every)
            save(args.out, results)
        if args.tmpfs_triggers and Path("/dev/shm").is_dir():
            print(f"software key store, tmpfs: {args.tmpfs_triggers} triggers", file=sys.stderr)
            with tempfile.TemporaryDirectory(prefix="limen-bench-tamper-", dir="/dev/shm") as shm:
                results["software_tmpfs"] = latency(Path(shm), args.tmpfs_triggers, every)
            save(args.out, results)
        if args.pkcs11_triggers:
            token = softhsm_token(root / "softhsm")
            if token is None:
                results["pkcs11_disk"] = "skipped: SoftHSM2 not installed (apt-get install softhsm2)"
            else:
                print(f"PKCS#11 (SoftHSM2), disk: {args.pkcs11_triggers} triggers", file=sys.stderr)
                results["pkcs11_disk"] = latency(root / "p11", args.pkcs11_triggers, every, keystore="pkcs11",
                                                 **token)
            save(args.out, results)
        if args.kills:
            print(f"fault injection: {args.kills} SIGKILLs", file=sys.stderr)
            results["faults"] = faults(root / "faults", args.kills)
    print(save(args.out, results))


def save(out: Path, results: dict[str, Any]) -> str:
    """Write the JSON and markdown results so far (a long run keeps what it measured)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    md = render(results)
    out.with_suffix(".md").write_text(md)
    return md


def render(r: dict[str, Any]) -> str:
    lines = [f"# Tamper response ({r['date']}, {r['machine']}, Python {r['python']})", "",
             f"Command: `{r['command']}`", "",
             "| store | step | n | median ms | p95 ms | p99 ms | max ms |", "|---|---|---|---|---|---|---|"]
    for key in ("software_disk", "software_tmpfs", "pkcs11_disk"):
        block = r.get(key)
        if isinstance(block, str):
            lines.append(f"| {key} | {block} | | | | | |")
        elif isinstance(block, dict):
            for step, s in block.items():
                if isinstance(s, dict):
                    lines.append(f"| {key} | {step} | {s['n']} | {s['median']} | {s['p95']} | {s['p99']} | "
                                 f"{s['max']} |")
            lines.append(f"| {key} | incomplete responses | {block['failures']} | | | | |")
    f = r.get("faults")
    if isinstance(f, dict):
        lines += ["", f"Fault injection: {f['runs']} SIGKILLs after the intent was durable "
                      f"({f['interrupted_then_recovered']} interrupted mid-response and finished at restart, "
                      f"{f['completed_before_kill']} had completed); invariant failures: {len(f['failures'])}."]
        lines += [f"- {x}" for x in f["failures"][:20]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
