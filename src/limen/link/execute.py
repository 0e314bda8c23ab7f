"""`LinkCommands`: a verified command becomes exactly one lock action and one audit record.

    payload → SignedCommand.from_bytes → CommandVerifier.verify → the action → Outcome

A signed command acts only while the device's owner is an enabled owner of
the lock (a disabled, demoted or removed owner's phone stays paired until
unpaired, but is refused).  Unlock goes through `AccessController.remote` (owner-authorised: policy,
UNLOCK_ATTEMPT record and door as for any other way in; the owner's
`require_pin_for_remote` still applies: the PIN comes sealed to the lock's restore key in `args["pin"]`,
`seal_pin`).  Every other action, and every
refusal, is one REMOTE_COMMAND record (source "remote"; `device_known` False
for an unknown device or a forged signature, which the anomaly rules alarm
on).  A code added remotely is sealed to the X25519 reply key the owner's
device put in the signed command (`args["reply_key"]`), so the cloud that
relays the outcome cannot read it; `add_user` adds a member or guest (never an owner or
administrator), with a PIN the lock draws and seals the same way when the command carries a reply key.
Both make a way in, so while `require_pin_for_remote` is on they need the owner's sealed PIN as an unlock does
(`_step_up`: refused `pin_required`, a wrong one counted toward the keypad lockout, audited); so does a restore,
always (an owner without a PIN on the lock: refused `pin_required` until they set one there).
A refusal over the times (`expired`, `validity_too_long`, `clock_skew`) hands back the lock's clock
(`lock_time`) and the detail.  An erase returns an erasure receipt signed
with the lock's audit key: what was erased where, when, and the audit record
that says so.  `erase` with `scope=person` is "delete me" (`LockEraser.erase_person`);
`decommission` erases the lock (`LockEraser.decommission`); the cloud adds its
own signed part to the receipt when it has erased its copies.

`restore` loads an encrypted backup (the command's attachment) in one
transaction: `args["backup"]` is its SHA-256 (so the relaying cloud cannot
substitute another), `args["key"]` the backup's content key sealed to this lock's
restore key (`limen link restore-key`; the owner's device unwrapped it, the cloud
never sees it), `args["from_lock"]` the lock it was made on (default: this one),
`args["revoked"]` the owner's own revocations (`user:…,code:…,credential:…`) that
must stay revoked whatever the backup says, `args["from_lock_key"]` the audit public key
(base64) of the lock the backup was made on, as the owner's device pinned it —
needed when that is another lock: the backup's signature must verify under it (the device has it from
pairing, `limen link pair-device`).  The outcome counts the backup's recipients registered again here.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from limen import thresholds as T
from limen.access.attempt import remote_attempt
from limen.access.model import CredentialType, PermissionLevel, UserStatus
from limen.access.offline import CodeKind
from limen.access.pins import validate_pin
from limen.access.policy import remote_reply
from limen.audit.chain import canonical
from limen.audit.event import AuditSink, Event, EventKind
from limen.audit.keys import SigningKey, key_id, load_public_b64, verify_signature
from limen.clock import Clock, SystemClock
from limen.decision import Reason
from limen.errors import AuditError, BadRequest, CommandRefused, LimenError
from limen.link.backup import Backups, Revoked, digest, restore_key
from limen.link.commands import Action, Command, CommandVerifier, Device, DeviceRegistry, Refusal, SignedCommand
from limen.privacy.erase import LockEraser
from limen.vault.keystore.sidekeys import PIN_PEPPER, file_side_key

if TYPE_CHECKING:
    from limen.access.store import AccessStore
    from limen.controller import AccessController
    from limen.runtime import Runtime

Eraser = Callable[[str, str, datetime], int]  # (user id, actor, at) → templates erased
_REPLY_INFO = b"limen-link-reply-v1"
PIN_SEAL_PREFIX = b"limen-pin-v1:"  # a sealed PIN's plaintext starts so (never taken for a sealed content key)
_RECEIPT_DOMAIN = b"limen-erasure-receipt-v1\0"


@dataclass(frozen=True)
class Outcome:
    """What happened to one command (published back on the result topic; no secrets in clear)."""

    executed: bool
    action: str | None
    reason: str                       # "done", a Decision reason, or a Refusal value
    counter: int | None = None
    device: str | None = None
    data: dict[str, str] = field(default_factory=dict)  # e.g. code_id, sealed code

    def to_dict(self) -> dict[str, Any]:
        return {"executed": self.executed, "action": self.action, "reason": self.reason, "counter": self.counter,
                "device": self.device, "data": dict(self.data)}


class LinkCommands:
    """Runs verified commands on the lock.  Not thread-safe (one link thread, or serialise)."""

    def __init__(self, verifier: CommandVerifier, controller: AccessController, store: AccessStore,
                 audit: AuditSink, erase: Eraser, signer: SigningKey | None = None, *,
                 eraser: LockEraser | None = None, restore_key: X25519PrivateKey | None = None,
                 clock: Clock | None = None) -> None:
        """`signer` (the lock's audit key) signs erasure receipts; without it none are issued.  `eraser` runs
        "delete me", decommission and restores (its `backups`); without it those actions fail, audited."""
        clock = clock or SystemClock()
        # two budgets: garbage anyone can publish must not hide the refusals of payloads a paired device signed
        self._refusals = {False: RefusalBudget(clock), True: RefusalBudget(clock)}
        self.signer = signer
        self.eraser = eraser
        self.restore_key = restore_key
        self.verifier = verifier
        self.controller = controller
        self.store = store
        self.audit = audit
        self.erase = erase

    def handle(self, payload: bytes, at: datetime) -> Outcome:
        """Verify and run one wire payload; refusals and failures are audited and returned, never raised."""
        signed: SignedCommand | None = None
        try:
            signed = SignedCommand.from_bytes(payload)
            command, device = self.verifier.verify(signed, at)
        except CommandRefused as exc:
            device_signed = (signed is not None and signed.signature is not None
                             and exc.refusal in _AFTER_SIGNATURE)
            return self._refused(payload, exc, at, device_signed)
        try:
            if device is not None and not self.store.is_enabled_owner(device.owner):
                raise BadRequest("device", "its owner is no longer an enabled owner of this lock")
            if signed.attachment is not None and command.action is not Action.RESTORE:
                raise BadRequest("attachment", "only a restore carries one")
            if command.action is Action.RESTORE:
                return self._restore(command, device, signed.attachment, at)
            return self._run(command, device, at)
        except LimenError as exc:  # an unknown user or code: refused with its reason, recorded
            return self._record(command, device, at, executed=False, reason=f"failed: {exc}"[:200])

    def _run(self, command: Command, device: Device | None, at: datetime) -> Outcome:
        actor = device.owner if device is not None else "cloud"
        args = command.args
        if command.action is Action.UNLOCK:
            assert device is not None  # unsigned unlocks never pass the verifier
            decision = self.controller.remote(device.owner, authorised=True, pin=self._sealed_pin(args),
                                              device=f"link:{device.name}", link_verified=True)
            return Outcome(decision.accepted, command.action.value, remote_reply(decision.reason), command.counter,
                           device.name)
        if command.action is Action.LOCK:
            self.controller.lock()
            return self._record(command, device, at)
        if command.action is Action.LOCKDOWN:
            self.store.set_lockdown(True, actor, at)
            self.controller.secure()
            return self._record(command, device, at)
        if command.action is Action.REVOKE_CODE:
            code_id = self.store.revoke_code(_arg(args, "code"), actor, at)
            self._remember("code", code_id, at)
            return self._record(command, device, at, code_id=code_id)
        if command.action is Action.REVOKE_USER:
            user = self.store.set_status(_arg(args, "user"), UserStatus.DISABLED, actor, at)
            self._remember("user", user.user_id, at)
            return self._record(command, device, at, user=user.user_id)
        if command.action is Action.ERASE:
            return self._erase(command, device, actor, at)
        if command.action is Action.DECOMMISSION:
            erased = self._eraser().decommission(actor, at)
            return self._receipt(self._record(command, device, at, scope="lock"), command, "*", "lock", erased, at)
        if command.action is Action.ADD_USER:
            return self._add_user(command, actor, at, device)
        return self._add_code(command, actor, at, device)

    def _step_up(self, command: Command, device: Device | None, at: datetime) -> Outcome | None:
        """What a remote unlock needs, a remote action that makes a way in (a new person, a code) needs too: while
        `require_pin_for_remote` is on, the owner's PIN sealed in `args["pin"]`, judged as the unlock's
        (`AccessStore.step_up`: `pin_required` without it, a wrong one `unknown_credential` counted toward the
        keypad lockout, `locked_out` while it lasts); else a stolen paired phone would mint a PIN or code that
        opens at the keypad.  The refusal, audited; None when the action may go on."""
        if device is None:  # unsigned adds never pass the verifier
            raise BadRequest("device", "a signed command only")
        decision = self.store.step_up(remote_attempt(device.owner, True, self._sealed_pin(command.args),
                                                     f"link:{device.name}", link_verified=True), at).decision
        if decision.accepted:
            return None
        recorded = self._record(command, device, at, executed=False, reason=decision.reason.value,
                                detail=decision.detail)  # the real reason in the audit, a wrong PIN to the sender
        return replace(recorded, reason=remote_reply(decision.reason),
                       data={"audit_index": recorded.data["audit_index"]})

    def _add_user(self, command: Command, actor: str, at: datetime, device: Device | None) -> Outcome:
        """A member or guest (`args["permission"]`, default member) named `args["name"]`; with `args["reply_key"]`
        the lock draws them a PIN and returns it sealed to that key, as `add_code` does (the cloud cannot read it).
        Owners and administrators program the lock: they are added in person, never by a remote command."""
        reply = _reply_key(command.args["reply_key"]) if command.args.get("reply_key") else None
        try:
            permission = PermissionLevel(command.args.get("permission", PermissionLevel.MEMBER.value))
        except ValueError as exc:
            raise BadRequest("permission", "member or guest") from exc
        if permission.programs:
            raise BadRequest("permission", f"a remote command adds a member or guest, not an {permission.value}: "
                             "owners and administrators are added at the lock")
        refused = self._step_up(command, device, at)
        if refused is not None:
            return refused
        pin = _fresh_pin() if reply is not None else None
        user = self.store.add_user(_arg(command.args, "name"), actor, at, pin=pin, permission=permission)
        outcome = self._record(command, device, at, user=user.user_id, permission=permission.value,
                               pin_set=str(pin is not None).lower())
        if reply is None or pin is None:
            return outcome
        return replace(outcome, data={**outcome.data, "sealed_pin": seal_reply(reply, pin.encode("ascii"))})

    def _erase(self, command: Command, device: Device | None, actor: str, at: datetime) -> Outcome:
        user_id = self.store.user(_arg(command.args, "user")).user_id
        scope = command.args.get("scope", "templates")
        if scope == "templates":
            erased = {"vault_templates": self.erase(user_id, actor, at)}
            if self.eraser is not None:  # match on sensor: the person's pages on the fingerprint module
                erased |= self.eraser.sensor_pages(user_id, actor, at)
            outcome = self._record(command, device, at, templates_erased=str(erased["vault_templates"]), scope=scope)
            return self._receipt(outcome, command, user_id, scope, erased, at)
        if scope != "person":
            raise BadRequest("scope", "templates or person")
        eraser = self._eraser()
        through = eraser.backups.counter()  # every backup up to this one holds the person
        erased = eraser.erase_person(user_id, actor, at)
        outcome = self._record(command, device, at, templates_erased=str(erased["vault_templates"]), scope=scope)
        outcome = self._receipt(outcome, command, user_id, scope, erased, at, backups_through=through)
        return replace(outcome, data={**outcome.data, "fresh_backup": self._fresh_backup(eraser, at)})

    def _fresh_backup(self, eraser: LockEraser, at: datetime) -> str:
        """A backup without the erased person, so the owner keeps one (uploaded by `limen link run`)."""
        if not eraser.backups.recipients():
            return "none: no backup key registered"
        try:
            eraser.backups.make(at)
        except LimenError as exc:  # the erasure stands; only the new backup is missing
            return f"failed: {exc}"[:200]
        return str(eraser.backups.counter())

    def _receipt(self, outcome: Outcome, command: Command, user: str, scope: str, erased: dict[str, int],
                 at: datetime, *, backups_through: int | None = None) -> Outcome:
        if self.signer is None:
            return outcome
        receipt = erasure_receipt(self.signer, command.lock, user, {"lock": erased}, at,
                                  int(outcome.data["audit_index"]), scope=scope, backups_through=backups_through)
        return replace(outcome, data={**outcome.data, "receipt": receipt})

    def _remember(self, kind: str, ref: str, at: datetime) -> None:
        """A remote revocation goes on the list no restore can undo (when this lock keeps backups)."""
        if self.eraser is not None:
            self.eraser.backups.note_revocation(kind, ref, at)

    def _eraser(self) -> LockEraser:
        if self.eraser is None:
            raise BadRequest("action", "this lock was started without its eraser (backups and erasure)")
        return self.eraser

    def _sealed_pin(self, args: Any) -> str | None:
        """The owner's PIN the device sealed to this lock's restore key (`args["pin"]`; `require_pin_for_remote`):
        the cloud relaying the command cannot read it.  None when the command carries none."""
        if "pin" not in args:
            return None
        if self.restore_key is None:
            raise BadRequest("pin", "this lock has no key to open a sealed PIN")
        try:
            plain = open_reply(self.restore_key, _arg(args, "pin"))
        except (InvalidTag, ValueError) as exc:
            raise BadRequest("pin", "not sealed to this lock's restore key") from exc
        if not plain.startswith(PIN_SEAL_PREFIX):
            raise BadRequest("pin", "not a sealed PIN")
        try:
            return plain[len(PIN_SEAL_PREFIX):].decode("ascii")
        except UnicodeDecodeError as exc:
            raise BadRequest("pin", "not a sealed PIN") from exc

    def _owner_has_pin(self, owner: str) -> bool:
        """Whether `owner` holds an unrevoked PIN here (one past its age limit counts: the step-up refuses it)."""
        return any(c.type is CredentialType.PIN and not c.revoked for c in self.store.credentials(owner))

    def _restore_step_up(self, command: Command, device: Device, at: datetime) -> Outcome | None:
        """While `require_pin_for_remote` is on, a restore always needs the device's owner's sealed PIN
        (`_step_up`): it replaces people, settings and lockout state, so a stolen paired phone must not run one
        without it.  An owner without a PIN here is refused `pin_required` (set one at the lock: a replacement
        lock's in-person pairing gives its first owner one).  None when the restore may go on."""
        if not self.store.load_state().config.require_pin_for_remote:
            return None
        if not self._owner_has_pin(device.owner):
            return self._record(command, device, at, executed=False, reason=Reason.PIN_REQUIRED.value,
                                detail="the owner has no PIN on this lock: set one at the lock, then restore")
        return self._step_up(command, device, at)

    def _restore(self, command: Command, device: Device | None, blob: bytes | None, at: datetime) -> Outcome:
        """Load the attached backup the owner named (by SHA-256) with the content key sealed to this lock (and,
        `_restore_step_up`, the owner's PIN sealed to it in `args["pin"]`).  `owner_without_pin` in the outcome: the
        restore left the signing owner with no unrevoked PIN here (a backup older than their PIN), so while
        `require_pin_for_remote` is on no restore runs until they set one at the lock."""
        if device is None:  # unsigned restores never pass the verifier; kept explicit
            raise BadRequest("restore", "needs an owner's signature")
        if blob is None or not hmac.compare_digest(digest(blob), _arg(command.args, "backup").lower()):
            raise BadRequest("backup", "the attached backup is not the one the owner signed for")
        if self.restore_key is None:
            raise BadRequest("restore", "this lock has no restore key")
        refused = self._restore_step_up(command, device, at)
        if refused is not None:
            return refused
        try:
            content_key = open_reply(self.restore_key, _arg(command.args, "key"))
        except (InvalidTag, ValueError) as exc:
            raise BadRequest("key", "the content key was not sealed to this lock's restore key") from exc
        eraser = self._eraser()
        actor, on_sensor = f"restore:{device.owner}", Counter[str]()

        def forget(user_id: str) -> None:  # a person the backup does not have: templates, pages on the module
            self.erase(user_id, actor, at)
            on_sensor.update(eraser.sensor_pages(user_id, actor, at))

        restored = eraser.backups.restore(
            blob, content_key, at, from_lock=command.args.get("from_lock", command.lock),
            revoked=Revoked.parse(command.args.get("revoked", "")), lock_keys=_lock_keys(command.args),
            on_removed=forget)
        if eraser.backups.pepper_replaced:  # the backup's PIN pepper is now this lock's: stores read it again
            self.store.pepper = self.controller.store.pepper = file_side_key(eraser.backups.keys_dir, PIN_PEPPER)
        summary = restored.to_dict()
        owner = self.verifier.devices.get(device.name).owner  # the backup may have repointed the device
        return self._record(command, device, at, from_lock=restored.lock, backup_counter=str(restored.counter),
                            users=str(restored.rows.get("users", 0)), revoked_users=str(restored.revoked_users),
                            revoked_codes=str(restored.revoked_codes),
                            revoked_credentials=str(restored.revoked_credentials),
                            pins_need_reset=str(summary["pins_need_reset"]),
                            backup_recipients_added=str(summary["backup_recipients_added"]),
                            backup_recipients_kept_removed=str(summary["backup_recipients_kept_removed"]),
                            kept_lower_permissions=str(summary["kept_lower_permissions"]),
                            kept_restrictions=str(summary["kept_restrictions"]),
                            kept_lock_state=",".join(restored.kept_lock_state) or "none",
                            owner_without_pin=str(not self._owner_has_pin(owner)).lower(),
                            **_sensor_summary(on_sensor))

    def _add_code(self, command: Command, actor: str, at: datetime, device: Device | None) -> Outcome:
        reply = _reply_key(_arg(command.args, "reply_key"))  # checked before anything is issued
        try:
            kind = CodeKind(command.args.get("kind", CodeKind.SINGLE_USE.value))
            hours = int(command.args.get("hours", "24"))
        except ValueError as exc:
            raise BadRequest("args", f"kind one of {', '.join(k.value for k in CodeKind)}; hours an integer") from exc
        refused = self._step_up(command, device, at)
        if refused is not None:
            return refused
        code, grant = self.store.issue_code(kind, actor, at, hours=hours)
        outcome = self._record(command, device, at, code_id=grant.code_id)
        return Outcome(True, outcome.action, outcome.reason, outcome.counter, outcome.device,
                       {"code_id": grant.code_id, "sealed_code": seal_reply(reply, code.encode("ascii"))})

    def _record(self, command: Command, device: Device | None, at: datetime, *, executed: bool = True,
                reason: str = "done", **data: str) -> Outcome:
        name = device.name if device is not None else "cloud"
        index = self.audit.append(Event(EventKind.REMOTE_COMMAND, at, actor=f"remote:{name}", subject=command.lock,
                                        outcome="executed" if executed else "refused", reason=reason,
                                        source="remote", data={"action": command.action.value, "device": name,
                                                               "device_known": True, "counter": command.counter,
                                                               "signed": device is not None, **data}))
        return Outcome(executed, command.action.value, reason, command.counter, name,
                       {**data, "audit_index": str(index)})

    def _refused(self, payload: bytes, exc: CommandRefused, at: datetime, device_signed: bool = False) -> Outcome:
        """Audited within `RefusalBudget` (a flood of refused payloads from the broker fills neither the disk nor
        the service's lock); beyond it counted, and the counts go into the next refusal recorded.  `device_signed`
        (a paired device's valid signature: replayed, expired, re-targeted) draws on a budget of its own."""
        budget = self._refusals[device_signed]
        # a refusal over the times names the lock's clock to the owner (no secret in either)
        told = {"lock_time": at.isoformat(), "detail": exc.detail} if exc.refusal in _CLOCK else {}
        if not budget.take(str(exc.refusal)):
            return Outcome(False, None, str(exc.refusal), data=told)
        known = exc.refusal not in (Refusal.UNKNOWN_DEVICE, Refusal.BAD_SIGNATURE)
        data: dict[str, Any] = {"device_known": known, "bytes": len(payload), "detail": exc.detail}
        skipped = budget.skipped()
        if skipped:
            data["not_recorded_before"] = skipped
        self.audit.append(Event(EventKind.REMOTE_COMMAND, at, actor="remote", subject=self.verifier.lock_id,
                                outcome="refused", reason=str(exc.refusal), source="remote", data=data))
        return Outcome(False, None, str(exc.refusal), data=told)


# refusals the verifier makes only after a paired device's signature verified (`CommandVerifier.verify`)
_AFTER_SIGNATURE = frozenset({Refusal.REPLAYED, Refusal.WRONG_LOCK, Refusal.EXPIRED, Refusal.TOO_LONG,
                              Refusal.CLOCK_SKEW})
_CLOCK = frozenset({Refusal.EXPIRED, Refusal.TOO_LONG, Refusal.CLOCK_SKEW})


def _fresh_pin() -> str:
    """A random PIN of `PIN_MIN_LENGTH` digits the PIN rules accept (no repeated digit, no straight run)."""
    while True:
        pin = "".join(secrets.choice("0123456789") for _ in range(T.PIN_MIN_LENGTH))
        try:
            return validate_pin(pin)
        except BadRequest:
            continue


class RefusalBudget:
    """How many refused payloads are audited: a bucket of `LINK_REFUSALS_AUDITED_BURST` refilled at
    `LINK_REFUSALS_AUDITED_PER_MIN`; refusals beyond it are counted by reason (`skipped` hands the counts over
    once).  Each audited refusal is a synced write under the service's lock: unbounded, a broker sending garbage
    at 180 a second grew the trail by 90 kB/s and held the door path's lock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._tokens = float(T.LINK_REFUSALS_AUDITED_BURST)
        self._at = clock.monotonic()
        self._skipped: Counter[str] = Counter()

    def take(self, reason: str) -> bool:
        """True when this refusal is to be audited; else it is counted under `reason`."""
        now = self.clock.monotonic()
        self._tokens = min(float(T.LINK_REFUSALS_AUDITED_BURST),
                           self._tokens + (now - self._at) * T.LINK_REFUSALS_AUDITED_PER_MIN / 60.0)
        self._at = now
        if self._tokens < 1.0:
            self._skipped[reason] += 1
            return False
        self._tokens -= 1.0
        return True

    def skipped(self) -> dict[str, int]:
        """The refusals not audited since the last call, by reason."""
        counts, self._skipped = dict(self._skipped), Counter()
        return counts


def _arg(args: Any, name: str) -> str:
    value = args.get(name)
    if not value:
        raise BadRequest(name, "missing argument")
    return str(value)


def _lock_keys(args: Any) -> dict[str, Ed25519PublicKey]:
    """The old lock's audit key the owner named (`from_lock_key`, base64), by key id; none when absent."""
    text = args.get("from_lock_key")
    if not text:
        return {}
    try:
        public = load_public_b64(str(text))
    except AuditError as exc:
        raise BadRequest("from_lock_key", "expected a base64 Ed25519 public key") from exc
    return {key_id(public): public}


def _reply_key(text: str) -> X25519PublicKey:
    try:
        return X25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except ValueError as exc:
        raise BadRequest("reply_key", "expected a base64 X25519 public key") from exc


def erasure_receipt(key: SigningKey, lock: str, user: str, erased: dict[str, dict[str, int]], at: datetime,
                    audit_index: int, scope: str = "templates", backups_through: int | None = None) -> str:
    """A signed statement of what was erased where (the lock's audit key; verify with `verify_receipt`).

    `scope`: "templates" (biometric references), "person" ("delete me") or "lock" (decommission, user "*").
    `backups_through`: the newest backup counter that still holds the person (the cloud deletes up to it).
    """
    body: dict[str, Any] = {"v": 1, "lock": lock, "user": user, "scope": scope, "erased": erased,
                            "at": at.isoformat(), "audit_index": audit_index, "key_id": key.key_id}
    if backups_through is not None:
        body["backups_through"] = backups_through
    return json.dumps({**body, "sig": key.sign(_RECEIPT_DOMAIN + canonical(body))}, sort_keys=True)


def verify_receipt(text: str, public: Ed25519PublicKey) -> dict[str, Any]:
    """The receipt's statement if its signature verifies under `public`; `BadRequest` otherwise."""
    try:
        receipt = json.loads(text)
        body = {k: v for k, v in receipt.items() if k != "sig"}
        valid = verify_signature(public, str(receipt["sig"]), _RECEIPT_DOMAIN + canonical(body))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadRequest("receipt", "not an erasure receipt") from exc
    if not valid:
        raise BadRequest("receipt", "the signature does not verify")
    return body


def seal_reply(recipient: X25519PublicKey, plaintext: bytes) -> str:
    """Encrypt `plaintext` to `recipient` (X25519 → HKDF-SHA256 → ChaCha20-Poly1305); base64 of eph‖nonce‖ct."""
    eph = X25519PrivateKey.generate()
    eph_pub = eph.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key = HKDF(hashes.SHA256(), 32, eph_pub, _REPLY_INFO).derive(eph.exchange(recipient))
    nonce = os.urandom(12)
    return base64.b64encode(eph_pub + nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, eph_pub)).decode()


def seal_pin(lock_restore_key: X25519PublicKey, pin: str) -> str:
    """What the owner's device puts in an unlock's `args["pin"]`: the PIN sealed to the lock's restore key."""
    return seal_reply(lock_restore_key, PIN_SEAL_PREFIX + pin.encode("ascii"))


def open_reply(private: X25519PrivateKey, sealed: str) -> bytes:
    """What the owner's device does with `sealed_code` (raises cryptography's InvalidTag when tampered)."""
    raw = base64.b64decode(sealed)
    eph_pub, nonce, ct = raw[:32], raw[32:44], raw[44:]
    key = HKDF(hashes.SHA256(), 32, eph_pub, _REPLY_INFO).derive(private.exchange(X25519PublicKey.from_public_bytes(
        eph_pub)))
    return ChaCha20Poly1305(key).decrypt(nonce, ct, eph_pub)


class _SensorSummary(TypedDict, total=False):
    sensor_pages_erased: str
    sensor_pages_failed: str
    sensor_incomplete: str


def _sensor_summary(counts: Counter[str]) -> _SensorSummary:
    """The removed people's pages on the fingerprint module, for a restore's outcome; {} when there were none."""
    if not counts:
        return {}
    return {"sensor_pages_erased": str(counts["sensor_pages_erased"]),
            "sensor_pages_failed": str(counts["sensor_pages_failed"]),
            "sensor_incomplete": str(min(1, counts["sensor_incomplete"]))}


def lock_eraser(rt: Runtime) -> LockEraser:
    """The runtime's eraser over its database, vault, audit log and local backups (`data_dir/backups`)."""
    backups = Backups(rt.conn, rt.settings.device_id, rt.settings.keys_dir, rt.settings.data_dir / "backups")
    return LockEraser(rt.conn, rt.store, rt.audit, backups, rt.erase_fingers,
                      sensor_pages=lambda user, actor, at: rt.erase_sensor_pages(user, actor, at, "remote").counts(),
                      empty_sensor=lambda actor, at: rt.empty_sensor(actor, at, "remote").counts())


def for_runtime(rt: Runtime) -> LinkCommands:
    """The lock's command runner over the runtime's controller, access store, audit log and vault."""
    verifier = CommandVerifier(DeviceRegistry(rt.conn), rt.settings.device_id,
                               cloud_may_lock=rt.settings.link_cloud_may_lock)
    return LinkCommands(verifier, rt.controller, rt.access("remote"), rt.audit,
                        lambda user, actor, at: rt.erase_templates(user, actor, at, source="remote"),
                        signer=rt.audit.key, eraser=lock_eraser(rt), restore_key=restore_key(rt.settings.keys_dir),
                        clock=rt.clock)
