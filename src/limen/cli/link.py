"""`limen link …`: pair the owner's devices, run signed commands, provision and run the cloud link.

Pairing is done in person at the lock: `limen link pair-device NAME
--public-key FILE --as OWNER` proves the owner by PIN (prompted, or
`LIMEN_ACTOR_PIN`) and prints the record the device keeps: this lock's id and
audit public key, which a replacement lock's restore needs.  The lock's TLS key is made here and never leaves the data
directory (`limen link csr`); the fleet CA's certificate comes back with
`limen link install-cert`; `limen link run` connects to `link_broker`.

Backups (`limen.link.backup`): `backup-key` registers an owner device's X25519
key, `backup-keys` lists them with whose each is, `backup-key-remove` removes one (so does
`unpair` for the device's key), `recovery-key` prints a recovery key once (only its public half is kept),
`backup` makes an encrypted backup (uploaded by `limen link run`), `restore`
loads one in person with the recovery key, `restore-key` shows the key an
owner's phone seals a remote restore's content key to.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from limen.cli.common import STATE, output
from limen.cli.common import gettext as _
from limen.errors import BadRequest, LinkError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from limen.audit.keys import SigningKey
    from limen.bio.finger.sensor import SensorErasure
    from limen.link.backup import Backups, RemovedKey
    from limen.runtime import Runtime

link_app = typer.Typer(help="The cloud link: owner devices, signed commands, certificates.", no_args_is_help=True)

Actor = Annotated[str, typer.Option("--as", help="The owner doing this, proven by their PIN (name, id or index).")]
ActorPin = Annotated[str | None, typer.Option("--as-pin", envvar="LIMEN_ACTOR_PIN", hidden=True,
                                              help="The owner's PIN (prompted when absent).")]


def register(app: typer.Typer) -> None:
    app.add_typer(link_app, name="link")


def _owner(rt: Runtime, actor: str, pin: str | None) -> str:
    from limen.access.model import PermissionLevel

    if not rt.has_owner():
        raise BadRequest("as", "this lock has no owner yet: add the owner first (limen users add)")
    if pin is None:  # the prompt on stderr: `--json > record.json` keeps stdout for the record
        pin = str(typer.prompt(_("PIN of {name}").format(name=actor), hide_input=True, err=True))
    who = rt.authorise(actor, pin, datetime.now(UTC))
    if rt.access().user(who).permission is not PermissionLevel.OWNER:
        raise BadRequest("as", "only an owner pairs or removes devices")
    return who


def _paths() -> tuple[Path, Path, Path]:
    d = STATE.settings.keys_dir
    return d / "link-ca.pem", d / "link-client.pem", d / "link-client.key"


@link_app.command("pair-device")
def pair_device(name: Annotated[str, typer.Argument(help="A name for the owner's device, e.g. olga-phone.")],
                public_key: Annotated[Path, typer.Option("--public-key", help="Its Ed25519 public key (PEM).")],
                actor: Actor, actor_pin: ActorPin = None,
                qr: Annotated[bool, typer.Option("--qr", help="Also print the pairing record (this lock's id and "
                                                 "audit key) as a QR code for the device to scan.")] = False,
                ) -> None:
    """Register an owner's device whose signed commands this lock will accept.

    Prints this lock's audit public key (id and base64; `--json`, `--qr`): the owner's device keeps it, since a
    replacement lock restores this lock's backups only under it."""
    from limen.audit.event import Event, EventKind
    from limen.audit.keys import load_or_create_key
    from limen.link.commands import DeviceRegistry, load_public_key
    from limen.runtime import open_runtime

    try:
        key = load_public_key(public_key.read_bytes())
    except OSError as exc:
        raise BadRequest("public-key", f"cannot read {public_key} ({exc.strerror})") from exc
    rt = open_runtime(STATE.settings)
    try:
        owner = _owner(rt, actor, actor_pin)
        now = datetime.now(UTC)
        device = DeviceRegistry(rt.conn).pair(name, key, owner, owner, now)
        signer = load_or_create_key(STATE.settings.keys_dir)  # the key this lock's backups are signed with
        # the key in the record: the cloud trusts only devices the lock's own chain says were paired in person
        # (an owner-signed replacement mark, `limen_cloud.statements`)
        rt.audit.append(Event(EventKind.CONFIG_CHANGE, now, actor=owner, subject=f"device:{name}",
                              reason="link device paired", source="cli",
                              data={"device": name, "public_key": base64.b64encode(device.public_key).decode()}))
    finally:
        rt.close()
    record = _pairing_record(device.name, device.owner, signer)
    output(record, lambda: _show_pairing(record, qr))


