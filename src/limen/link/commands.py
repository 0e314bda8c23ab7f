"""Owner-signed commands: statements the cloud relays but cannot forge.

A command is the canonical JSON (sorted keys, no spaces, UTF-8) of

    {"v": 1, "lock": <lock id>, "action": <Action>, "args": {str: str},
     "counter": <int, strictly increasing per device>, "expires": <ISO-8601 UTC>,
     "device": <paired device name>}

signed with the device's Ed25519 key over `b"limen-command-v1\\0" + body`.
On the wire (`SignedCommand.to_bytes`) it is `{"v": 1, "body": <body as text>,
"sig": <base64>}`: the lock verifies the exact bytes that were signed.  A
`restore` may carry the encrypted backup as `"attachment"` (base64, up to
`LINK_MAX_BACKUP_BYTES`); it is bound to the command by its SHA-256 in the
signed `args["backup"]` (checked by `limen.link.execute`).

`CommandVerifier.verify` checks, in this order: size and form, a known device,
the signature, the lock id, the times, then the counter, which it
persists atomically (a command is accepted at most once, even across
restarts and concurrent verifiers).  Every failure is one `CommandRefused`
naming its `Refusal`; nothing else is revealed.

An *unsigned* request is accepted only for `lock` and `lockdown`, only when
the owner allowed the cloud to lock (`link_cloud_may_lock`), never for
anything that opens or changes access.

Times: a command may carry `"issued"` (the signer's clock when it signed; `limen-cloud sign-command` puts it in).
Its validity `expires - issued` is at most `LINK_COMMAND_MAX_VALIDITY_S` whatever the clocks say
(`validity_too_long`).  The lock's and the signer's clocks may differ by `LINK_CLOCK_SKEW_S` either way: a
command signed more than that ahead of the lock's clock is refused as `clock_skew` (the lock is slow, or the
signer fast: only a clock explains it), and one is accepted until `expires + LINK_CLOCK_SKEW_S` by the lock's
clock.  A lock fast by more than a command's validity plus the tolerance finds it `expired`: from the lock alone
that cannot be told from a command delivered late, so the refusal's detail names both.  Without `"issued"` the
expiry may lie up to `LINK_COMMAND_MAX_VALIDITY_S + LINK_CLOCK_SKEW_S` ahead of the lock's clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

from limen import thresholds as T
from limen.db import migrate, transaction
from limen.errors import BadRequest, CommandRefused, Conflict, NotFound
from limen.link.schema import COUNTER_FLOOR_DDL, MIGRATIONS

COMMAND_VERSION = 1
_DOMAIN = b"limen-command-v1\0"
_NAME_MAX = 64


class Action(StrEnum):
    UNLOCK = "unlock"
    LOCK = "lock"
    ADD_CODE = "add_code"
    REVOKE_CODE = "revoke_code"
    REVOKE_USER = "revoke_user"
    ERASE = "erase"
    LOCKDOWN = "lockdown"
    RESTORE = "restore"              # load an encrypted backup (attached) onto this lock
    DECOMMISSION = "decommission"    # erase every person, template, backup and key-bound secret of this lock
    ADD_USER = "add_user"            # a member or guest (never an owner or administrator: those are added in person)


CLOUD_MAY_REQUEST = frozenset({Action.LOCK, Action.LOCKDOWN})  # the safe direction only


class Refusal(StrEnum):
    MALFORMED = "malformed"
    OVERSIZED = "oversized"
    UNSIGNED = "unsigned"
    UNKNOWN_DEVICE = "unknown_device"
    BAD_SIGNATURE = "bad_signature"
    WRONG_LOCK = "wrong_lock"
    EXPIRED = "expired"
    TOO_LONG = "validity_too_long"
    CLOCK_SKEW = "clock_skew"        # signed further ahead of the lock's clock than LINK_CLOCK_SKEW_S
    REPLAYED = "replayed"
    NOT_ALLOWED = "not_allowed"


@dataclass(frozen=True)
class Command:
    """What the owner's device asks the lock `lock` to do (args: strings only, no secrets)."""

    lock: str
    action: Action
    counter: int
    expires: datetime
    device: str
    args: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    issued: datetime | None = None  # the signer's clock at signing (None: an older signer that did not say)

    def body(self) -> bytes:
        fields: dict[str, Any] = {
            "v": COMMAND_VERSION, "lock": self.lock, "action": self.action.value, "args": dict(self.args),
            "counter": self.counter, "expires": self.expires.astimezone(UTC).isoformat(), "device": self.device}
        if self.issued is not None:
            fields["issued"] = self.issued.astimezone(UTC).isoformat()
        return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class SignedCommand:
    body: bytes
    signature: bytes | None  # None: an unsigned request (the cloud's own; lock/lockdown only)
    attachment: bytes | None = None  # a restore's encrypted backup (bound by its SHA-256 in the signed args)

    def to_bytes(self) -> bytes:
        wire: dict[str, Any] = {"v": COMMAND_VERSION, "body": self.body.decode("utf-8")}
        if self.signature is not None:
            wire["sig"] = base64.b64encode(self.signature).decode("ascii")
        if self.attachment is not None:
            wire["attachment"] = base64.b64encode(self.attachment).decode("ascii")
        return json.dumps(wire, sort_keys=True, separators=(",", ":")).encode("utf-8")

    def attach(self, blob: bytes) -> SignedCommand:
        """The same signed command carrying `blob` (what the cloud does with the backup a restore names)."""
        return SignedCommand(self.body, self.signature, blob)

    @classmethod
    def from_bytes(cls, data: bytes) -> SignedCommand:
        """Parse the wire form; `CommandRefused(OVERSIZED | MALFORMED)` otherwise."""
        limit = max_wire_bytes(attachment=b'"attachment"' in data)
        if len(data) > limit:
            raise CommandRefused(Refusal.OVERSIZED, f"{len(data)} bytes > {limit}")
        try:
            wire = json.loads(data.decode("utf-8"))
            if not isinstance(wire, dict) or wire.get("v") != COMMAND_VERSION or not isinstance(wire.get("body"), str):
                raise ValueError("expected {v: 1, body: str, sig: base64}")
            sig, extra = wire.get("sig"), wire.get("attachment")
            signature = None if sig is None else base64.b64decode(str(sig), validate=True)
            attachment = None if extra is None else base64.b64decode(str(extra), validate=True)
        except (UnicodeDecodeError, ValueError, binascii.Error, RecursionError) as exc:  # nested too deep too
            raise CommandRefused(Refusal.MALFORMED, str(exc)[:120]) from exc
        if len(wire["body"]) > T.LINK_MAX_PAYLOAD_BYTES:
            raise CommandRefused(Refusal.OVERSIZED, f"body over {T.LINK_MAX_PAYLOAD_BYTES} bytes")
        if attachment is not None and len(attachment) > T.LINK_MAX_BACKUP_BYTES:
            raise CommandRefused(Refusal.OVERSIZED, f"attachment over {T.LINK_MAX_BACKUP_BYTES} bytes")
        return cls(wire["body"].encode("utf-8"), signature, attachment)


