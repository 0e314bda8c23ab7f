"""Owner-signed statements to the cloud: "this lock was replaced", signed on the owner's device.

A lock replaced under its id resets the head the cloud holds (`evidence.mark_replaced`) — exactly the cut-back
the cloud is there to catch — so an account action (password + TOTP) is not enough: a stolen password and
authenticator, or the cloud itself, could then reset a lock's evidence.  The mark needs a statement signed by an
owner device **paired in person on that lock**, as the lock's own chain says (`limen link pair-device` writes
the device's Ed25519 public key into its `link device paired` record; `link device removed`, `person erased`
and `lock decommissioned` take devices away, as on the lock).  The step-up stays, as a second factor.

The statement is the canonical JSON (sorted keys, no spaces, UTF-8) of

    {"v": 1, "lock": <lock id>, "action": "replace", "head": {"count": <int>, "hash": <hex | null>},
     "counter": <int, strictly increasing per device>, "expires": <ISO-8601 UTC>, "device": <paired name>}

signed with the device's key over `b"limen-owner-statement-v1\\0" + body` (not a lock command's domain: neither
can be passed off as the other); on the wire `{"v": 1, "body": <text>, "sig": <base64>}` as a lock command
(`limen.link.commands.SignedCommand`).  `head` is the chain the cloud holds (`GET /api/locks`: `records`,
`head_hash`), so a statement is spent by the mark it authorises.  `limen-cloud sign-replacement` makes one.

`check(session, lock, wire, now)` checks, in this order: size and form, a signature at all, the action, the
lock id, a device paired on this lock, the signature, the expiry (at most `LINK_COMMAND_MAX_VALIDITY_S` ahead,
`LINK_CLOCK_SKEW_S` tolerated behind), the counter (above every one this device signed for a replacement of
this lock), then the head.  Every failure is one `StatementRefused` naming its `StatementRefusal`.  The
statement is kept with the archived chain (`ArchivedChain.statement`) and `recheck` verifies it again from
the archived records alone, so anyone holding the archive can see who authorised the reset.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from limen import thresholds as T
from limen.errors import CommandRefused
from limen.link.commands import SignedCommand
from limen_cloud.models import ArchivedChain, ArchivedRecord, Lock, Record

STATEMENT_VERSION = 1
REPLACE = "replace"
_DOMAIN = b"limen-owner-statement-v1\0"
_NAME_MAX = 64
_DEVICE_KINDS = ("config_change", "privacy")  # the records that pair, unpair or erase devices


class StatementRefusal(StrEnum):
    MALFORMED = "malformed"
    UNSIGNED = "unsigned"
    WRONG_ACTION = "wrong_action"
    WRONG_LOCK = "wrong_lock"
    UNKNOWN_DEVICE = "unknown_device"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    TOO_LONG = "validity_too_long"
    REPLAYED = "replayed"
    STALE_HEAD = "stale_head"


_REASONS = {
    StatementRefusal.MALFORMED: "not an owner-signed statement",
    StatementRefusal.UNSIGNED: "the statement is not signed",
    StatementRefusal.WRONG_ACTION: "the statement does not say 'replace'",
    StatementRefusal.WRONG_LOCK: "the statement names another lock",
    StatementRefusal.UNKNOWN_DEVICE: "the device is not paired on this lock (as its forwarded audit trail says)",
    StatementRefusal.BAD_SIGNATURE: "the signature does not verify under that device's key",
    StatementRefusal.EXPIRED: "the statement has expired",
    StatementRefusal.TOO_LONG: f"the expiry is more than {T.LINK_COMMAND_MAX_VALIDITY_S} s ahead",
    StatementRefusal.REPLAYED: "the counter is not above the last one this device signed for this lock",
    StatementRefusal.STALE_HEAD: "the statement names another head than the chain the cloud holds",
}


class StatementRefused(ValueError):
    """A replacement statement the cloud refuses (nothing changed; the caller alarms the owner)."""

    def __init__(self, refusal: StatementRefusal) -> None:
        super().__init__(_REASONS[refusal])
        self.refusal = refusal


@dataclass(frozen=True)
class ReplaceStatement:
    """What the owner's device signs: replace `lock`, whose chain the cloud holds up to this head."""

    lock: str
    head_count: int
    head_hash: str | None
    counter: int
    expires: datetime
    device: str

    def body(self) -> bytes:
        return json.dumps(
            {"v": STATEMENT_VERSION, "lock": self.lock, "action": REPLACE,
             "head": {"count": self.head_count, "hash": self.head_hash}, "counter": self.counter,
             "expires": self.expires.astimezone(UTC).isoformat(), "device": self.device},
            sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(statement: ReplaceStatement, key: Ed25519PrivateKey) -> str:
    """The wire form of `statement` signed by the owner's device key (what `limen-cloud sign-replacement` prints)."""
    body = statement.body()
    return SignedCommand(body, key.sign(_DOMAIN + body)).to_bytes().decode("utf-8")


def check(session: Session, lock: Lock, wire: str, now: datetime) -> ReplaceStatement:
    """The statement in `wire` if it authorises replacing `lock` now (head as held; the caller row-locked the
    lock); `StatementRefused` otherwise."""
    signed, statement = _parse(wire)
    if statement.lock != lock.lock_id:
        raise StatementRefused(StatementRefusal.WRONG_LOCK)
    devices = paired_devices(session.scalars(select(Record.body).where(
        Record.lock_id == lock.lock_id, Record.kind.in_(_DEVICE_KINDS)).order_by(Record.idx)))
    _verify(signed, statement, devices)
    at = now if now.tzinfo is not None else now.replace(tzinfo=UTC)  # the cloud's columns are naive UTC
    if statement.expires + timedelta(seconds=T.LINK_CLOCK_SKEW_S) <= at:
        raise StatementRefused(StatementRefusal.EXPIRED)
    if statement.expires - at > timedelta(seconds=T.LINK_COMMAND_MAX_VALIDITY_S):
        raise StatementRefused(StatementRefusal.TOO_LONG)
    spent = session.scalar(select(func.max(ArchivedChain.statement_counter)).where(
        ArchivedChain.lock_id == lock.lock_id, ArchivedChain.signed_by == statement.device))
    if spent is not None and statement.counter <= spent:
        raise StatementRefused(StatementRefusal.REPLAYED)
    if (statement.head_count, statement.head_hash) != (lock.head_count, lock.head_hash):
        raise StatementRefused(StatementRefusal.STALE_HEAD)
    return statement


@dataclass(frozen=True)
class StatementCheck:
    """What re-verifying the statement kept with an archived chain found (`verified`, or the problem)."""

    verified: bool
    problem: str = ""


def recheck(session: Session, chain: ArchivedChain) -> StatementCheck:
    """Re-verify the statement kept with `chain` from the archive alone: signed by a device its archived records
    say was paired, naming its lock and its archived head (expiry and counter were checked at the mark).  A
    pairing record redacted since (a person erased) cannot be tied to the signature any more: said so."""
    if chain.statement is None:
        return StatementCheck(False, "no owner-signed statement (archived before statements were required)")
    bodies = list(session.scalars(select(ArchivedRecord.body).where(
        ArchivedRecord.chain_id == chain.id, ArchivedRecord.kind.in_(_DEVICE_KINDS)).order_by(ArchivedRecord.idx)))
    try:
        signed, statement = _parse(chain.statement)
        _verify(signed, statement, paired_devices(bodies))
    except StatementRefused as exc:
        erased = any(json.loads(b).get("redacted") is True for b in bodies)
        if exc.refusal is StatementRefusal.UNKNOWN_DEVICE and erased:
            return StatementCheck(False, "the device's pairing record was erased since (a person's erasure): "
                                  "the signature can no longer be tied to the chain")
        return StatementCheck(False, f"the kept statement does not verify: {exc}")
    if (statement.lock, statement.head_count, statement.head_hash) != (
            chain.lock_id, chain.head_count, chain.head_hash):
        return StatementCheck(False, "the kept statement names another lock or head than the archive")
    return StatementCheck(True)


def paired_devices(bodies: Iterable[str]) -> dict[str, bytes]:
    """The devices paired on a lock after these records (in chain order): name → raw Ed25519 public key.

    A pairing record without a key (written before the key was recorded) pairs nothing the cloud can check.  A
    redacted record (a person erased) says nothing: a person's own pairings go with them as on the lock, and a
    redacted configuration change might have been an unpairing, so every device paired before it is dropped."""
    devices: dict[str, tuple[bytes, Any]] = {}  # name → (key, the owner on the lock who paired it)
    for text in bodies:
        record = json.loads(text)
        data = record.get("data") if isinstance(record.get("data"), dict) else {}
        reason, name = record.get("reason"), data.get("device")
        if record.get("redacted") is True:  # a person erased: were it an unpairing, the cloud cannot tell
            devices = {} if record.get("kind") == "config_change" else devices  # fail closed: re-pair in person
            continue
        if reason == "link device paired" and isinstance(name, str):
            key = _raw_key(data.get("public_key"))
            if key is None:
                devices.pop(name, None)
            else:
                devices[name] = (key, record.get("actor"))
        elif reason == "link device removed" and isinstance(name, str):
            devices.pop(name, None)
        elif reason == "person erased":
            devices = {n: d for n, d in devices.items() if d[1] != record.get("subject")}
        elif reason == "lock decommissioned":
            devices = {}
    return {name: key for name, (key, _) in devices.items()}


def _raw_key(value: Any) -> bytes | None:
    try:
        raw = base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def _parse(wire: str) -> tuple[SignedCommand, ReplaceStatement]:
    try:
        signed = SignedCommand.from_bytes(wire.encode("utf-8"))
    except (CommandRefused, UnicodeEncodeError) as exc:
        raise StatementRefused(StatementRefusal.MALFORMED) from exc
    if signed.attachment is not None:
        raise StatementRefused(StatementRefusal.MALFORMED)
    try:
        raw = json.loads(signed.body.decode("utf-8"))
        if not isinstance(raw, dict) or raw.get("v") != STATEMENT_VERSION or not isinstance(raw.get("head"), dict):
            raise ValueError("unknown statement version")
        head, counter, device, lock = raw["head"], raw["counter"], raw["device"], raw["lock"]
        count, hash_ = head.get("count"), head.get("hash")
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in (count, counter)) \
                or not 0 < counter < 2**63 or not 0 <= count < 2**31:
            raise ValueError("counter and head count must be integers in range")
        if hash_ is not None and not (isinstance(hash_, str) and len(hash_) == 64):
            raise ValueError("head hash must be a SHA-256 hex digest")
        if not all(isinstance(s, str) and 0 < len(s) <= _NAME_MAX for s in (device, lock)):
            raise ValueError("device and lock must be short strings")
        expires = datetime.fromisoformat(str(raw["expires"]))
        if expires.tzinfo is None:
            raise ValueError("expires needs a time zone")
        action = raw.get("action")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise StatementRefused(StatementRefusal.MALFORMED) from exc
    if signed.signature is None:
        raise StatementRefused(StatementRefusal.UNSIGNED)
    if action != REPLACE:
        raise StatementRefused(StatementRefusal.WRONG_ACTION)
    return signed, ReplaceStatement(lock, count, hash_, counter, expires, device)


def _verify(signed: SignedCommand, statement: ReplaceStatement, devices: dict[str, bytes]) -> None:
    key = devices.get(statement.device)
    if key is None:
        raise StatementRefused(StatementRefusal.UNKNOWN_DEVICE)
    assert signed.signature is not None  # `_parse` refused an unsigned one
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signed.signature, _DOMAIN + signed.body)
    except InvalidSignature as exc:
        raise StatementRefused(StatementRefusal.BAD_SIGNATURE) from exc
