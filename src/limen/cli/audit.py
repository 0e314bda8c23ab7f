"""`limen audit tail | verify | export | checkpoint`: read and check the tamper-evident trail."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from limen.cli.common import STATE, output
from limen.cli.common import gettext as _

if TYPE_CHECKING:
    from limen.config import Settings

audit_app = typer.Typer(help="The tamper-evident audit trail: tail, verify, export.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


def _line(rec: dict[str, Any], names: dict[str, str] | None = None) -> str:
    """One record for people: actor and subject by name when they are a known person's id."""
    names = names or {}
    fields = [f"{rec['index']:>6}", rec["at"][:19], f"{rec['kind']:<16}"]
    for name in ("actor", "subject", "outcome", "reason", "source"):
        if rec.get(name):
            value = str(rec[name])
            fields.append(f"{name}={names[value]} ({value[:8]})" if value in names else f"{name}={value}")
    return "  ".join(fields)


def _names() -> dict[str, str]:
    """People's names by id, from the access store (records hold ids only: they are forwarded to the cloud)."""
    import sqlite3

    from limen import people
    from limen.db import connect

    path = STATE.settings.db_path
    if not path.exists():
        return {}
    conn = connect(path)
    try:
        return people.names(conn)
    except sqlite3.DatabaseError:  # no users table yet (a lock never set up): ids as they are
        return {}
    finally:
        conn.close()


@audit_app.command("tail")
def tail(n: Annotated[int, typer.Option("-n", "--lines", help="How many records.", min=0)] = 20) -> None:
    """Show the last N records, oldest first."""
    from limen.audit import open_audit

    log = open_audit(STATE.settings)
    try:
        records = log.tail(n)
    finally:
        log.close()
    def human() -> None:
        names = _names() if records else {}
        for rec in records:
            typer.echo(_line(rec, names))
        if not records:
            typer.echo(_("(no records)"))

    output(records, human)


@audit_app.command("verify")
def verify(
    file: Annotated[Path | None, typer.Option("--file", help="Verify an export offline instead.")] = None,
    key: Annotated[Path | None, typer.Option("--key", help="Pinned public key (audit_ed25519.pub).")] = None,
) -> None:
    """Verify every link, hash and signed checkpoint; fail naming the first broken record.

    An export without `--key` is checked for self-consistency only (and says so): anyone can sign a consistent
    export under the same device id with a key of their own; `--key` pins the lock's."""
    from limen.audit import open_audit, verify_export

    pinned = key.read_text(encoding="ascii") if key else None
    if file is not None:
        summary = verify_export(file, pinned)
        data = {"ok": True, "file": str(file), "device_id": summary.device_id, "records": summary.records,
                "checkpoints": summary.checkpoints, "last_hash": summary.last_hash, "keys": summary.key_ids,
                "key_pinned": pinned is not None}
        text = _("ok: {records} records, {checkpoints} signed checkpoints (device {device}, key {keys})") \
            if pinned is not None else \
            _("self-consistent only: {records} records, {checkpoints} signed checkpoints (device {device}, key "
              "{keys}); the signing key was NOT pinned, so an export signed on another machine under the same "
              "device id passes too: pin the lock's key with --key audit_ed25519.pub")
        output(data, text.format(records=summary.records, checkpoints=summary.checkpoints, device=summary.device_id,
                                 keys=", ".join(summary.key_ids) or "-"))
        return
    log = open_audit(STATE.settings)
    try:
        if pinned is not None:
            from limen.audit.keys import key_id, load_public_b64

            if key_id(load_public_b64(pinned)) != log.key.key_id:
                from limen.errors import AuditError

                raise AuditError("the device's audit key is not the pinned key")
        store = _with_vault_copy(log)
        try:
            chain = log.verify()
        finally:
            if store is not None:
                store.close()
    finally:
        log.close()
    data = {"ok": True, "records": chain.records, "checkpoints": chain.checkpoints, "last_hash": chain.last_hash,
            "unsigned_tail": chain.unsigned_tail, "keys": chain.key_ids}
    output(data, _("ok: {records} records, {checkpoints} signed checkpoints, {tail} after the last one "
                   "(key {keys})").format(records=chain.records, checkpoints=chain.checkpoints,
                                          tail=chain.unsigned_tail, keys=", ".join(chain.key_ids) or "-"))


