"""Witnesses of the audit chain's head, kept outside `audit.db`, so a truncated log shows.

A hash chain proves every record it holds, but a log cut back to an earlier
checkpoint (or emptied, or deleted) is still a valid, shorter chain.  A
witness remembers the head — how many records, and the hash of the last one —
somewhere `audit.db` is not:

* `FileWitness` – `<keys_dir>/audit.witness`, updated after every durable
  append: the head in two slots, each MAC'd with the key store's
  ``audit-witness`` side key, the whole file replaced at once (temp file,
  fsync, rename, fsync dir) so a crash leaves the old head or the new one and
  a slot that does not authenticate is tampering, never a torn write;
* the vault's sealed copy in `limen.db` (`limen.vault.witness.SealedHeadWitness`),
  updated at every checkpoint; a crypto-erase removes it, the file stays.

Ordering: the record is committed (fsync) first, the witness after, and a
witness never moves backwards (an exclusive `flock` serialises processes).
So after a crash the witness may lag the log, never lead it: `compare` accepts
a witness at or behind the log when the hash at its position agrees.

A witness deleted together with the tail it saw would look like "nothing
witnessed yet".  So the chain itself says which witnesses the lock keeps: a
``system`` record with reason `DECLARATION_REASON` and data
``{"witnesses": [identity, ...]}`` (``"file"``; ``"vault:<id>"`` for the vault's
sealed head of one provisioned vault), written at a start that finds the chain
non-empty (a brand-new chain's first run is not declared: its first records
would otherwise all be declarations).  A declared witness that holds nothing is
a truncation (`missing`).  Chains written before declarations existed get one
at their next start; until then a missing witness file is only a warning.  So
a cut back to before the declaration with the witness file deleted is caught
by the vault's copy, which does not rely on the chain: a provisioned vault
keeps a sealed head from its provisioning on, so its row missing is tampering
whatever the chain says (`limen.vault.witness`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from limen.errors import AuditError, ChainBroken
from limen.fsio import atomic_write
from limen.vault.keystore.sidekeys import SideKey

WITNESS_FILE = "audit.witness"
TRUNCATION_REASON = "audit_truncated"  # the alarm rule recorded when a start finds the log truncated
DECLARATION_REASON = "audit_witnesses_kept"  # the system record naming the witnesses this chain is kept by
_DOMAIN = b"limen.audit.witness.v1"
_SLOT = struct.Struct(">BQ32s32s")  # version, record count, head hash, MAC
_V1 = 1


@dataclass(frozen=True)
class Head:
    """The chain head a witness saw: `count` records, the last one hashing to `hash` (hex)."""

    count: int
    hash: str


class Witness(Protocol):
    name: str

    def read(self) -> Head | None:
        """The head last witnessed; None when nothing was ever witnessed.  `AuditError` if forged or corrupt."""

    def advance(self, head: Head) -> None:
        """Record `head` if it is further than the one witnessed (never moves backwards)."""

    def reset(self, head: Head) -> None:
        """Follow a new chain from `head` (after a truncation was recorded, or `limen audit recover`)."""

    def identity(self) -> str | None:
        """What the chain's declaration names this witness by; None when it cannot hold a head now."""


class AuditTruncated(ChainBroken):
    """The log is shorter than (or differs from) what a witness saw, now or at an earlier start."""

    def __init__(self, line: str, records: int) -> None:
        self.index, self.reason = records, line
        Exception.__init__(self, line)


@dataclass(frozen=True)
class Mismatch:
    """A witness ahead of, disagreeing with, or unable to vouch for the log."""

    witness: str
    witnessed: int  # records the witness saw (-1: the witness itself does not authenticate)
    records: int
    line: str


def compare(name: str, witnessed: Head, records: int, hash_at: str | None) -> Mismatch | None:
    """Whether a log of `records` records whose record `witnessed.count - 1` hashes to `hash_at` fits."""
    says = f"audit log truncated: {name} says {witnessed.count} records, log has {records}"
    if witnessed.count > records:
        return Mismatch(name, witnessed.count, records, says)
    if witnessed.count > 0 and (hash_at is None or not hmac.compare_digest(hash_at, witnessed.hash)):
        return Mismatch(name, witnessed.count, records,
                        f"{says} (record {witnessed.count - 1} is not the one witnessed: the log was replaced)")
    return None


