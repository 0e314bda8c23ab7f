"""Regenerate tests/audit/vectors/chain_v1.json (known-answer vectors for the audit chain format).

    python tests/audit/make_vectors.py

Ed25519 is deterministic, so a fixed seed gives fixed signatures.  Only run this
when the format version changes: the vectors pin format v1.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from limen.audit.chain import GENESIS, make_checkpoint, make_record
from limen.audit.event import Event, EventKind
from limen.audit.keys import SigningKey, public_b64

SEED = bytes(range(32))
OUT = Path(__file__).with_name("vectors") / "chain_v1.json"


def build() -> dict:
    key = SigningKey(Ed25519PrivateKey.from_private_bytes(SEED))
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    events = [
        Event(EventKind.SYSTEM, at, actor="system", reason="start", source="service"),
        Event(EventKind.UNLOCK_ATTEMPT, at, actor="u-7f3a", subject="cred-1", outcome="reject",
              reason="pad_failed", source="camera", data={"method": "face", "pad": "attack",
                                                          "scores": {"pad.depth": 0.12}}),
        Event(EventKind.TAMPER, at, reason="case_opened", source="tamper:case", data={"voltage": 3.3}),
    ]
    records, prev = [], GENESIS
    for i, event in enumerate(events):
        rec = make_record(event, i, prev, at.isoformat())
        records.append(rec)
        prev = rec["hash"]
    cp = make_checkpoint(key, "limen-vector", 2, prev, at.isoformat(), 32)
    return {"seed_hex": SEED.hex(), "public_key": public_b64(key.public), "key_id": key.key_id,
            "records": records, "checkpoint": cp}


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=2, sort_keys=True) + "\n")
    print(f"wrote {OUT}")
