"""The hash chain: canonical records, their hashes, signed checkpoints, verification.

Pure functions over plain dicts, shared by the SQLite log and the offline
export verifier.  A record is the event plus its position:

    {"v": 1, "index": i, "prev": <hash of record i-1>, "recorded_at": …, "at": …,
     "kind": …, "actor": …, "subject": …, "outcome": …, "reason": …, "source": …,
     "data": {…}, "hash": sha256("limen-audit-record-v1\\0" + canonical JSON of the rest)}

A checkpoint signs (device id, index, hash, time, interval) with the device's
Ed25519 audit key.  `verify_chain` raises `ChainBroken` naming the first record
at which an edit, deletion, insertion, reordering or forged signature shows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from limen.audit.event import Event
from limen.audit.keys import SigningKey, verify_signature
from limen.errors import ChainBroken

FORMAT_VERSION = 1
GENESIS = "0" * 64
_RECORD_DOMAIN = b"limen-audit-record-v1\0"
_CHECKPOINT_DOMAIN = b"limen-audit-checkpoint-v1\0"
RECORD_FIELDS = ("v", "index", "prev", "recorded_at", "at", "kind", "actor", "subject",
                 "outcome", "reason", "source", "data")


def canonical(obj: Any) -> bytes:
    """Deterministic JSON: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def record_hash(record: Mapping[str, Any]) -> str:
    body = {name: record.get(name) for name in RECORD_FIELDS}
    return hashlib.sha256(_RECORD_DOMAIN + canonical(body)).hexdigest()


def make_record(event: Event, index: int, prev: str, recorded_at: str) -> dict[str, Any]:
    """The chained record for `event` at `index` after the record whose hash is `prev`."""
    record: dict[str, Any] = {
        "v": FORMAT_VERSION,
        "index": index,
        "prev": prev,
        "recorded_at": recorded_at,
        "at": event.at.isoformat(),
        "kind": str(event.kind),
        "actor": event.actor,
        "subject": event.subject,
        "outcome": event.outcome,
        "reason": event.reason,
        "source": event.source,
        "data": event.data,
    }
    record["hash"] = record_hash(record)
    return record


def _checkpoint_body(cp: Mapping[str, Any]) -> dict[str, Any]:
    return {name: cp.get(name) for name in ("v", "device_id", "index", "hash", "at", "every", "key_id")}


def make_checkpoint(key: SigningKey, device_id: str, index: int, hash_: str, at: str,
                    every: int) -> dict[str, Any]:
    cp: dict[str, Any] = {"v": FORMAT_VERSION, "device_id": device_id, "index": index, "hash": hash_,
                          "at": at, "every": every, "key_id": key.key_id}
    cp["signature"] = key.sign(_CHECKPOINT_DOMAIN + canonical(_checkpoint_body(cp)))
    return cp


def checkpoint_valid(cp: Mapping[str, Any], public: Ed25519PublicKey) -> bool:
    return verify_signature(public, str(cp.get("signature", "")),
                            _CHECKPOINT_DOMAIN + canonical(_checkpoint_body(cp)))


@dataclass(frozen=True)
class ChainSummary:
    """What a successful verification covered."""

    records: int
    checkpoints: int
    last_hash: str
    last_signed_index: int          # -1 when nothing is signed yet
    key_ids: tuple[str, ...]

    @property
    def unsigned_tail(self) -> int:
        """Records after the last signed checkpoint (protected by the hash chain only)."""
        return self.records - 1 - self.last_signed_index


def verify_chain(
    records: Iterable[Mapping[str, Any]],
    checkpoints: Iterable[Mapping[str, Any]],
    public_keys: Mapping[str, Ed25519PublicKey],
    every: int,
    device_id: str | None = None,
) -> ChainSummary:
    """Check links, hashes, signatures and checkpoint spacing; raise `ChainBroken` at the first fault."""
    by_index: dict[int, list[Mapping[str, Any]]] = {}
    for cp in checkpoints:
        by_index.setdefault(int(cp["index"]), []).append(cp)
    # before the first checkpoint, the spacing in force is the one that checkpoint was written under
    interval = int(by_index[min(by_index)][0].get("every") or every) if by_index else every
    expected, prev, last_signed, signed = 0, GENESIS, -1, 0
    used: set[str] = set()
    for record in records:
        _check_record(record, expected, prev)
        for cp in by_index.pop(expected, []):
            _check_checkpoint(cp, record, public_keys, device_id)
            last_signed, interval, signed = expected, int(cp.get("every") or every), signed + 1
            used.add(str(cp["key_id"]))
        if expected - last_signed >= interval:
            raise ChainBroken(expected, f"signed checkpoint missing (expected one every {interval} records)")
        prev, expected = str(record["hash"]), expected + 1
    if by_index:
        first = min(by_index)
        raise ChainBroken(expected, f"records deleted: a signed checkpoint covers record {first}, "
                                    f"the chain ends at {expected - 1}")
    return ChainSummary(expected, signed, prev, last_signed, tuple(sorted(used)))


def _check_record(record: Mapping[str, Any], expected: int, prev: str) -> None:
    index = record.get("index")
    if index != expected:
        what = "missing (deleted)" if isinstance(index, int) and index > expected else "out of order"
        raise ChainBroken(expected, f"record {what}; found index {index}")
    if record.get("v") != FORMAT_VERSION:
        raise ChainBroken(expected, f"unknown record format {record.get('v')!r}")
    if record.get("prev") != prev:
        raise ChainBroken(expected, "link to the previous record is broken (record inserted, deleted or moved)")
    try:
        recomputed = record_hash(record)
    except (TypeError, ValueError) as exc:
        raise ChainBroken(expected, f"record is malformed ({exc})") from exc
    if record.get("hash") != recomputed:
        raise ChainBroken(expected, "record content was modified (hash mismatch)")


def _check_checkpoint(cp: Mapping[str, Any], record: Mapping[str, Any],
                      public_keys: Mapping[str, Ed25519PublicKey], device_id: str | None) -> None:
    index = int(cp["index"])
    public = public_keys.get(str(cp.get("key_id")))
    if public is None:
        raise ChainBroken(index, f"checkpoint signed by an unknown key {cp.get('key_id')!r}")
    if not checkpoint_valid(cp, public):
        raise ChainBroken(index, "checkpoint signature is forged or the checkpoint was edited")
    if cp.get("hash") != record.get("hash"):
        raise ChainBroken(index, "record does not match its signed checkpoint (chain rewritten)")
    if device_id is not None and cp.get("device_id") != device_id:
        raise ChainBroken(index, f"checkpoint belongs to device {cp.get('device_id')!r}")