def max_wire_bytes(*, attachment: bool) -> int:
    """The largest wire payload the lock parses: a command, or a restore with its base64 backup."""
    return T.LINK_MAX_PAYLOAD_BYTES + (T.LINK_MAX_BACKUP_BYTES * 4 // 3 + 4 if attachment else 0)


def sign(command: Command, key: Ed25519PrivateKey) -> SignedCommand:
    """What the owner's device does (the lock never holds this key)."""
    body = command.body()
    return SignedCommand(body, key.sign(_DOMAIN + body))


def parse_command(body: bytes) -> Command:
    """The command in `body`; `CommandRefused(MALFORMED)` when it is not one."""
    try:
        raw = json.loads(body.decode("utf-8"))
        if not isinstance(raw, dict) or raw.get("v") != COMMAND_VERSION:
            raise ValueError("unknown command version")
        args = raw.get("args", {})
        if not isinstance(args, dict) or not all(isinstance(k, str) and isinstance(v, str) and len(v) <= 256
                                                 for k, v in args.items()):
            raise ValueError("args must map strings to short strings")
        counter, device, lock = raw["counter"], raw["device"], raw["lock"]
        if not isinstance(counter, int) or isinstance(counter, bool) or not 0 < counter < 2**63:
            raise ValueError("counter must be a positive integer")
        if not all(isinstance(s, str) and 0 < len(s) <= _NAME_MAX for s in (device, lock)):
            raise ValueError("device and lock must be short strings")
        expires = datetime.fromisoformat(str(raw["expires"]))
        issued = None if raw.get("issued") is None else datetime.fromisoformat(str(raw["issued"]))
        if expires.tzinfo is None or (issued is not None and issued.tzinfo is None):
            raise ValueError("expires and issued need a time zone")
        if issued is not None and issued >= expires:
            raise ValueError("issued must come before expires")
        return Command(lock, Action(raw["action"]), counter, expires, device, MappingProxyType(dict(args)), issued)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, RecursionError) as exc:  # nested too deep too
        raise CommandRefused(Refusal.MALFORMED, str(exc)[:120]) from exc