def _pairing_record(device: str, owner: str, signer: SigningKey) -> dict[str, str]:
    """What the owner's device keeps from pairing: this lock's id and audit public key (id + base64).

    The lock's backups are signed by that key: a replacement lock restores one only when the owner names it
    (`from_lock_key` in the signed restore, `limen link restore --from-lock-key`), and after a tamper erase
    this record on the owner's device is the copy of it that is left (never the cloud's)."""
    from limen.audit.keys import public_b64

    return {"device": device, "owner": owner, "lock": STATE.settings.device_id,
            "audit_key_id": signer.key_id, "audit_key": public_b64(signer.public)}


def _show_pairing(record: dict[str, str], qr: bool) -> None:
    import json

    typer.echo(_("paired {name} (commands signed by it are checked by this lock)").format(name=record["device"]))
    typer.echo(_("this lock's audit key (keep it on {name}: restoring a backup of this lock onto a replacement "
                 "needs it):").format(name=record["device"]))
    typer.echo(f"  lock {record['lock']}  key id {record['audit_key_id']}  key {record['audit_key']}")
    if qr:  # the same record as --json gives, for the phone to scan
        import segno

        segno.make(json.dumps(record, sort_keys=True), error="m").terminal(compact=True)


@link_app.command("unpair")
def unpair(name: Annotated[str, typer.Argument()], actor: Actor, actor_pin: ActorPin = None) -> None:
    """Remove a device: its commands are refused from now on, and backups are no longer encrypted to its key."""
    from limen.audit.event import Event, EventKind
    from limen.db import transaction
    from limen.link.backup import Removal
    from limen.link.commands import DeviceRegistry

    rt, backups = _backups()
    try:
        owner = _owner(rt, actor, actor_pin)
        now = datetime.now(UTC)
        DeviceRegistry(rt.conn).unpair(name)
        rt.audit.append(Event(EventKind.CONFIG_CHANGE, now, actor=owner, subject=f"device:{name}",
                              reason="link device removed", source="cli", data={"device": name}))
        with transaction(rt.conn):  # the device's backup key goes with it
            keys = backups.remove_keys_of(None, owner, now, Removal.DEVICE_UNPAIRED, device=name)
        _audit_removed(rt, keys, owner, now)
    finally:
        rt.close()
    said = _("removed {name}").format(name=name)
    if keys:
        said += "\n" + _removed_text(keys)
    output({"removed": name, "backup_keys_removed": [k.name for k in keys]}, said)


def _audit_removed(rt: Runtime, keys: list[RemovedKey], owner: str, at: datetime) -> None:
    from limen.link.backup import removal_event

    for key in keys:
        rt.audit.append(removal_event(key, owner, at, "cli"))


def _removed_text(keys: list[RemovedKey]) -> str:
    """What the owner is told after backup keys were removed (older backups stay readable with them)."""
    from limen.link.backup import AFTER_REMOVAL

    return _("backup key(s) {names} removed: {after}").format(names=", ".join(k.name for k in keys),
                                                             after=AFTER_REMOVAL)


