"""`limen-cloud serve`: the fleet service on its defaults (SQLite file, 127.0.0.1:8090), one command.

`--db` takes any SQLAlchemy URL (PostgreSQL in production:
postgresql+psycopg://user@host/db); migrations run at start.  With `--broker
host:port --ca --cert --key` it joins the fleet's MQTT broker (TLS 1.3, its own
certificate from the fleet CA) to take evidence and relay signed commands.
`limen-cloud ca …` keeps a fleet CA in a directory: init, sign a lock's CSR, revoke, CRL.
With `--ca-dir` the service signs the rotation CSRs locks send over the link; `ca revoke --push FILE
--broker-pid PIDFILE` writes the new CRL where the broker reads it and makes it reload (SIGHUP).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from limen import thresholds as T
from limen.errors import BadRequest
from limen.link import pki

log = logging.getLogger(__name__)
app = typer.Typer(name="limen-cloud", help="The Limen fleet service.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
ca_app = typer.Typer(help="The fleet CA: init, sign a lock's CSR, revoke, CRL.", no_args_is_help=True)
app.add_typer(ca_app, name="ca")


@app.command()
def serve(
    db: Annotated[str, typer.Option(help="SQLAlchemy URL (env LIMEN_CLOUD_DB).", envvar="LIMEN_CLOUD_DB")]
    = "sqlite:///limen-cloud.db",
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8090,
    broker: Annotated[str | None, typer.Option(help="host:port of the fleet MQTT broker.")] = None,
    ca: Annotated[Path | None, typer.Option(help="The fleet CA certificate (PEM).")] = None,
    cert: Annotated[Path | None, typer.Option(help="The cloud's client certificate (PEM).")] = None,
    key: Annotated[Path | None, typer.Option(help="Its key (PEM).")] = None,
    receipt_key: Annotated[Path, typer.Option(help="Ed25519 key signing the cloud's part of erasure receipts "
                                              "(made 0600 on first start).")] = Path("limen-cloud-receipt.key"),
    ca_dir: Annotated[Path | None, typer.Option(help="The fleet CA directory (`ca init`): sign the rotation CSRs "
                                                "locks send over the link.")] = None,
    open_signup: Annotated[bool, typer.Option("--open-signup", help="Anyone reaching the cloud may create an "
                                              "owner account (default: only with an invite).")] = False,
    webhook_allow: Annotated[list[str] | None, typer.Option(
        "--webhook-allow", help="A non-public network (CIDR) owners' community webhooks may reach; repeatable "
        "(default: public addresses only).")] = None,
    vapid_key: Annotated[Path, typer.Option(help="P-256 key signing web push requests (VAPID; made 0600 on first "
                                            "start; replacing it drops every browser's subscription).")]
    = Path("limen-cloud-vapid.key"),
    vapid_contact: Annotated[str, typer.Option(help="The operator's mailto: or https: address sent to push "
                                               "services in every VAPID token.")] = "",
    crl_push: Annotated[Path | None, typer.Option(help="The broker's crlfile: with --ca-dir, re-issue the CRL there "
                                                  "before its nextUpdate (and after a revocation) by itself.")]
    = None,
    broker_pid: Annotated[Path | None, typer.Option(help="The broker's pid file: SIGHUP it after each renewal.")]
    = None,
    broker_connections: Annotated[int, typer.Option(min=1, max=32, help="MQTT connections to the broker; more than "
                                                    "one share the locks' events (MQTT 5 shared subscription; "
                                                    "docs/cloud.md for the broker-restart caveat).")]
    = T.CLOUD_BRIDGE_CONNECTIONS,
) -> None:
    """Migrate the database and serve the API (OpenAPI at /docs)."""
    import uvicorn

    from limen_cloud.api import create_app, setup_token
    from limen_cloud.bridge import CloudBridge
    from limen_cloud.db import make_engine, upgrade
    from limen_cloud.notify import AlarmNotifier, load_or_create_vapid, vapid_public_key

    if crl_push is not None and ca_dir is None:  # (options checked before any thread starts)
        raise typer.BadParameter("--crl-push needs --ca-dir (the CA that signs the CRL)")
    if vapid_contact and not vapid_contact.startswith(("mailto:", "https://")):
        raise typer.BadParameter("--vapid-contact is a mailto: or https:// address")
    if broker is not None and (ca is None or cert is None or key is None):
        raise typer.BadParameter("--broker needs --ca, --cert and --key")
    engine = make_engine(db)
    upgrade(engine)
    sys.setswitchinterval(T.CLOUD_SWITCH_INTERVAL_S)  # the MQTT thread's turn comes sooner (docs/cloud.md)
    signer = load_receipt_key(receipt_key)
    try:
        vapid = load_or_create_vapid(vapid_key)
        notifier = AlarmNotifier(engine, webhook_allow or (), vapid=vapid, vapid_contact=vapid_contact).start()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    renewer = CrlRenewer(ca_dir, crl_push, broker_pid).start() if crl_push is not None and ca_dir else None
    bridge = None
    if broker is not None and ca is not None and cert is not None and key is not None:
        b_host, _, b_port = broker.rpartition(":")
        bridge = CloudBridge(engine, pki.client_context(ca, cert, key), b_host, int(b_port),
                             on_alarms=notifier.wake, receipt_key=signer,
                             ca=_load(ca_dir) if ca_dir is not None else None,
                             ledger=CaDirectory(ca_dir, crl_push, broker_pid) if ca_dir is not None else None,
                             connections=broker_connections).connect()
    try:
        typer.echo(f"limen-cloud on http://{host}:{port}/ (API: /docs), database {engine.url.render_as_string()}",
                   err=True)
        token = None if open_signup else setup_token(engine)
        if token is not None:
            typer.echo(f"no owner yet: the first owner signs up at http://{host}:{port}/signup with this one-time "
                       f"setup token as the invite (valid {T.CLOUD_INVITE_HOURS} h): {token}", err=True)
        uvicorn.run(create_app(engine, bridge.relay if bridge else None, signer.public_key(), open_signup=open_signup,
                               webhook_allow=webhook_allow or (), push_key=vapid_public_key(vapid),
                               receipt_key=signer),
                    host=host, port=port, log_level="info",
                    proxy_headers=False)  # the client address is the peer's: a forwarded header would let a
        # client choose its own rate-limit bucket (a TLS terminator in front should set the address another way)
    finally:
        if bridge is not None:
            bridge.close()
        if renewer is not None:
            renewer.stop()
        notifier.stop()


@app.command("broker-config")
def broker_config(
    ca_dir: Annotated[Path, typer.Option(help="The fleet CA directory (`limen-cloud ca init`).")],
    out: Annotated[Path, typer.Option(help="Where the broker's files and the cloud's certificate go.")],
    host: Annotated[str, typer.Option(help="The name or address locks connect to (the server certificate's "
                                      "SAN).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8883,
    bind: Annotated[str | None, typer.Option(help="Address the listener binds (default: every interface).")]
    = None,
) -> None:
    """Issue the broker's server certificate and the cloud's client certificate; write mosquitto.conf."""
    from limen_cloud.broker import issue_cloud_client, write_config

    if not (ca_dir / "ca.key").exists():
        raise typer.BadParameter(f"{ca_dir} holds no fleet CA (limen-cloud ca init {ca_dir})")
    if (out / "mosquitto.conf").exists():
        raise typer.BadParameter(f"{out} already holds a broker configuration (choose an empty directory)")
    ca, now = _load(ca_dir), datetime.now(UTC)
    files = write_config(out, ca, host, port, now, bind=bind)
    cert, key = issue_cloud_client(out, ca, now)
    with _ca_held(ca_dir):  # in the ledger: no lock's rotation can have it revoked
        _enter(ca_dir, x509.load_pem_x509_certificate(cert.read_bytes()))
    typer.echo(f"broker configuration in {out} (TLS 1.3, mutual X.509, server certificate for {host})")
    typer.echo(f"start the broker:  mosquitto -c {files.conf.resolve()}")
    typer.echo(f"start the cloud:   limen-cloud serve --broker {host}:{port} --ca {files.ca.resolve()} "
               f"--cert {cert.resolve()} --key {key.resolve()} --ca-dir {ca_dir.resolve()}")
    typer.echo(f"after a revocation: limen-cloud ca revoke {ca_dir} CERT --push {files.crl.resolve()} "
               "--broker-pid PIDFILE")
    typer.echo(f"the CRL is valid 7 days: add --crl-push {files.crl.resolve()} --broker-pid PIDFILE to serve (it "
               f"renews it by itself), or run at least weekly: limen-cloud ca crl {ca_dir} --push "
               f"{files.crl.resolve()} --broker-pid PIDFILE")


@app.command()
def invite(db: Annotated[str, typer.Option(help="SQLAlchemy URL (env LIMEN_CLOUD_DB).", envvar="LIMEN_CLOUD_DB")]
           = "sqlite:///limen-cloud.db") -> None:
    """Print a one-time sign-up invite (valid CLOUD_INVITE_HOURS) for one new owner account."""
    from limen_cloud.api import new_invite, utcnow
    from limen_cloud.db import make_engine, sessions, upgrade

    engine = make_engine(db)
    upgrade(engine)
    with sessions(engine)() as session, session.begin():
        token = new_invite(session, utcnow())
    engine.dispose()
    typer.echo(token)


@app.command("reset-password")
def reset_password(
    owner: Annotated[str, typer.Argument(help="The account's e-mail.")],
    clear_totp: Annotated[bool, typer.Option("--clear-totp", help="The link also removes the account's "
                                             "authenticator (TOTP): only once you have checked the owner's identity "
                                             "out of band, since whoever holds the link then has the account.")]
    = False,
    valid_minutes: Annotated[int, typer.Option(min=1, max=T.CLOUD_RESET_MINUTES_MAX, help="How long the link "
                                                "stays valid.")] = T.CLOUD_RESET_MINUTES,
    base_url: Annotated[str, typer.Option(help="The cloud's address as owners reach it.")]
    = "http://127.0.0.1:8090",
    db: Annotated[str, typer.Option(help="SQLAlchemy URL (env LIMEN_CLOUD_DB).", envvar="LIMEN_CLOUD_DB")]
    = "sqlite:///limen-cloud.db",
) -> None:
    """Print a one-time link (/reset?token=...) with which the owner sets a new password; it changes nothing itself.

    Single use, valid --valid-minutes, and a newer link replaces the older: hand it to the owner over a channel you
    trust.  Using it ends every session and API token of the account and tells its alarm destinations
    (`password_reset`).
    """
    from sqlalchemy import select

    from limen_cloud.api import new_reset, utcnow
    from limen_cloud.db import make_engine, sessions, upgrade
    from limen_cloud.models import Owner as OwnerRow

    engine = make_engine(db)
    upgrade(engine)
    try:
        with sessions(engine)() as session, session.begin():
            account = session.scalar(select(OwnerRow).where(OwnerRow.email == owner.strip().lower()))
            if account is None:
                typer.echo(f"no owner account with the e-mail {owner!r}", err=True)
                raise typer.Exit(1)
            token = new_reset(session, account, utcnow(), valid_minutes, clear_totp)
            log.warning("operator made a password-reset link for owner %d%s, valid %d min", account.id,
                        " (removes the authenticator)" if clear_totp else "", valid_minutes)
    finally:
        engine.dispose()
    typer.echo(f"{base_url.rstrip('/')}/reset?token={token}")
    typer.echo(f"one use, valid {valid_minutes} min{'; it also removes the authenticator' if clear_totp else ''}",
               err=True)


@app.command("sign-replacement")
def sign_replacement(
    key: Annotated[Path, typer.Option(help="The owner device's Ed25519 private key (PEM, PKCS#8): the key whose "
                                      "public half was paired on the lock (`limen link pair-device`).")],
    device: Annotated[str, typer.Option(help="The name the device was paired under on the lock.")],
    lock: Annotated[str, typer.Option(help="The lock's id.")],
    head_count: Annotated[int, typer.Option(min=1, help="The records the cloud holds of the lock (the history page, "
                                            "or `records` in GET /api/locks).")],
    head_hash: Annotated[str, typer.Option(help="The hash of its last record (`head_hash`).")],
    counter: Annotated[int | None, typer.Option(min=1, help="Above every one this device signed for this lock "
                                                "(default: milliseconds since 1970).")] = None,
    valid_for: Annotated[int, typer.Option(min=1, max=T.LINK_COMMAND_MAX_VALIDITY_S,
                                           help="Seconds the statement stays valid.")]
    = T.LINK_COMMAND_MAX_VALIDITY_S - T.LINK_CLOCK_SKEW_S,
) -> None:
    """Print an owner-signed statement that `lock` was replaced (new hardware under its id), for the cloud's
    "mark replaced" (history page or POST /api/locks/{id}/replaced) — run it on the owner's device."""
    from limen_cloud.statements import ReplaceStatement, sign

    loaded = serialization.load_pem_private_key(key.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise typer.BadParameter(f"{key} is not an Ed25519 private key")
    now = datetime.now(UTC)
    statement = ReplaceStatement(lock, head_count, None if head_hash == "none" else head_hash.strip().lower(),
                                 counter if counter is not None else int(now.timestamp() * 1000),
                                 now + timedelta(seconds=valid_for), device)
    typer.echo(sign(statement, loaded))


@app.command("device-key")
def device_key(
    out: Annotated[Path, typer.Argument(help="The private key file to make (PEM, 0600), e.g. phone.key; the public "
                                        "half goes beside it with the suffix .pub (phone.pub).")],
    x25519: Annotated[bool, typer.Option("--x25519", help="An X25519 key for backups (`limen link backup-key`, "
                                         "`sign-restore --backup-key`) instead of the Ed25519 signing key.")] = False,
) -> None:
    """Make the owner device's key pair — run it on the owner's device: Ed25519 (the default) signs commands and is
    paired at the lock (`limen link pair-device NAME --public-key OUT.pub`); `--x25519` makes the key backups are
    encrypted to (`limen link backup-key NAME --public-key KEY`).  Prints the public half; an existing file is
    never overwritten (a paired or registered key lost would be)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    public_path = out.with_suffix(".pub")
    if public_path == out:
        raise typer.BadParameter(f"{out}: name the private key file, e.g. phone.key (the public half is .pub)")
    for path in (out, public_path):
        if path.exists() or path.is_symlink():
            raise typer.BadParameter(f"{path} exists: choose another name (an existing key is never replaced)")
    private = X25519PrivateKey.generate() if x25519 else Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    if x25519:  # what `limen link backup-key --public-key` takes: base64 of the 32 raw bytes
        import base64

        public = base64.b64encode(private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode("ascii") + "\n"
    else:  # what `limen link pair-device --public-key` reads: a PEM file
        public = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise typer.BadParameter(f"cannot create {out} ({exc.strerror})") from exc
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public_path.write_text(public, encoding="ascii")
    typer.echo(public, nl=False)
    if x25519:
        typer.echo(f"{out} (private, 0600) and {public_path}; at the lock: limen link backup-key NAME "
                   f"--public-key \"$(cat {public_path})\" --as OWNER", err=True)
    else:
        typer.echo(f"{out} (private, 0600) and {public_path}; at the lock: limen link pair-device NAME "
                   f"--public-key {public_path} --as OWNER", err=True)


_NEEDS_PIN = frozenset({"unlock", "add_user", "add_code"})  # what require_pin_for_remote asks the owner's PIN for


@app.command("sign-command")
def sign_command(
    action: Annotated[str, typer.Argument(help="unlock, lock, add_code, revoke_code, add_user (--arg name=… "
                                          "[--arg permission=guest] [--arg reply_key=…: a PIN comes back sealed]), "
                                          "revoke_user, erase, lockdown, restore or decommission ('-' for '_' "
                                          "too).")],
    key: Annotated[Path, typer.Option(help="The owner device's Ed25519 private key (PEM, PKCS#8): the key whose "
                                      "public half was paired on the lock (`limen link pair-device`).")],
    device: Annotated[str, typer.Option(help="The name the device was paired under on the lock.")],
    lock: Annotated[str, typer.Option(help="The lock's id.")],
    arg: Annotated[list[str] | None, typer.Option(help="An argument of the command, NAME=VALUE; repeatable "
                                                  "(e.g. --arg user=Max).")] = None,
    counter: Annotated[int | None, typer.Option(min=1, help="Above every one this device signed for this lock "
                                                "(default: milliseconds since 1970).")] = None,
    valid_for: Annotated[int, typer.Option(min=1, max=T.LINK_COMMAND_MAX_VALIDITY_S,
                                           help="Seconds the command stays valid.")]
    = T.LINK_COMMAND_MAX_VALIDITY_S - T.LINK_CLOCK_SKEW_S,
    request: Annotated[bool, typer.Option("--request", help="Print the JSON body of POST "
                                          "/api/locks/{id}/commands ({\"payload\": …}) instead of the bare "
                                          "signed command.")] = False,
    restore_key: Annotated[str | None, typer.Option(help="The lock's `limen link restore-key` (base64): an unlock, "
                                                    "add_user or add_code then asks for the owner's PIN (stdin) "
                                                    "and carries it sealed to the lock, which its "
                                                    "require_pin_for_remote needs; the cloud cannot read it.")]
    = None,
) -> None:
    """Print a command signed on the owner's device, for the cloud to relay (or `limen link execute`) — run it
    on the owner's device; the lock checks the signature, its id, the counter and the expiry itself."""
    import base64
    import binascii

    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    from limen.link.commands import Action, Command, sign
    from limen.link.execute import seal_pin

    try:
        chosen = Action(action.replace("-", "_"))
    except ValueError:
        raise typer.BadParameter(f"unknown action {action!r}: one of {', '.join(a.value for a in Action)}") from None
    pairs = [item.partition("=") for item in arg or []]
    if any(not name or not sep for name, sep, _ in pairs):
        raise typer.BadParameter("--arg takes NAME=VALUE")
    loaded = serialization.load_pem_private_key(key.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise typer.BadParameter(f"{key} is not an Ed25519 private key")
    args = {name: value for name, _, value in pairs}
    if restore_key is not None:
        if chosen not in _NEEDS_PIN:
            raise typer.BadParameter("--restore-key seals the owner's PIN into an unlock, add_user or add_code only")
        try:
            target = X25519PublicKey.from_public_bytes(base64.b64decode(restore_key.strip(), validate=True))
        except (ValueError, binascii.Error):
            raise typer.BadParameter("--restore-key is not a base64 X25519 public key") from None
        pin = typer.prompt("Owner's PIN", hide_input=True, err=True).strip()
        if not pin.isdigit() or not pin.isascii():
            raise typer.BadParameter("a PIN is digits only")
        args["pin"] = seal_pin(target, pin)
    now = datetime.now(UTC)
    command = Command(lock, chosen, counter if counter is not None else int(now.timestamp() * 1000),
                      now + timedelta(seconds=valid_for), device, args, issued=now)  # the lock tells skew by it
    wire = sign(command, loaded).to_bytes().decode("utf-8")
    typer.echo(json.dumps({"payload": wire}) if request else wire)


@app.command("sign-restore")
def sign_restore(
    backup: Annotated[Path, typer.Argument(help="The encrypted backup, as GET /api/locks/{id}/backups/{bid} gave it.")],
    backup_id: Annotated[int, typer.Option(help="Its id in the cloud (`id` in GET /api/locks/{id}/backups).")],
    key: Annotated[Path, typer.Option(help="The owner device's Ed25519 private key (PEM), paired on the target lock.")],
    device: Annotated[str, typer.Option(help="The name the device was paired under on the target lock.")],
    lock: Annotated[str, typer.Option(help="The lock to restore onto (a replacement keeps the old id).")],
    backup_key: Annotated[Path, typer.Option(help="The device's X25519 private key whose public half was given to "
                                             "`limen link backup-key` (PEM, or base64 of the 32 raw bytes).")],
    restore_key: Annotated[str, typer.Option(help="The target lock's `limen link restore-key` (base64).")],
    from_lock_key: Annotated[str | None, typer.Option(help="The audit public key (base64) of the lock the backup "
                                                      "was made on, as you recorded it: needed on a replacement "
                                                      "lock, never taken from the cloud.")] = None,
    revoked: Annotated[str, typer.Option(help="What must stay revoked whatever the backup says: "
                                         "user:ID,code:ID,credential:ID,…")] = "",
    counter: Annotated[int | None, typer.Option(min=1, help="Above every one this device signed for this lock "
                                                "(default: milliseconds since 1970).")] = None,
    valid_for: Annotated[int, typer.Option(min=1, max=T.LINK_COMMAND_MAX_VALIDITY_S,
                                           help="Seconds the command stays valid.")]
    = T.LINK_COMMAND_MAX_VALIDITY_S - T.LINK_CLOCK_SKEW_S,
    pin: Annotated[bool, typer.Option("--pin", help="Ask for the owner's PIN (stdin) and carry it sealed to the "
                                      "target lock's restore key: a lock whose require_pin_for_remote is on and "
                                      "where the owner has a PIN needs it; the cloud cannot read it.")] = False,
) -> None:
    """Print the JSON body of POST /api/locks/{id}/restore — run it on the owner's device: it opens the backup's
    content key with the device's X25519 key, seals it to the target lock's restore key and signs the restore
    (the backup's SHA-256 inside), so the cloud relaying it can neither read the backup nor swap it."""
    import base64
    import binascii

    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

    from limen.link.backup import digest, unwrap_key
    from limen.link.commands import Action, Command, sign
    from limen.link.execute import seal_pin, seal_reply

    signer = serialization.load_pem_private_key(key.read_bytes(), password=None)
    if not isinstance(signer, Ed25519PrivateKey):
        raise typer.BadParameter(f"{key} is not an Ed25519 private key")
    raw = backup_key.read_bytes()
    try:
        opener = serialization.load_pem_private_key(raw, password=None) if b"-----BEGIN" in raw \
            else X25519PrivateKey.from_private_bytes(base64.b64decode(raw.strip(), validate=True))
        target = X25519PublicKey.from_public_bytes(base64.b64decode(restore_key.strip(), validate=True))
    except (ValueError, binascii.Error) as exc:
        raise typer.BadParameter(f"not an X25519 key ({exc})") from exc
    if not isinstance(opener, X25519PrivateKey):
        raise typer.BadParameter(f"{backup_key} is not an X25519 private key")
    blob = backup.read_bytes()
    try:
        header, content_key = unwrap_key(blob, opener)
    except BadRequest as exc:
        raise typer.BadParameter(str(exc)) from exc
    args = {"backup": digest(blob), "key": seal_reply(target, content_key), "from_lock": header.lock}
    args |= {"from_lock_key": from_lock_key.strip()} if from_lock_key else {}
    args |= {"revoked": revoked} if revoked else {}
    if pin:
        digits = typer.prompt("Owner's PIN", hide_input=True, err=True).strip()
        if not digits.isdigit() or not digits.isascii():
            raise typer.BadParameter("a PIN is digits only")
        args["pin"] = seal_pin(target, digits)
    now = datetime.now(UTC)
    command = Command(lock, Action.RESTORE, counter if counter is not None else int(now.timestamp() * 1000),
                      now + timedelta(seconds=valid_for), device, args, issued=now)
    typer.echo(json.dumps({"backup_id": backup_id, "payload": sign(command, signer).to_bytes().decode("utf-8")}))


@app.command("verify-erasure")
def verify_erasure_cmd(
    receipt: Annotated[Path, typer.Argument(help="One entry of GET /api/erasures (JSON), or its `receipt` text.")],
    lock_key: Annotated[str, typer.Option(help="The lock's audit public key (base64), as you recorded it.")],
    cloud_key: Annotated[str, typer.Option(help="The cloud's receipt key (base64, `public_key` of GET "
                                           "/api/receipt-key), as you recorded it.")],
) -> None:
    """Check both signatures of an erasure receipt (the lock's and the cloud's part) and print what was erased
    where; exit 1 when either does not verify."""
    from limen.audit.keys import load_public_b64
    from limen.errors import AuditError
    from limen_cloud.backups import verify_erasure

    text = receipt.read_text(encoding="utf-8")
    try:
        entry = json.loads(text)
        text = entry["receipt"] if isinstance(entry, dict) and "receipt" in entry else text
        erased = verify_erasure(text, load_public_b64(lock_key), load_public_b64(cloud_key))
    except (ValueError, AuditError, BadRequest) as exc:
        typer.echo(f"not verified: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(erased, indent=2, sort_keys=True))


def load_receipt_key(path: Path) -> Ed25519PrivateKey:
    """The cloud's receipt-signing key from `path` (PEM), made there (0600) when absent."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise typer.BadParameter(f"{path} is not an Ed25519 private key")
    return loaded


def _load(d: Path) -> pki.FleetCA:
    key = serialization.load_pem_private_key((d / "ca.key").read_bytes(), password=None)
    assert isinstance(key, pki.PrivateKey)
    cert = x509.load_pem_x509_certificate((d / "ca.pem").read_bytes())
    revoked = {int(k): datetime.fromisoformat(v) for k, v in json.loads((d / "revoked.json").read_text()).items()}
    return pki.FleetCA(key, cert, revoked)


def _save(d: Path, ca: pki.FleetCA, *, revocations: bool = True) -> None:
    """Write the revocation list (unless `revocations` is False) and a fresh CRL, each file replaced atomically.

    The CRL renewer passes False: it only re-issues the CRL, so a `ca revoke` run at the same moment is never
    overwritten by the older list the renewer loaded."""
    if revocations:
        _replace(d / "revoked.json", json.dumps({str(k): v.isoformat() for k, v in ca.revoked.items()}).encode())
    _replace(d / "crl.pem", ca.crl(datetime.now(UTC)))


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@ca_app.command("init")
def ca_init(directory: Annotated[Path, typer.Argument()], name: str = "Limen fleet CA") -> None:
    """Create the CA key (0600), certificate, empty revocation list and CRL in DIRECTORY."""
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / "ca.key").exists():
        raise typer.BadParameter(f"{directory} already holds a CA")
    ca = pki.FleetCA.create(name, datetime.now(UTC))
    pki.write_key(directory / "ca.key", ca.key)
    (directory / "ca.pem").write_bytes(pki.pem(ca.cert))
    _save(directory, ca)
    typer.echo(f"fleet CA in {directory}")


@ca_app.command("sign")
def ca_sign(directory: Annotated[Path, typer.Argument()], csr: Annotated[Path, typer.Argument()],
            out: Annotated[Path, typer.Option()],
            service: Annotated[bool, typer.Option("--service", help="The CSR is a fleet service's, not a lock's: "
                                                  "CN homeassistant (Home Assistant's client on the broker; "
                                                  "the ACL lets it read discovery and drive limen/+/ha/#).")]
            = False) -> None:
    """Issue a lock's client certificate from its CSR (or, with --service, Home Assistant's)."""
    try:
        cert = _load(directory).issue(csr.read_bytes(), datetime.now(UTC), service=service)
    except BadRequest as exc:
        raise typer.BadParameter(str(exc)) from exc
    with _ca_held(directory):  # the ledger: a lock's rotation may then revoke it (`CaDirectory`)
        _enter(directory, cert)
    out.write_bytes(pki.pem(cert))
    typer.echo(f"issued serial {cert.serial_number:x} to {cert.subject.rfc4514_string()}")


@ca_app.command("enter")
def ca_enter(directory: Annotated[Path, typer.Argument()],
             certs: Annotated[list[Path], typer.Argument(help="Certificates (PEM) this CA issued before its ledger.")]
             ) -> None:
    """Enter certificates this CA signed before it kept a ledger (issued.json), so that a lock's rotation has the
    certificate it replaced revoked by the cloud; one not signed by this CA is refused, nothing entered."""
    ca = _load(directory)
    loaded = []
    for path in certs:
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
            cert.verify_directly_issued_by(ca.cert)
        except (OSError, ValueError, TypeError, InvalidSignature) as exc:
            raise typer.BadParameter(f"{path}: not a certificate this CA issued ({type(exc).__name__})") from exc
        loaded.append(cert)
    with _ca_held(directory):
        for cert in loaded:
            _enter(directory, cert)
    typer.echo(f"{len(loaded)} certificate(s) entered in {directory / 'issued.json'}")


@ca_app.command("revoke")
def ca_revoke(directory: Annotated[Path, typer.Argument()], cert: Annotated[Path, typer.Argument()],
              push: Annotated[Path | None, typer.Option(help="Also write the CRL here (the broker's crlfile).")]
              = None,
              broker_pid: Annotated[Path | None, typer.Option(help="The broker's pid file: SIGHUP it to reload "
                                                              "the CRL.")] = None) -> None:
    """Revoke a certificate, rewrite crl.pem, and push it to the broker (new connections with it are refused)."""
    with _ca_held(directory):
        ca = _load(directory)
        ca.revoke(x509.load_pem_x509_certificate(cert.read_bytes()), datetime.now(UTC))
        _save(directory, ca)
    typer.echo(f"revoked; {directory / 'crl.pem'} lists {len(ca.revoked)} certificate(s)")
    if push is not None:
        push_crl((directory / "crl.pem").read_bytes(), push, broker_pid)
        typer.echo(f"pushed to {push}" + (" and the broker reloaded it" if broker_pid else ""))


@ca_app.command("crl")
def ca_crl(directory: Annotated[Path, typer.Argument()],
           push: Annotated[Path | None, typer.Option(help="Also write the CRL here (the broker's crlfile).")] = None,
           broker_pid: Annotated[Path | None, typer.Option(help="The broker's pid file: SIGHUP it to reload "
                                                           "the CRL.")] = None) -> None:
    """Re-issue the CRL (it is valid 7 days: run this at least weekly, e.g. from a daily timer) and push it."""
    ca = _load(directory)
    _save(directory, ca)
    typer.echo(f"{directory / 'crl.pem'} re-issued; lists {len(ca.revoked)} certificate(s)")
    if push is not None:
        push_crl((directory / "crl.pem").read_bytes(), push, broker_pid)
        typer.echo(f"pushed to {push}" + (" and the broker reloaded it" if broker_pid else ""))


def push_crl(crl: bytes, target: Path, broker_pid: Path | None = None) -> None:
    """Replace the broker's CRL file atomically; with the broker's pid file, make it reload (SIGHUP).

    Mosquitto re-reads `crlfile` on SIGHUP: new TLS handshakes with a revoked certificate are refused from
    then on; a connection already open stays until it reconnects (a lock does at least every
    `LINK_MAX_CONNECTION_S`).
    """
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(crl)
    os.replace(tmp, target)
    if broker_pid is not None:
        try:
            os.kill(int(broker_pid.read_text().strip()), signal.SIGHUP)
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(f"cannot signal the broker from {broker_pid} ({exc})") from exc


@contextmanager
def _ca_held(d: Path) -> Iterator[None]:
    """Hold the CA directory's revocation list (flock) while it is read, changed and written."""
    with (d / "revoked.lock").open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@dataclass(frozen=True)
class CaDirectory:
    """`serve --ca-dir` as the bridge's `CertificateLedger`: the certificates the CA issued to locks (issued.json,
    serial → lock id; `ca sign` enters them too) and revocation of one a rotation superseded — added to the list,
    the CRL re-issued and, with `--crl-push`, pushed to the broker, which reloads it (`--broker-pid`); without it
    the broker learns of it from the next `ca crl --push`."""

    ca_dir: Path
    crl_push: Path | None = None
    broker_pid: Path | None = None

    def record(self, cert: x509.Certificate) -> None:
        with _ca_held(self.ca_dir):
            _enter(self.ca_dir, cert)

    def holder(self, serial: int) -> str | None:
        return _ledger(self.ca_dir).get(f"{serial:x}")

    def revoke(self, serial: int, at: datetime) -> None:
        with _ca_held(self.ca_dir):  # (the renewer pushes under it too: one writer of the broker's file at a time)
            ca = _load(self.ca_dir)
            ca.revoked.setdefault(serial, at)
            _save(self.ca_dir, ca)
            if self.crl_push is not None:
                push_crl((self.ca_dir / "crl.pem").read_bytes(), self.crl_push, self.broker_pid)
                return
        log.warning("certificate %x revoked in %s; no --crl-push: the broker still accepts it until the CRL is "
                    "pushed (limen-cloud ca crl --push)", serial, self.ca_dir)


def _ledger(d: Path) -> dict[str, str]:
    """issued.json: serial (hex) → the lock a certificate was issued to ({} before the first)."""
    try:
        return dict(json.loads((d / "issued.json").read_text()))
    except FileNotFoundError:
        return {}


def _enter(d: Path, cert: x509.Certificate) -> None:
    """Enter `cert` in the CA directory's ledger (call under `_ca_held`)."""
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    ledger = _ledger(d) | {f"{cert.serial_number:x}": str(names[0].value) if names else ""}
    _replace(d / "issued.json", json.dumps(ledger, sort_keys=True).encode())


def crl_renewal_due(ca: pki.FleetCA, target: Path, now: datetime) -> str | None:
    """Why the CRL the broker reads at `target` must be re-issued now, or None while it is good.

    Due when it is missing or unreadable, not signed by this CA, within `CLOUD_CRL_RENEW_BEFORE_S` of its
    nextUpdate (Mosquitto refuses every handshake once it passed: all locks would be locked out), or when the
    CA's list names a serial the CRL lacks (a `ca revoke` made without --push)."""
    try:
        crl = x509.load_pem_x509_crl(target.read_bytes())
    except (OSError, ValueError):
        return "missing or unreadable"
    issuer = ca.cert.public_key()
    if not isinstance(issuer, ec.EllipticCurvePublicKey) or not crl.is_signature_valid(issuer):
        return "not signed by this CA"
    if crl.next_update_utc is None or (crl.next_update_utc - now).total_seconds() < T.CLOUD_CRL_RENEW_BEFORE_S:
        return "its nextUpdate is near"
    if set(ca.revoked) - {revoked.serial_number for revoked in crl}:
        return "a revocation is missing from it"
    return None


def renew_crl(ca_dir: Path, target: Path, broker_pid: Path | None, now: datetime) -> str | None:
    """Re-issue the CA's CRL and push it to `target` (SIGHUP the broker) when `crl_renewal_due`; the reason or
    None.  The CA directory is read each time, so a `ca revoke` run meanwhile is included."""
    with _ca_held(ca_dir):  # a revocation made meanwhile (the bridge's, `ca revoke`) is not pushed over
        ca = _load(ca_dir)
        reason = crl_renewal_due(ca, target, now)
        if reason is not None:
            _save(ca_dir, ca, revocations=False)
            push_crl((ca_dir / "crl.pem").read_bytes(), target, broker_pid)
    return reason


class CrlRenewer:
    """`serve --crl-push`: checks the broker's CRL at start and every `CLOUD_CRL_CHECK_S`; never dies (a
    failure is logged and tried again at the next check)."""

    def __init__(self, ca_dir: Path, target: Path, broker_pid: Path | None,
                 period_s: float = T.CLOUD_CRL_CHECK_S) -> None:
        self.ca_dir, self.target, self.broker_pid, self.period_s = ca_dir, target, broker_pid, period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="limen-cloud-crl", daemon=True)

    def start(self) -> CrlRenewer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def check(self) -> str | None:
        reason = renew_crl(self.ca_dir, self.target, self.broker_pid, datetime.now(UTC))
        if reason is not None:
            log.info("CRL re-issued and pushed to %s (%s)", self.target, reason)
        return reason

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception:  # a CA file being rewritten, the broker away: try again at the next check
                log.exception("CRL renewal failed; retried in %.0f s", self.period_s)
            self._stop.wait(self.period_s)


def main() -> None:
    app()