@dataclass(frozen=True)
class Device:
    name: str
    public_key: bytes
    owner: str
    counter: int
    paired_at: str


class DeviceRegistry:
    """The owner devices paired on this lock (table `link_devices` in limen.db)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        migrate(conn, "link", MIGRATIONS)

    def pair(self, name: str, public_key: Ed25519PublicKey, owner: str, by: str, at: datetime) -> Device:
        """Register a device (done in person, by an owner proven by PIN: the caller checks)."""
        if not name or len(name) > _NAME_MAX or not name.isprintable():
            raise BadRequest("name", f"1-{_NAME_MAX} printable characters")
        raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        try:
            with transaction(self.conn):
                floor = self.conn.execute("SELECT counter FROM link_counter_floor WHERE key_hash = ?",
                                          (_key_hash(raw),)).fetchone()
                self.conn.execute("INSERT INTO link_devices(name, public_key, owner, counter, paired_at, paired_by) "
                                  "VALUES (?, ?, ?, ?, ?, ?)",
                                  (name, raw, owner, 0 if floor is None else int(floor[0]), at.isoformat(), by))
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"device {name!r} or this public key is already paired") from exc
        return self.get(name)

    def unpair(self, name: str) -> None:
        """Forget the device; its key's last counter stays, so pairing the key again cannot replay a command."""
        with transaction(self.conn):
            _keep_floors(self.conn, "WHERE name = ?", (name,))
            if self.conn.execute("DELETE FROM link_devices WHERE name = ?", (name,)).rowcount == 0:
                raise NotFound(f"no paired device {name!r}")

    def get(self, name: str) -> Device:
        row = self.conn.execute("SELECT name, public_key, owner, counter, paired_at FROM link_devices "
                                "WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"no paired device {name!r}")
        return Device(row[0], bytes(row[1]), row[2], int(row[3]), row[4])

    def paired(self) -> list[Device]:
        return [self.get(r[0]) for r in self.conn.execute("SELECT name FROM link_devices ORDER BY paired_at")]

    def advance(self, name: str, counter: int) -> bool:
        """Record `counter` as used if it is above the last one (atomic); False means a replay."""
        with transaction(self.conn):
            cur = self.conn.execute("UPDATE link_devices SET counter = ? WHERE name = ? AND counter < ?",
                                    (counter, name, counter))
        return cur.rowcount == 1


def devices_of(conn: sqlite3.Connection, owner: str) -> list[dict[str, Any]]:
    """The names and pairing times of `owner`'s devices (`privacy export`); none when the link was never set up."""
    try:
        return [dict(r) for r in conn.execute("SELECT name, paired_at FROM link_devices WHERE owner = ?", (owner,))]
    except sqlite3.OperationalError:  # the link was never used on this lock: no such table
        return []


def forget_devices(conn: sqlite3.Connection, owner: str | None = None) -> int:
    """Unpair `owner`'s devices, or every device (caller's transaction); return how many."""
    if owner is None:
        _keep_floors(conn, "", ())
        return int(conn.execute("DELETE FROM link_devices").rowcount)
    _keep_floors(conn, "WHERE owner = ?", (owner,))
    return int(conn.execute("DELETE FROM link_devices WHERE owner = ?", (owner,)).rowcount)


def _key_hash(raw: bytes) -> str:
    return hashlib.sha256(b"limen.link.device-key\0" + raw).hexdigest()


def _keep_floors(conn: sqlite3.Connection, where: str, args: tuple[str, ...]) -> None:
    """Before devices are deleted: keep each one's highest accepted counter under a hash of its public key."""
    try:
        rows = conn.execute(f"SELECT public_key, counter FROM link_devices {where}", args).fetchall()  # noqa: S608
    except sqlite3.OperationalError:  # the link was never used on this lock: nothing to keep
        return
    if rows:
        conn.execute(COUNTER_FLOOR_DDL)  # a database last migrated before floors existed
    for raw, counter in rows:
        conn.execute("INSERT INTO link_counter_floor(key_hash, counter) VALUES (?, ?) ON CONFLICT(key_hash) "
                     "DO UPDATE SET counter = max(counter, excluded.counter)", (_key_hash(bytes(raw)), int(counter)))


def load_public_key(pem_or_raw: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo) or 32 raw bytes; BadRequest otherwise."""
    if len(pem_or_raw) == 32:
        return Ed25519PublicKey.from_public_bytes(pem_or_raw)
    try:
        key = load_pem_public_key(pem_or_raw)
    except ValueError as exc:
        raise BadRequest("public-key", "not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise BadRequest("public-key", "an Ed25519 key is required")
    return key


class CommandVerifier:
    """Checks commands for the lock `lock_id` against the paired devices (see the module docstring)."""

    def __init__(self, devices: DeviceRegistry, lock_id: str, *, cloud_may_lock: bool = False) -> None:
        self.devices = devices
        self.lock_id = lock_id
        self.cloud_may_lock = cloud_may_lock

    def verify(self, signed: SignedCommand, at: datetime) -> tuple[Command, Device | None]:
        """The command and the device that signed it (None: an allowed unsigned cloud lock request).

        Raises `CommandRefused`; the counter is consumed only by a command that passed every other check.
        """
        command = parse_command(signed.body)
        if signed.signature is None:
            self._check_fresh(command, at)
            if command.action not in CLOUD_MAY_REQUEST or not self.cloud_may_lock:
                raise CommandRefused(Refusal.UNSIGNED, f"{command.action.value} needs an owner's signature")
            return command, None
        try:
            device = self.devices.get(command.device)
        except NotFound as exc:
            raise CommandRefused(Refusal.UNKNOWN_DEVICE, "the device is not paired with this lock") from exc
        try:
            Ed25519PublicKey.from_public_bytes(device.public_key).verify(signed.signature, _DOMAIN + signed.body)
        except InvalidSignature as exc:
            raise CommandRefused(Refusal.BAD_SIGNATURE, "signature does not verify") from exc
        self._check_fresh(command, at)
        if not self.devices.advance(device.name, command.counter):
            raise CommandRefused(Refusal.REPLAYED, "counter not above the last accepted one")
        return command, device

    def _check_fresh(self, command: Command, at: datetime) -> None:
        """The lock id and the times (see the module docstring: validity, `LINK_CLOCK_SKEW_S` either way)."""
        if command.lock != self.lock_id:
            raise CommandRefused(Refusal.WRONG_LOCK, "the command names another lock")
        skew, longest = T.LINK_CLOCK_SKEW_S, T.LINK_COMMAND_MAX_VALIDITY_S
        if command.issued is not None:
            if (command.expires - command.issued).total_seconds() > longest:
                raise CommandRefused(Refusal.TOO_LONG, f"valid more than {longest} s from its signing")
            ahead = (command.issued - at).total_seconds()
            if ahead > skew:
                raise CommandRefused(Refusal.CLOCK_SKEW, f"signed {ahead:.0f} s ahead of this lock's clock "
                                     f"({at.isoformat(timespec='seconds')}; {skew} s tolerated): this lock's clock "
                                     "is behind, or the signer's ahead")
        late = (at - command.expires).total_seconds()
        if late >= skew:
            raise CommandRefused(Refusal.EXPIRED, f"expired {late:.0f} s ago by this lock's clock "
                                 f"({at.isoformat(timespec='seconds')}; {skew} s tolerated): delivered late, or "
                                 "this lock's clock is ahead")
        if -late > longest + skew:  # only without "issued": with it, the two checks above bound this
            raise CommandRefused(Refusal.TOO_LONG, f"expiry {-late:.0f} s ahead of this lock's clock: more than "
                                 f"{longest} s of validity and {skew} s of clock skew (or this lock's clock is behind)")