@link_app.command("devices")
def devices() -> None:
    """The paired devices and the last command counter accepted from each."""
    from limen.link.commands import DeviceRegistry
    from limen.runtime import open_runtime

    rt = open_runtime(STATE.settings)
    try:
        rows: list[dict[str, Any]] = [
            {"device": d.name, "owner": d.owner, "counter": d.counter, "paired_at": d.paired_at}
            for d in DeviceRegistry(rt.conn).paired()]
    finally:
        rt.close()
    output(rows, "\n".join(f"{r['device']:<24} " + _("counter {counter} paired {at}").format(
        counter=f"{r['counter']:<12}", at=r["paired_at"][:16]) for r in rows) or _("no paired devices"))


@link_app.command("execute")
def execute(file: Annotated[Path, typer.Argument(help="A signed command as sent by the owner's device.")]) -> None:
    """Run one signed command delivered without the cloud (USB, Bluetooth): same checks, same audit."""
    from limen.link.execute import for_runtime
    from limen.runtime import open_runtime

    try:
        payload = file.read_bytes()
    except OSError as exc:
        raise BadRequest(str(file), f"cannot read ({exc.strerror})") from exc
    rt = open_runtime(STATE.settings)
    try:
        outcome = for_runtime(rt).handle(payload, datetime.now(UTC))
    finally:
        rt.close()
    verdict = _("DONE") if outcome.executed else _("REFUSED")
    output(outcome.to_dict(), f"{verdict}: {outcome.action or '-'} ({outcome.reason})")
    if not outcome.executed:
        raise typer.Exit(3)


@link_app.command("backup-key")
def backup_key(name: Annotated[str, typer.Argument(help="The owner's device, e.g. olga-phone.")],
               public_key: Annotated[str, typer.Option("--public-key",
                                                       help="Its X25519 public key (base64 of 32 bytes).")],
               actor: Actor, actor_pin: ActorPin = None) -> None:
    """Encrypt future backups to this owner device's key too (in person, owner's PIN)."""
    from limen.audit.event import Event, EventKind
    from limen.link.backup import RecipientKind, load_x25519_public

    key = load_x25519_public(public_key)
    rt, backups = _backups()
    try:
        owner = _owner(rt, actor, actor_pin)
        now = datetime.now(UTC)
        backups.add_recipient(name, RecipientKind.DEVICE, key, owner, now)
        rt.audit.append(Event(EventKind.CONFIG_CHANGE, now, actor=owner, subject=f"backup-key:{name}",
                              reason="backup recipient added", source="cli", data={"recipient": name}))
    finally:
        rt.close()
    output({"recipient": name}, _("backups are now also encrypted to {name}").format(name=name))


@link_app.command("backup-keys")
def backup_keys() -> None:
    """The keys backups are encrypted to, whose each is (person id, paired device), and how many were removed."""
    rt, backups = _backups()
    try:
        rows, removed = backups.registered(), backups.removed_keys()
    finally:
        rt.close()
    output({"keys": rows, "removed": removed},
           "\n".join(f"{r['name']:<24} {r['kind']:<9} " + _("person {person} device {device} added {at}").format(
               person=(r["person"] or "-")[:8], device=r["device"] or "-", at=r["added_at"][:16]) for r in rows)
           + ("\n" if rows else _("no backup keys") + "\n")
           + _("{n} key(s) removed (never registered again by a restore)").format(n=len(removed)))


@link_app.command("backup-key-remove")
def backup_key_remove(name: Annotated[str, typer.Argument(help="The key's name (`limen link backup-keys`).")],
                      actor: Actor, actor_pin: ActorPin = None) -> None:
    """Stop encrypting backups to this key (a lost phone, a co-owner who left); in person, owner's PIN.

    Backups made before stay readable with it: the output says what to rotate."""
    rt, backups = _backups()
    try:
        owner = _owner(rt, actor, actor_pin)
        now = datetime.now(UTC)
        key = backups.remove_recipient(name, owner, now)
        _audit_removed(rt, [key], owner, now)
    finally:
        rt.close()
    from limen.link.backup import AFTER_REMOVAL

    output({"removed": name, "kind": key.kind, "older_backups": AFTER_REMOVAL}, _removed_text([key]))


