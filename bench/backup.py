"""End-to-end-encrypted backup of a lock with N people: size, make (snapshot + encrypt + write) and restore times.

A real lock state through `open_runtime` (software key store, vault, audit log): N people with a PIN each
and an owner's offline-code secret, two recipient keys (a phone and the recovery key).  Measured:

  make      Backups.make: read the tables, unseal offline secrets, canonical JSON, encrypt, write 0600, fsync
  unwrap    the owner's phone opening the content key (X25519 + HKDF + ChaCha20-Poly1305)
  restore   Backups.restore into a second, fresh lock: decrypt, check, one SQLite transaction, reseal

PIN hashing is set cheap (Argon2id 64 KiB, t=1) only to build the N people quickly; no timed step hashes a PIN.

    python bench/backup.py --people 1000 --runs 5 --out bench/results/backup.json

Median and p95 over the runs, the load average printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.benchstats import pct  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402

from limen import thresholds  # noqa: E402
from limen.access.model import PermissionLevel  # noqa: E402
from limen.config import load_settings  # noqa: E402
from limen.door import SimulatedLock  # noqa: E402
from limen.link.backup import Backups, RecipientKind, new_recovery_key, unwrap_key  # noqa: E402
from limen.runtime import Runtime, open_runtime  # noqa: E402


def lock(root: Path, people: int) -> tuple[Runtime, Backups, X25519PrivateKey]:
    rt = open_runtime(load_settings(root, device_id="bench-lock"), door=SimulatedLock(travel_s=0.0))
    store, at = rt.access(), datetime.now(UTC)
    owner = store.add_user("Owner", "", at, pin="24681357", permission=PermissionLevel.OWNER).user_id
    store.offline_secret(owner, owner, at)
    for i in range(people - 1):
        store.add_user(f"Person {i:05d}", owner, at, pin=f"{13579000 + i:08d}")
    backups = Backups(rt.conn, "bench-lock", rt.settings.keys_dir, root / "backups")
    phone = X25519PrivateKey.generate()
    backups.add_recipient("phone", RecipientKind.DEVICE, phone.public_key(), owner, at)
    backups.add_recipient("recovery", RecipientKind.RECOVERY, new_recovery_key()[1], owner, at)
    return rt, backups, phone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    thresholds.PIN_ARGON2_MEMORY_KIB, thresholds.PIN_ARGON2_TIME_COST = 64, 1  # building only (see docstring)
    times: dict[str, list[float]] = {"make": [], "unwrap": [], "restore": []}
    size = 0
    with tempfile.TemporaryDirectory() as tmp:
        source, backups, phone = lock(Path(tmp) / "source", args.people)
        target, target_backups, _ = lock(Path(tmp) / "target", 1)
        try:
            for _ in range(args.runs):
                t0 = time.perf_counter()
                _, blob = backups.make(datetime.now(UTC))
                t1 = time.perf_counter()
                _, content_key = unwrap_key(blob, phone)
                t2 = time.perf_counter()
                restored = target_backups.restore(blob, content_key, datetime.now(UTC), from_lock="bench-lock",
                                                  lock_keys={source.audit.key.key_id: source.audit.key.public})
                t3 = time.perf_counter()
                assert restored.rows["users"] == args.people
                size = len(blob)
                times["make"].append((t1 - t0) * 1000)
                times["unwrap"].append((t2 - t1) * 1000)
                times["restore"].append((t3 - t2) * 1000)
        finally:
            source.close()
            target.close()
    result: dict[str, Any] = {"people": args.people, "runs": args.runs, "blob_bytes": size,
                              "load_avg": os.getloadavg(),
                              **{f"{k}_ms": {"median": round(pct(v, 50), 1), "p95": round(pct(v, 95), 1)}
                                 for k, v in times.items()}}
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
