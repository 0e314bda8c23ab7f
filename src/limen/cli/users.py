"""`limen users …`: the people known to the lock (the access engine adds add/modify/disable)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from limen.audit.event import Event, EventKind
from limen.cli.common import STATE, output
from limen.cli.common import gettext as _
from limen.errors import BadRequest
from limen.runtime import open_runtime

if TYPE_CHECKING:
    pass

users_app = typer.Typer(help="People known to the lock.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")


@users_app.command("list")
def list_users() -> None:
    """List users with their enrolled modalities and consent."""
    from limen import people

    rt = open_runtime(STATE.settings)
    try:
        rows = people.list_people(rt.conn)
    finally:
        rt.close()
    names = {str(r["id"]): str(r["name"]) for r in rows}
    for r in rows:  # who added them, by name ("bootstrap", "cli", … as recorded when not a user)
        r["created_by_name"] = names.get(str(r["created_by"]), str(r["created_by"]))

    def human() -> None:
        if not rows:
            typer.echo(_("no users"))
        for r in rows:
            typer.echo(f"{r['name']:<24} {r['modalities'] or '-':<12} " + _(
                "added by {who} on {when} UTC; purpose: {purpose}, {retention}").format(
                who=r["created_by_name"], when=str(r["created_at"])[:16].replace("T", " "),
                purpose=r["purpose"] or "-", retention=_retention(r["retention_days"])))

    output(rows, human)


def _retention(days: object) -> str:
    """The retention column: "retention 30 d", or that nothing limits it (a PIN-only owner has none)."""
    return _("retention {days} d").format(days=days) if days else _("no retention limit")


@users_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="Name or id of the user to remove.")],
    actor: Annotated[str, typer.Option("--as", help="Owner/administrator removing the user.")] = "cli",
    actor_pin: Annotated[str | None, typer.Option("--as-pin", envvar="LIMEN_ACTOR_PIN", hidden=True)] = None,
) -> None:
    """Remove a user and erase every biometric reference of theirs."""
    from limen import people

    rt = open_runtime(STATE.settings)
    try:
        at = datetime.now(UTC)
        person = people.find(rt.conn, name)
        if rt.has_owner():
            who = rt.authorise(actor, actor_pin or _ask_pin(actor), at)
            rt.access().remove_user(person.id, who, at)  # permission, last-owner and self checks; audited
        else:
            people.delete(rt.conn, person)
            rt.audit.append(Event(EventKind.USER_CHANGE, at, actor=actor, subject=person.id, reason="user removed",
                                  source="cli"))
        removed = rt.erase_templates(person.id, actor, at)  # after a zeroize: nothing left, still one outcome
        on_sensor = rt.erase_sensor_pages(person.id, actor, at)  # match on sensor: the module's own pages
    finally:
        rt.close()
    output({"removed": person.id, "name": person.name, "templates_erased": removed,
            "sensor_pages_erased": on_sensor.erased, "sensor_pages_failed": on_sensor.failed},
           _("removed {name} ({id}); {n} template(s) erased").format(name=person.name, id=person.id, n=removed))
    if on_sensor.failed or on_sensor.detail:
        typer.echo(f"the fingerprint sensor did not delete page(s) {on_sensor.failed}: {on_sensor.detail}",
                   err=True)  # not yet in the zh_CN catalogue
        raise typer.Exit(1)


def _ask_pin(actor: str) -> str | None:
    """The actor's PIN, prompted without echo on a terminal; a script pipes it on stdin (one line) or sets
    `LIMEN_ACTOR_PIN`, as for `users add`, `access set` and `link`.  None without `--as` (the runtime says so)."""
    if actor == "cli":
        return None
    if not sys.stdin.isatty():  # one line from stdin, no getpass (it warns and may echo)
        line = sys.stdin.readline().strip()
        if not line:
            raise BadRequest("as", "the PIN of the --as user is needed and stdin gave none: pipe it on stdin, set "
                             "LIMEN_ACTOR_PIN or give --as-pin, or run on a terminal to be asked for it")
        return line
    return str(typer.prompt(_("PIN of {name}").format(name=actor), hide_input=True, err=True))
