"""Fault injection for the audit trail: SIGKILL an appending process at random points.

`python tests/audit/fault_campaign.py child DATA_DIR` appends events forever and prints
the index of each one on stdout (flushed) only after `append` returned.
`kill_campaign(data_dir, runs)` starts such a child, kills it at a random
moment, reopens the store, verifies the chain and checks that every
acknowledged index is present with the child's event, and that the head
witness is never ahead of the log (no false truncation alarm); it returns
per-run figures.  Used by `tests/audit/test_faults.py` (short) and `bench/audit.py`
(≥ 200 runs); test tooling, so not part of the lock's install.  A SIGKILL tests the
process-crash path; a real power cut also depends on the disk honouring fsync (SQLite `synchronous=FULL`).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from limen.errors import AuditError


@dataclass(frozen=True)
class KillRun:
    acknowledged: int        # events acknowledged by the child before the kill
    records: int             # records in the chain after the kill (alarms included)
    lost: int                # acknowledged events missing or different afterwards (must be 0)
    early: bool              # killed before the child was ready (during open/key creation)
    alarms: int = 0          # ALARM records in the chain
    orphans: int = 0         # alarms without their outbox rows, or rows without their alarm (must be 0)


def child(data_dir: Path) -> None:
    """Append events forever, printing each acknowledged index."""
    from limen.audit import Event, EventKind, open_audit
    from limen.config import load_settings

    # an undeliverable channel: every notified alarm must leave an outbox row behind
    audit = open_audit(load_settings(data_dir, alert_urls=["json://127.0.0.1:9/"]))
    print("ready", flush=True)
    n = 0
    while True:
        if n % 3 == 0:
            event = Event(EventKind.UNLOCK_ATTEMPT, datetime.now(UTC), actor="u1", outcome="reject",
                          reason="no_match", source="keypad", subject=f"crash-{os.getpid()}-{n}",
                          data={"method": "pin"})
        else:
            event = Event(EventKind.SYSTEM, datetime.now(UTC), actor="system", reason="crash-test",
                          subject=f"crash-{os.getpid()}-{n}", source="faults")
        index = audit.append(event)
        sys.stdout.write(f"{index} {event.subject}\n")
        sys.stdout.flush()
        n += 1


def kill_once(data_dir: Path, rng: random.Random, early: bool = False, max_wait_s: float = 0.3) -> KillRun:
    """One run: start the child, SIGKILL it at a random moment, verify, check acknowledgements."""
    from limen.audit import witness_file
    from limen.audit.keys import load_or_create_key
    from limen.audit.log import AuditLog
    from limen.audit.witness import WITNESS_FILE
    from limen.config import load_settings

    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "child", str(data_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    if not early:
        line = proc.stdout.readline()
        if line.strip() != b"ready":
            proc.kill()
            proc.wait()
            raise AuditError(f"fault child did not start ({line!r})")
    time.sleep(rng.uniform(0.0, max_wait_s))
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate()
    acked = _acknowledged(out)
    settings = load_settings(data_dir)
    witness = witness_file(settings) if (settings.keys_dir / WITNESS_FILE).exists() else None
    audit = AuditLog(data_dir / "audit.db", load_or_create_key(settings.keys_dir), settings.keys_dir,
                     settings.device_id, witness=witness)  # verify also checks the head witness: no false alarm
    try:
        summary = audit.verify()
        found = {r["index"]: r["subject"] for r in audit.records(min(acked) if acked else 0)} if acked else {}
        alarms, orphans = _alarm_outbox_mismatches(audit)
    finally:
        audit._live().close()  # no shutdown checkpoint: inspect the store exactly as the crash left it
        audit._conn = None
    lost = sum(1 for index, subject in acked.items() if found.get(index) != subject)
    return KillRun(len(acked), summary.records, lost, early, alarms, orphans)


def _alarm_outbox_mismatches(audit: object) -> tuple[int, int]:
    """(alarms, alarms whose outbox rows are missing + rows whose alarm is missing)."""
    from limen.audit.log import AuditLog

    assert isinstance(audit, AuditLog)
    expected = {(r["index"], c) for r in audit.records(0, ("alarm",)) for c in r["data"].get("channels", [])}
    alarms = sum(1 for _ in audit.records(0, ("alarm",)))
    rows = set(audit._live().execute("SELECT alarm_index, channel FROM outbox").fetchall())
    queued = {(int(a), str(c)) for a, c in rows}
    return alarms, len(expected ^ queued)


def kill_campaign(data_dir: Path, runs: int, seed: int = 5, early_fraction: float = 0.1,
                  max_wait_s: float = 0.3) -> list[KillRun]:
    """`runs` kills; early kills (during open and key creation) each use a fresh data directory."""
    rng = random.Random(seed)
    results = []
    for i in range(runs):
        early = rng.random() < early_fraction
        target = data_dir / f"early-{i}" if early else data_dir / "main"
        results.append(kill_once(target, rng, early, max_wait_s))
    return results


def _acknowledged(out: bytes) -> dict[int, str]:
    acked: dict[int, str] = {}
    text = out.decode("utf-8", "replace")
    complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
    for line in complete.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit():
            acked[int(parts[0])] = parts[1]
    return acked


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "child":
        child(Path(sys.argv[2]))
    else:
        sys.exit("usage: python tests/audit/fault_campaign.py child DATA_DIR")