@link_app.command("recovery-key")
def recovery_key(actor: Actor, actor_pin: ActorPin = None) -> None:
    """Make the printed recovery key (shown once; a new one replaces the old for future backups)."""
    from limen.audit.event import Event, EventKind
    from limen.link.backup import RecipientKind, new_recovery_key

    rt, backups = _backups()
    try:
        owner = _owner(rt, actor, actor_pin)
        now = datetime.now(UTC)
        printed, public = new_recovery_key()
        backups.add_recipient("recovery", RecipientKind.RECOVERY, public, owner, now)
        rt.audit.append(Event(EventKind.CONFIG_CHANGE, now, actor=owner, subject="backup-key:recovery",
                              reason="recovery key made", source="cli"))
    finally:
        rt.close()
    output({"recovery_key": printed}, _("recovery key (print it, keep it offline; it is not stored):") + f"\n{printed}")


@link_app.command("backup")
def backup() -> None:
    """Make an end-to-end-encrypted backup now (to every registered key); `limen link run` uploads it."""
    from limen.audit.event import Event, EventKind

    rt, backups = _backups()
    try:
        now = datetime.now(UTC)
        path, blob = backups.make(now)
        rt.audit.append(Event(EventKind.PRIVACY, now, actor="system", subject="lock", reason="backup made",
                              source="cli", data={"file": path.name, "bytes": len(blob),
                                                  "recipients": len(backups.recipients())}))
    finally:
        rt.close()
    output({"file": str(path), "bytes": len(blob)},
           _("wrote {path} ({n} bytes, encrypted)").format(path=path, n=len(blob)))


@link_app.command("backups")
def list_backups() -> None:
    """The local backup files and whether each reached the cloud."""
    rt, backups = _backups()
    try:
        rows = backups.local_files()
    finally:
        rt.close()
    output(rows, "\n".join(f"{r['counter']:>6}  {r['created_at'][:19]}  "
                           + (_("uploaded") if r["uploaded_at"] else _("not uploaded")) for r in rows)
           or _("no backups"))


@link_app.command("restore-key")
def show_restore_key() -> None:
    """This lock's X25519 public key that an owner's phone seals a remote restore's content key to."""
    import base64

    from limen.link.backup import raw_public, restore_key

    public = raw_public(restore_key(STATE.settings.keys_dir).public_key())
    text = base64.b64encode(public).decode("ascii")
    output({"restore_key": text}, text)


