"""`limen privacy …`: a person's data as JSON, and "delete me" at the lock.

Both are done in person, for the person, by an owner or administrator proven
by PIN (`--as`; prompted, or `LIMEN_ACTOR_PIN`): the lock checks only owners' and
administrators' PINs outside a door attempt.  Each is recorded
in the audit trail (a PRIVACY record; the export's content is not).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from limen.cli.common import STATE, output
from limen.cli.common import gettext as _

if TYPE_CHECKING:
    from limen.runtime import Runtime

privacy_app = typer.Typer(help="Privacy: a person's data as JSON, and erasure of a person (\"delete me\").",
                          no_args_is_help=True)

Actor = Annotated[str, typer.Option("--as", help="An owner or administrator (name, id or index).")]
ActorPin = Annotated[str | None, typer.Option("--as-pin", envvar="LIMEN_ACTOR_PIN", hidden=True,
                                              help="Their PIN (prompted when absent).")]


def register(app: typer.Typer) -> None:
    app.add_typer(privacy_app, name="privacy")


def _allowed(rt: Runtime, actor: str, pin: str | None, person: str, at: datetime) -> tuple[str, str]:
    """(actor id, person id) once the actor proved they are an owner or administrator (any actor on a lock
    without an owner yet, as everywhere in the CLI)."""
    target = rt.access().user(person).user_id
    if rt.has_owner() and pin is None:
        pin = str(typer.prompt(f"PIN of {actor}", hide_input=True, err=True))
    return rt.authorise(actor, pin, at), target


@privacy_app.command("export")
def export(person: Annotated[str, typer.Argument(help="Name (or id) of the person.")], actor: Actor,
           out: Annotated[Path | None, typer.Option(help="Write the JSON here (stdout when absent).")] = None,
           actor_pin: ActorPin = None) -> None:
    """Everything the lock holds about PERSON, as JSON (never a secret: no PIN hash, code or template)."""
    from limen.audit.event import Event, EventKind
    from limen.fsio import atomic_write
    from limen.link.backup import Backups
    from limen.privacy.export import export_person
    from limen.runtime import open_runtime

    settings = STATE.settings
    rt = open_runtime(settings)
    try:
        at = datetime.now(UTC)
        who, target = _allowed(rt, actor, actor_pin, person, at)
        backups = Backups(rt.conn, settings.device_id, settings.keys_dir, settings.data_dir / "backups")
        data = export_person(rt.conn, target, rt.audit.records(), at, backups.local_files())
        rt.audit.append(Event(EventKind.PRIVACY, at, actor=who, subject=target, reason="personal data exported",
                              source="cli", data={"audit_records": len(data["audit_records"])}))
    finally:
        rt.close()
    text = json.dumps(data, indent=2, sort_keys=True, default=str)
    if out is None:
        typer.echo(text)
    else:
        atomic_write(out, (text + "\n").encode("utf-8"))  # 0600: a person's data, for them alone
        output({"file": str(out)}, _("wrote {file}").format(file=out))


@privacy_app.command("erase")
def erase(person: Annotated[str, typer.Argument(help="Name (or id) of the person.")], actor: Actor,
          yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
          actor_pin: ActorPin = None) -> None:
    """"Delete me": erase PERSON's templates, credentials, schedules, consents and every local backup.

    The cloud's copies are erased when the owner sends the signed `erase` command with scope=person
    through the link (the receipt then has the cloud's signed part too).
    """
    from limen.link.execute import lock_eraser
    from limen.runtime import open_runtime

    rt = open_runtime(STATE.settings)
    try:
        at = datetime.now(UTC)
        who, target = _allowed(rt, actor, actor_pin, person, at)
        if not yes and not typer.confirm(_("Erase {person} from this lock, with every local backup?").format(
                person=person), err=True):
            raise typer.Abort()
        eraser = lock_eraser(rt)
        erased = eraser.erase_person(target, who, at)
        fresh = eraser.backups.make(at)[0].name if eraser.backups.recipients() else None  # without the person
    finally:
        rt.close()
    output({"user": target, "erased": {"lock": erased}, "fresh_backup": fresh},
           _("erased {person}: {counts}").format(person=person, counts=", ".join(
               f"{k} {v}" for k, v in sorted(erased.items())))
           + ("; " + _("new backup {file} (upload with limen link run)").format(file=fresh) if fresh else ""))
