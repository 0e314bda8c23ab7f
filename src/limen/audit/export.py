"""Export of the trail as JSON lines, verifiable offline.

    {"type": "header", "format": "limen-audit-export", "v": 1, "device_id": …, "every": N,
     "public_keys": {key_id: base64}, "exported_at": …}
    {"type": "checkpoint", …}        every signed checkpoint
    {"type": "record", …}            every record, in order
    {"type": "end", "records": n, "checkpoints": m, "last_hash": …, "key_id": …, "signature": …}

The end line is signed, so a truncated export fails verification even at a
checkpoint boundary.  The embedded public keys only prove that the file is
self-consistent: pin the device's key (`verify_export(path, expected_key)`,
`limen audit verify --file F --key audit_ed25519.pub`) to prove who wrote it.
The file is written atomically (temporary file, fsync, rename).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from limen.audit.chain import canonical, verify_chain
from limen.audit.keys import key_id, load_public_b64, public_b64, verify_signature
from limen.errors import AuditError, ChainBroken

if TYPE_CHECKING:
    from limen.audit.log import AuditLog

EXPORT_FORMAT = "limen-audit-export"
_END_DOMAIN = b"limen-audit-export-end-v1\0"
_END_FIELDS = ("device_id", "records", "checkpoints", "last_hash", "exported_at", "key_id")


@dataclass(frozen=True)
class ExportSummary:
    device_id: str
    records: int
    checkpoints: int
    last_hash: str
    key_ids: tuple[str, ...]
    exported_at: str


def export_log(audit: AuditLog, path: Path) -> int:
    """Sign the head, then write the whole trail to `path` atomically; return the record count."""
    audit.checkpoint()
    checkpoints = audit.checkpoints()
    exported_at = audit._clock.now().isoformat()
    header = {"type": "header", "format": EXPORT_FORMAT, "v": 1, "device_id": audit.device_id,
              "every": audit.every, "exported_at": exported_at,
              "public_keys": {kid: public_b64(pub) for kid, pub in audit.public_keys().items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    count, last = 0, "0" * 64
    signed_head = checkpoints[-1]["index"] if checkpoints else -1
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps(header, sort_keys=True) + "\n")
            for cp in checkpoints:
                out.write(json.dumps({"type": "checkpoint", **cp}, sort_keys=True) + "\n")
            for rec in audit.records():
                if rec["index"] > signed_head:
                    break  # appended while exporting: left for the next export
                out.write(json.dumps({"type": "record", **rec}, sort_keys=True, ensure_ascii=False) + "\n")
                count, last = count + 1, rec["hash"]
            end = {"device_id": audit.device_id, "records": count, "checkpoints": len(checkpoints),
                   "last_hash": last, "exported_at": exported_at, "key_id": audit.key.key_id}
            end["signature"] = audit.key.sign(_END_DOMAIN + canonical({k: end[k] for k in _END_FIELDS}))
            out.write(json.dumps({"type": "end", **end}, sort_keys=True) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return count


def verify_export(path: Path, expected_key: Ed25519PublicKey | str | None = None) -> ExportSummary:
    """Verify an export offline; raise `ChainBroken` (first broken record) or `AuditError` (wrong key, bad file)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditError(f"{path}: cannot read export ({exc})") from exc
    parsed = list(_parse(lines))
    if not parsed or parsed[0].get("type") != "header" or parsed[0].get("format") != EXPORT_FORMAT:
        raise AuditError(f"{path}: not a Limen audit export")
    header = parsed[0]
    keys = _keys(header)
    if expected_key is not None:
        pinned = load_public_b64(expected_key) if isinstance(expected_key, str) else expected_key
        if key_id(pinned) not in keys:
            raise AuditError(f"{path}: not signed by the expected key {key_id(pinned)}")
        keys = {key_id(pinned): pinned}
    checkpoints = [p for p in parsed if p.get("type") == "checkpoint"]
    records = [p for p in parsed if p.get("type") == "record"]
    summary = verify_chain(records, checkpoints, keys, int(header.get("every") or 1),
                           device_id=str(header.get("device_id")))
    end = parsed[-1]
    if end.get("type") != "end":
        raise ChainBroken(summary.records, "export truncated: the signed end marker is missing")
    _check_end(end, summary.records, len(checkpoints), summary.last_hash, keys)
    return ExportSummary(str(header.get("device_id")), summary.records, summary.checkpoints,
                         summary.last_hash, summary.key_ids, str(header.get("exported_at")))


def _parse(lines: list[str]) -> Iterator[dict[str, Any]]:
    records = 0
    for number, line in enumerate(lines, start=1):
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise ChainBroken(records, f"export truncated or corrupt at line {number}") from exc
        if not isinstance(item, dict):
            raise ChainBroken(records, f"export corrupt at line {number}")
        records += item.get("type") == "record"
        item_type = item.pop("type", None)
        item["type"] = item_type
        yield item


def _keys(header: dict[str, Any]) -> dict[str, Ed25519PublicKey]:
    keys = {}
    for kid, b64 in dict(header.get("public_keys") or {}).items():
        public = load_public_b64(str(b64))
        if key_id(public) != kid:
            raise AuditError(f"export header: public key does not match its id {kid}")
        keys[kid] = public
    return keys


def _check_end(end: dict[str, Any], records: int, checkpoints: int, last_hash: str,
               keys: dict[str, Ed25519PublicKey]) -> None:
    public = keys.get(str(end.get("key_id")))
    message = _END_DOMAIN + canonical({k: end.get(k) for k in _END_FIELDS})
    if public is None or not verify_signature(public, str(end.get("signature", "")), message):
        raise ChainBroken(records, "the export's end marker is not validly signed")
    if end.get("records") != records or end.get("checkpoints") != checkpoints or end.get("last_hash") != last_hash:
        raise ChainBroken(records, f"export truncated or padded: the end marker says {end.get('records')} "
                                   f"records, the file holds {records}")