@link_app.command("restore")
def restore(file: Annotated[Path, typer.Argument(help="An encrypted backup (from the cloud or a local copy).")],
            from_lock: Annotated[str | None, typer.Option("--from-lock",
                                                          help="The lock it was made on (default: this one).")] = None,
            recovery: Annotated[str | None, typer.Option("--recovery-key", envvar="LIMEN_RECOVERY_KEY", hidden=True,
                                                         help="The printed recovery key (prompted).")] = None,
            from_lock_key: Annotated[list[str] | None, typer.Option(
                "--from-lock-key",
                help="The replaced lock's audit public key (base64 Ed25519, from the owner's own record of it, "
                     "never from the cloud); needed when the backup comes from another lock.")] = None,
            ) -> None:
    """Restore a backup in person with the printed recovery key (one transaction; revocations stay)."""
    from limen.audit.event import Event, EventKind
    from limen.link.backup import parse_recovery_key, unwrap_key

    try:
        blob = file.read_bytes()
    except OSError as exc:
        raise BadRequest(str(file), f"cannot read ({exc.strerror})") from exc
    text = recovery if recovery is not None else str(typer.prompt(_("Recovery key"), hide_input=True, err=True))
    rt, backups = _backups()
    on_sensor: list[SensorErasure] = []

    def forget(user_id: str) -> None:
        """A person of this lock the backup does not have: their templates, and their pages on the module."""
        rt.erase_templates(user_id, "restore", now)
        on_sensor.append(rt.erase_sensor_pages(user_id, "restore", now))  # an erased vault: reported, not raised

    try:
        now = datetime.now(UTC)
        try:
            _sealed, content_key = unwrap_key(blob, parse_recovery_key(text))
            restored = backups.restore(blob, content_key, now, from_lock=from_lock or STATE.settings.device_id,
                                       on_removed=forget, lock_keys=_lock_keys(from_lock_key or []))
        except BadRequest as exc:
            rt.audit.append(Event(EventKind.PRIVACY, now, actor="recovery-key", subject="lock", outcome="refused",
                                  reason="backup restore refused", source="cli", data={"detail": exc.reason}))
            raise
        sensor = _together(on_sensor)
        rt.audit.append(Event(EventKind.PRIVACY, now, actor="recovery-key", subject="lock", outcome="restored",
                              reason="backup restored", source="cli", data=restored.to_dict() | sensor.counts()))
    finally:
        rt.close()
    said = _("restored backup {counter} of {lock} ({people} people; {users} users and {codes} codes kept revoked)"
             ).format(counter=restored.counter, lock=restored.lock, people=restored.rows.get("users", 0),
                      users=restored.revoked_users, codes=restored.revoked_codes)
    if restored.recipients_added:  # the backup's owner devices and recovery key: backups go on to them
        said += "\n" + _("{n} backup key(s) of the backup registered again").format(n=restored.recipients_added)
    if restored.recipients_kept_removed:
        said += "\n" + _("{n} backup key(s) of the backup not registered again (removed since)").format(
            n=restored.recipients_kept_removed)
    if restored.lowered_permissions:
        said += "\n" + _("{n} person(s) kept at the lower permission they were given since the backup").format(
            n=restored.lowered_permissions)
    output(restored.to_dict() | sensor.counts(), said)
    if not sensor.complete:  # the restore stands; a removed person's page left on the module is not hidden
        typer.echo(_("the fingerprint sensor did not delete page(s) {pages} of removed people: {detail}").format(
            pages=sensor.failed, detail=sensor.detail), err=True)
        raise typer.Exit(1)


def _together(results: list[SensorErasure]) -> SensorErasure:
    """Several people's page erasures as one (for the restore's output and audit record)."""
    from limen.bio.finger.sensor import SensorErasure

    return SensorErasure(erased=[p for r in results for p in r.erased], failed=[p for r in results for p in r.failed],
                         detail="; ".join(dict.fromkeys(r.detail for r in results if r.detail)))


def _lock_keys(texts: list[str]) -> dict[str, Ed25519PublicKey]:
    """Audit public keys given in base64 (32 raw bytes each), by key id; a malformed one is a clear error."""
    import base64
    import binascii

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey as Public

    from limen.audit.keys import key_id

    keys: dict[str, Ed25519PublicKey] = {}
    for text in texts:
        try:
            raw = base64.b64decode(text.strip(), validate=True)
            public = Public.from_public_bytes(raw)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest("--from-lock-key", "not a base64 Ed25519 public key (32 bytes)") from exc
        keys[key_id(public)] = public
    return keys


@link_app.command("backup-templates")
def backup_templates(state: Annotated[str, typer.Argument(help="on or off.")],
                     actor: Actor, actor_pin: ActorPin = None) -> None:
    """Opt in to (on) or out of (off) backing up face templates and fingers; off by default (owner's PIN)."""
    if state not in ("on", "off"):
        raise BadRequest("state", "say on or off")
    rt, backups = _backups()
    try:
        owner = _owner(rt, actor, actor_pin)
        backups.set_templates(state == "on", owner, datetime.now(UTC), rt.audit)
    finally:
        rt.close()
    output({"backup_templates": state == "on"},
           _("future backups carry face templates and fingers (encrypted to your keys)") if state == "on"
           else _("future backups carry no biometric data; after a restore people enrol again"))


def _backups() -> tuple[Runtime, Backups]:
    from limen.link.backup import Backups
    from limen.runtime import open_runtime

    settings = STATE.settings
    rt = open_runtime(settings)
    return rt, Backups(rt.conn, settings.device_id, settings.keys_dir, settings.data_dir / "backups",
                       audit=rt.audit)