def missing(name: str, records: int, declared_at: int) -> Mismatch:
    """A witness the chain declares kept (record `declared_at`) holds nothing: deleted with the tail it saw."""
    return Mismatch(name, -1, records, f"audit log truncated: {name} deleted; the chain records it kept "
                                       f"(record {declared_at}), so the {records} records left cannot be vouched "
                                       "for")


def forged(name: str, records: int, problem: str) -> Mismatch:
    return Mismatch(name, -1, records, f"audit witness unusable: {problem}; the log ({records} records) "
                                       "cannot be vouched for")


class FileWitness:
    """The head in a small MAC'd file outside `audit.db` (see the module docstring)."""

    name = "witness file"

    def __init__(self, path: Path, key: SideKey, device_id: str) -> None:
        self.path, self._key, self._device = path, key, device_id.encode()
        self._swept = False
        self._held = False  # this process read a head here or wrote one: the file gone since is a deletion

    def exists(self) -> bool:
        return self.path.exists()

    def identity(self) -> str | None:
        return "file"

    def read(self) -> Head | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AuditError(f"{self.path}: cannot read the audit witness ({exc.strerror})") from exc
        return self._best(raw)

    def advance(self, head: Head) -> None:
        """Move the head forward.  A file that does not authenticate, or that this process held and is now gone, is
        left as it is (`AuditError`): rewritten from the log, it would vouch for whatever the log holds now — a tail
        cut while the lock runs with the file deleted would pass the next start.  That start alarms and resets it."""
        with self._locked():
            current = self.read()
            if current is None and self._held:
                raise AuditError(f"{self.path}: the audit witness was deleted while the lock ran; not written again "
                                 "(the next start reports it)")
            if current is not None:
                self._held = True
                if current.count >= head.count:
                    return
            self._replace(head)

    def reset(self, head: Head) -> None:
        """Start over at `head` (a new chain after `limen audit recover`, or after a recorded truncation)."""
        with self._locked():
            self._replace(head)

    def _replace(self, head: Head) -> None:
        """The whole file replaced at once (temp file, fsync, rename, fsync dir): a power cut leaves the old
        head or the new one, never a torn slot, so any slot that does not authenticate is tampering."""
        if not self._swept:  # temp files left by a kill mid-write, once per process (under the lock)
            for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
                stale.unlink(missing_ok=True)
            self._swept = True
        try:
            atomic_write(self.path, self._slot(head) * 2)
        except OSError as exc:
            raise AuditError(f"{self.path}: cannot write the audit witness ({exc.strerror})") from exc
        self._held = True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise writers across processes on a lock file beside the witness (the witness is renamed over)."""
        try:
            fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise AuditError(f"{self.path}: cannot write the audit witness ({exc.strerror})") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _mac(self, count: int, digest: bytes) -> bytes:
        return self._key.mac(_DOMAIN + struct.pack(">H", len(self._device)) + self._device
                             + struct.pack(">Q", count) + digest)

    def _slot(self, head: Head) -> bytes:
        digest = bytes.fromhex(head.hash) if head.count else bytes(32)
        return _SLOT.pack(_V1, head.count, digest, self._mac(head.count, digest))

    def _best(self, raw: bytes) -> Head | None:
        """Both slots must authenticate: the file is replaced whole (`_replace`), so a zeroed, torn or forged
        slot is tampering — e.g. the newer slot zeroed to drop the newest record.  Files of earlier versions
        (slots written alternately in place) hold two different heads; the further one counts."""
        if not raw:
            return None
        if len(raw) != 2 * _SLOT.size:
            raise AuditError(f"{self.path}: the audit witness is {len(raw)} bytes, not {2 * _SLOT.size} "
                             "(cut or padded)")
        heads = []
        for off in (0, _SLOT.size):
            version, count, digest, mac = _SLOT.unpack(raw[off : off + _SLOT.size])
            if version != _V1 or not hmac.compare_digest(mac, self._mac(count, digest)):
                raise AuditError(f"{self.path}: the audit witness does not authenticate (a slot is forged, "
                                 "zeroed or corrupt)")
            heads.append(Head(count, digest.hex() if count else ""))
        return max(heads, key=lambda h: h.count)