def _with_vault_copy(log: Any) -> Any:
    """Check the log against the vault's sealed copy of its head too; return the open store (or None)."""
    from limen.audit import attach_witness
    from limen.errors import VaultError
    from limen.vault import open_template_store
    from limen.vault.witness import SealedHeadWitness

    try:
        store = open_template_store(STATE.settings)
    except VaultError as exc:
        typer.echo(f"note: the vault's copy of the head was not checked ({exc})", err=True)
        return None
    try:
        attach_witness(log, SealedHeadWitness(store.vault))
    except BaseException:
        store.close()
        raise
    return store


@audit_app.command("export")
def export(out: Annotated[Path, typer.Argument(help="Output file (JSON lines).")]) -> None:
    """Export the whole trail with the public key; check it anywhere with `limen audit verify --file`."""
    from limen.audit import open_audit

    log = open_audit(STATE.settings)
    try:
        count = log.export(out)
    finally:
        log.close()
    output({"file": str(out), "records": count}, _("exported {n} records to {file}").format(n=count, file=out))


@audit_app.command("checkpoint")
def checkpoint() -> None:
    """Sign the current head of the chain now."""
    from limen.audit import open_audit

    log = open_audit(STATE.settings)
    try:
        index = log.checkpoint()
    finally:
        log.close()
    output({"index": index}, _("signed up to record {index}").format(index=index) if index is not None
           else _("(empty chain)"))


@audit_app.command("recover")
def recover(force: Annotated[bool, typer.Option("--force", help="Even if the store verifies.")] = False) -> None:
    """Keep a corrupt or broken audit.db aside as evidence and start a new chain that records it."""
    from limen.audit import quarantine_store
    from limen.db import open_db
    from limen.errors import VaultError
    from limen.tamper.response import carried_over
    from limen.vault import open_template_store
    from limen.vault.witness import SealedHeadWitness

    carried: dict[str, Any] = {}
    if STATE.settings.db_path.exists():  # the tamper responses the old chain held: named in the new one's first
        accounted = _incidents_accounted(STATE.settings)
        conn = open_db(STATE.settings.db_path)
        try:
            carried = carried_over(conn, accounted)
        finally:
            conn.close()
    try:
        store = open_template_store(STATE.settings)
    except VaultError as exc:  # the evidence store must be recoverable even when the vault is not
        typer.echo(f"note: the vault's copy of the head was not reset ({exc})", err=True)
        kept = quarantine_store(STATE.settings, force, carried=carried)
    else:
        try:
            kept = quarantine_store(STATE.settings, force, witnesses=(SealedHeadWitness(store.vault),),
                                    carried=carried)
        finally:
            store.close()
    output({"preserved": str(kept)}, f"preserved the old store as {kept}; a new chain records the replacement")


def _incidents_accounted(settings: Settings) -> frozenset[str]:
    """The tamper incidents the audit store being replaced accounts for: its TAMPER records, and those whose loss
    it already chained (`audit.record_lost`); none when there is no store or it cannot be read."""
    import sqlite3

    from limen.audit import EventKind, audit_db_path, open_audit, reported_lost
    from limen.errors import LimenError

    if not audit_db_path(settings).exists():
        return frozenset()
    try:
        old = open_audit(settings)  # left open: `quarantine_store` closes it before moving the file aside
        held = {str(r.data.get("incident")) for r in old.find(EventKind.TAMPER)}
        return frozenset(held) | reported_lost(old)
    except (LimenError, sqlite3.DatabaseError, OSError):
        return frozenset()