@link_app.command("claim-code")
def claim_code(actor: Actor, actor_pin: ActorPin = None) -> None:
    """A one-time code for the owner to claim this lock in limen-cloud (the cloud learns only its hash)."""
    from limen.audit.event import Event, EventKind
    from limen.link.forward import EventForwarder
    from limen.runtime import open_runtime

    rt = open_runtime(STATE.settings)
    try:
        owner = _owner(rt, actor, actor_pin)
        code = EventForwarder(rt.audit, rt.conn, STATE.settings.device_id).new_claim_code()
        rt.audit.append(Event(EventKind.CONFIG_CHANGE, datetime.now(UTC), actor=owner, subject="lock",
                              reason="cloud claim code issued", source="cli"))
    finally:
        rt.close()
    output({"lock_id": STATE.settings.device_id, "claim_code": code},
           _("lock {lock}: claim code {code} (type it in limen-cloud once the link is up)").format(
               lock=STATE.settings.device_id, code=code))


@link_app.command("csr")
def csr(out: Annotated[Path | None, typer.Option(help="Write the CSR here (stdout when absent).")] = None) -> None:
    """Make the lock's TLS key and print its certificate request.

    The key is made inside the PKCS#11 token when the vault uses one (keystore = "pkcs11"; the data
    directory then keeps only a reference to it), else it is a 0600 file in the data directory.
    """
    from limen.link import pki

    *_files, key_file = _paths()
    request = pki.new_link_csr(key_file, STATE.settings.device_id, pki.token_for(STATE.settings))
    if out is None:
        typer.echo(request.decode("ascii"), nl=False)
    else:
        out.write_bytes(request)
        output({"csr": str(out)},
               _("wrote {path}; give it to the fleet CA, then `limen link install-cert`").format(path=out))


@link_app.command("install-cert")
def install_cert(cert: Annotated[Path, typer.Argument(help="The lock's certificate from the fleet CA (PEM).")],
                 ca: Annotated[Path, typer.Option("--ca", help="The fleet CA's certificate (PEM).")]) -> None:
    """Install the certificate issued for this lock's CSR and the fleet CA it trusts."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    from limen.link import pki

    ca_file, cert_file, key_file = _paths()
    try:
        issued = x509.load_pem_x509_certificate(cert.read_bytes())
        anchor = x509.load_pem_x509_certificate(ca.read_bytes())
        issued.verify_directly_issued_by(anchor)
    except (OSError, ValueError, TypeError) as exc:
        raise BadRequest(str(cert), f"not a certificate issued by {ca} ({exc})") from exc
    except InvalidSignature as exc:
        raise BadRequest(str(cert), "not signed by the given CA") from exc
    if not key_file.exists() or issued.public_key() != pki.link_public_key(key_file, pki.token_for(STATE.settings)):
        raise BadRequest(str(cert), "does not match this lock's key (run `limen link csr` on this lock)")
    ca_file.write_bytes(pki.pem(anchor))
    cert_file.write_bytes(pki.pem(issued))
    due = pki.needs_rotation(issued, datetime.now(UTC))
    output({"expires": issued.not_valid_after_utc.isoformat()},
           _("installed; expires {date}").format(date=f"{issued.not_valid_after_utc:%Y-%m-%d}")
           + (_(" (rotation due: limen link run renews it)") if due else ""))


@link_app.command("run")
def run(homeassistant: Annotated[bool, typer.Option(
        "--homeassistant", help="Also publish Home Assistant discovery on the same broker.")] = False,
        backup_hours: Annotated[float, typer.Option(
            "--backup-hours", help="Make an encrypted backup this often (0: only `limen link backup`).")] = 24.0,
        ) -> None:
    """Connect to `link_broker` (TLS 1.3, this lock's certificate): run signed commands, forward the audit trail.

    The door is polled every half second (auto-relock, jams); the trail is forwarded every 5 s.  Run it
    instead of `limen serve`'s door loop, not beside it: both would drive the same door.
    """
    from limen.link import pki
    from limen.link.backup import Backups
    from limen.link.execute import for_runtime
    from limen.link.forward import EventForwarder
    from limen.link.homeassistant import HomeAssistant
    from limen.link.mqtt import LockLink
    from limen.runtime import open_runtime
    from limen.tamper.lockdown import is_locked_down

    settings = STATE.settings
    if not settings.link_broker:
        raise BadRequest("link_broker", "set link_broker = \"host:port\" in the settings")
    host, _colon, port = settings.link_broker.rpartition(":")
    if not host or not port.isdigit():
        raise BadRequest("link_broker", "expected host:port")
    ca_file, cert_file, key_file = _paths()
    files = pki.LinkFiles(ca_file, cert_file, key_file, pki.token_for(settings))
    pki.finish_rotation(files)  # a rotation interrupted between the new certificate and its key
    context = pki.client_context(ca_file, cert_file, key_file, files.token)
    rotation = pki.Rotation(settings.device_id, files, context)  # the certificate rotates by itself when due
    rt = open_runtime(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ha: HomeAssistant | None = None
    try:
        link = LockLink(settings.device_id, context, host, int(port), for_runtime(rt), rotation=rotation).connect()
        forwarder = EventForwarder(rt.audit, rt.connection(), settings.device_id)  # its own connection: no lock
        backups = Backups(rt.connection(), settings.device_id, settings.keys_dir, settings.data_dir / "backups",
                          audit=rt.audit)
        backup_topic = f"limen/{settings.device_id}/backup"  # ciphertext only (limen.link.backup)
        retry_at = 0.0
        if homeassistant:
            flags = rt.connection()  # the sensor follows the lockdown flag whoever changed it
            ha = HomeAssistant(settings.device_id, context, host, int(port), rt.controller, rt.audit,
                               guard=link.guard, may_lock=settings.link_cloud_may_lock,
                               lockdown_flag=lambda: is_locked_down(flags))
            rt.audit.add_observer(ha.observe)
            ha.connect()
        typer.echo(_("link up: {host}:{port} as {device} (pid {pid})").format(
            host=host, port=port, device=settings.device_id, pid=os.getpid()))
        try:
            for beat in itertools.count():
                with link.guard:
                    rt.controller.tick()
                if beat % 10 == 0:
                    with contextlib.suppress(LinkError):  # offline: the cursor waits, the records stay local
                        link.mqtt.maintain()  # also reconnects with a freshly rotated certificate
                        link.rotate_if_due(datetime.now(UTC))
                        link.forward(forwarder)
                        backups.upload_pending(lambda blob: link.mqtt.publish(backup_topic, blob), datetime.now(UTC))
                    if ha is not None:
                        with contextlib.suppress(LinkError):  # Home Assistant's broker away: try again next beat
                            ha.maintain()  # reconnects after a drop and announces discovery and state again
                if beat % 120 == 0 and time.monotonic() >= retry_at and backups.due(datetime.now(UTC), backup_hours):
                    with link.guard:  # not while a command (a restore) changes the state
                        if not _scheduled_backup(rt, backups):
                            retry_at = time.monotonic() + backup_hours * 3600  # audited once per period
                if stop.wait(0.5):
                    break
        except KeyboardInterrupt:
            pass
        finally:
            if ha is not None:
                ha.close()
            link.close()
    finally:
        rt.close()


def _scheduled_backup(rt: Runtime, backups: Backups) -> bool:
    """One scheduled backup, audited; False (audited) when it failed: never fatal to the link."""
    from limen.audit.event import Event, EventKind
    from limen.errors import LimenError

    now = datetime.now(UTC)
    try:
        path, blob = backups.make(now)
    except LimenError as exc:
        rt.audit.append(Event(EventKind.PRIVACY, now, actor="system", subject="lock", outcome="failed",
                              reason="scheduled backup failed", source="link", data={"detail": str(exc)[:200]}))
        return False
    rt.audit.append(Event(EventKind.PRIVACY, now, actor="system", subject="lock", reason="backup made",
                          source="link", data={"file": path.name, "bytes": len(blob)}))
    return True
