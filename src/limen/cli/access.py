"""`limen users add/modify/disable/enable`, `limen credentials|schedules|codes …`, `limen access …`, `limen unlock`.

Every change names its actor with `--as USER` and proves it with that user's
PIN (prompted, or `LIMEN_ACTOR_PIN`); the actor must be an owner or an
administrator.  The very first `limen users add` creates the owner, who types
their own PIN: there is no default PIN.  PINs are prompted, never echoed; a
wrong actor PIN counts toward the keypad lockout.  Scripts may pass PINs in
the environment (`LIMEN_ACTOR_PIN`, `LIMEN_NEW_PIN`), never as arguments.  Everything goes through
`limen.runtime.open_runtime`: changes are audited in its log, and `limen unlock` uses its
controller and configured door.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from limen.access import offline
from limen.access.model import (
    AccessUser,
    Credential,
    CredentialRule,
    CredentialType,
    OperatingMode,
    PermissionLevel,
    UserStatus,
    UserType,
)
from limen.access.schedules import parse_days, parse_time_of_day, zone
from limen.access.store import AccessStore
from limen.cli.common import STATE, output
from limen.cli.common import gettext as _
from limen.errors import BadRequest

credentials_app = typer.Typer(help="PINs, RFID tags, face/fingerprint links of users.", no_args_is_help=True)
schedules_app = typer.Typer(help="Week-day, year-day and holiday schedules.", no_args_is_help=True)
codes_app = typer.Typer(help="Offline codes for guests (derived from the owner's secret).", no_args_is_help=True)
access_app = typer.Typer(help="Lock-wide access settings: operating mode, lockdown, lockout, status.",
                         no_args_is_help=True)

Actor = Annotated[str, typer.Option("--as", help="Owner or administrator making the change (name, id or index).")]
ActorPin = Annotated[str | None, typer.Option("--as-pin", envvar="LIMEN_ACTOR_PIN", hidden=True,
                                              help="The actor's PIN (prompted when absent).")]


def register(app: typer.Typer) -> None:
    try:
        from limen.cli.users import users_app
    except ImportError:  # the lead's users group is not there: carry our own
        users_app = typer.Typer(help="People known to the lock.", no_args_is_help=True)
        app.add_typer(users_app, name="users")
    users_app.command("add")(add_user)
    users_app.command("modify")(modify_user)
    users_app.command("disable")(disable_user)
    users_app.command("enable")(enable_user)
    users_app.command("show")(show_user)
    app.add_typer(credentials_app, name="credentials")
    app.add_typer(schedules_app, name="schedules")
    app.add_typer(codes_app, name="codes")
    app.add_typer(access_app, name="access")
    app.command("unlock")(unlock)


# ---------------------------------------------------------------------- plumbing


@contextmanager
def _store() -> Iterator[AccessStore]:
    """The access store of the runtime (the one composition root); every change is audited there."""
    from limen.runtime import open_runtime

    rt = open_runtime(STATE.settings)
    try:
        yield rt.access("cli")
    finally:
        rt.close()


def _now() -> datetime:
    return datetime.now(UTC)


def _prompt_pin(label: str, confirm: bool = False, env: str = "LIMEN_NEW_PIN") -> str:
    """Prompt without echo; scripts may pass the PIN in `env` instead (never as an argument)."""
    value = os.environ.get(env)
    if value is not None:
        return value
    if not sys.stdin.isatty():  # a script: one line from stdin, no getpass (it warns and may echo)
        line = sys.stdin.readline().strip()
        if not line:
            raise BadRequest("pin", f"no terminal to ask for the PIN: set {env} (or pipe it on stdin)")
        return line
    return str(typer.prompt(label, hide_input=True, confirmation_prompt=confirm, err=True))


def _actor(store: AccessStore, actor: str, pin: str | None) -> str:
    pin = pin if pin is not None else _prompt_pin(_("PIN of {name}").format(name=actor), env="LIMEN_ACTOR_PIN")
    return store.authenticate(actor, pin, _now()).user_id


def _instant(text: str | None, store: AccessStore, field: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadRequest(field, f"{text!r} is not an ISO date/time (2026-05-01T09:00)") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone(store.load_state().config.timezone))
    return value


def _user_dict(u: AccessUser) -> dict[str, Any]:
    return {"id": u.user_id, "index": u.index, "name": u.name, "status": u.status.value,
            "type": u.user_type.value, "rule": u.credential_rule.value, "permission": u.permission.value,
            "unique_id": u.unique_id, "pin_max_age_days": u.pin_max_age_days, "implicit": u.implicit}


def _cred_dict(c: Credential) -> dict[str, Any]:
    return {"id": c.id, "user_id": c.user_id, "type": c.type.value, "index": c.index, "revoked": c.revoked,
            "backup": c.backup, "uses": c.uses, "max_uses": c.max_uses,
            "valid_from": c.valid_from.isoformat() if c.valid_from else None,
            "valid_until": c.valid_until.isoformat() if c.valid_until else None,
            "expire_after_s": c.expire_after_first_use_s, "offline_uses": c.offline_uses,
            "offline_max_uses": c.offline_max_uses}


def _show_user(u: AccessUser) -> str:
    implicit = "  " + _("(face-enrolled, no access row)") if u.implicit else ""
    return (f"{u.index:>3}  {u.name:<20} {u.permission.value:<13} {u.status.value:<9} {u.user_type.value:<19} "
            f"{u.credential_rule.value}{implicit}")


# ---------------------------------------------------------------------- users


def add_user(
    name: Annotated[str, typer.Argument(help="Display name (unique).")],
    actor: Annotated[str | None, typer.Option("--as", help="Owner/administrator adding the user.")] = None,
    actor_pin: ActorPin = None,
    permission: Annotated[PermissionLevel, typer.Option(help="owner, administrator, member, guest.")] = (
        PermissionLevel.MEMBER),
    user_type: Annotated[UserType, typer.Option("--type", help="Matter user type.")] = UserType.UNRESTRICTED,
    rule: Annotated[CredentialRule, typer.Option(help="single, dual or tri credential rule.")] = (
        CredentialRule.SINGLE),
    unique_id: Annotated[str | None, typer.Option(help="Integrator's unique id (Matter UserUniqueID).")] = None,
    index: Annotated[int | None, typer.Option(help="Matter user index (default: the first free one).")] = None,
    with_pin: Annotated[bool, typer.Option("--pin/--no-pin", help="Prompt for the new user's PIN.")] = True,
) -> None:
    """Add a user.  The first user is the owner and must choose a PIN (no default PIN exists)."""
    with _store() as store:
        first = not store.has_owner()  # a face enrolled before any owner must not block the first owner
        if first:
            permission = PermissionLevel.OWNER
            with_pin = True
        elif actor is None:
            raise BadRequest("as", "name the owner or administrator making the change with --as")
        actor_id = "" if first else _actor(store, actor or "", actor_pin)
        pin = _prompt_pin(_("New PIN for {name}").format(name=name), confirm=True) if with_pin else None
        if first and any(u.name == name for u in store.users()):  # enrolled (e.g. by face) before any owner
            assert pin is not None
            user = store.claim_first_owner(name, pin, _now())
            output(_user_dict(user), _("{name} (already enrolled) is now the first owner (index {index})").format(
                name=user.name, index=user.index))
            return
        user = store.add_user(name, actor_id, _now(), pin=pin, permission=permission, user_type=user_type,
                              credential_rule=rule, unique_id=unique_id, index=index)
    output(_user_dict(user), _("added {name} (index {index}, {permission})").format(
        name=user.name, index=user.index, permission=user.permission.value))


def modify_user(
    user: Annotated[str, typer.Argument(help="Name, id or index.")],
    actor: Actor,
    actor_pin: ActorPin = None,
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    permission: Annotated[PermissionLevel | None, typer.Option()] = None,
    user_type: Annotated[UserType | None, typer.Option("--type")] = None,
    rule: Annotated[CredentialRule | None, typer.Option()] = None,
    unique_id: Annotated[str | None, typer.Option()] = None,
    pin_max_age_days: Annotated[int | None, typer.Option(help="Require a new PIN every N days.")] = None,
    new_pin: Annotated[bool, typer.Option("--new-pin", help="Prompt for a new PIN (history enforced).")] = False,
) -> None:
    """Change a user's fields (and optionally PIN)."""
    with _store() as store:
        actor_id = _actor(store, actor, actor_pin)
        updated = store.modify_user(user, actor_id, _now(), name=name, permission=permission, user_type=user_type,
                                    credential_rule=rule, unique_id=unique_id, pin_max_age_days=pin_max_age_days)
        if new_pin:
            label = _("New PIN for {name}").format(name=updated.name)
            store.change_pin(updated.user_id, _prompt_pin(label, confirm=True), actor_id,
                             _now())
    output(_user_dict(updated), _("modified {name}").format(name=updated.name))


def _set_status(user: str, actor: str, actor_pin: str | None, status: UserStatus) -> None:
    with _store() as store:
        updated = store.set_status(user, status, _actor(store, actor, actor_pin), _now())
    output(_user_dict(updated), _("{name} is {status}").format(name=updated.name, status=_(status.value)))


def disable_user(user: Annotated[str, typer.Argument()], actor: Actor, actor_pin: ActorPin = None) -> None:
    """Disable a user (kept, but refused at the door)."""
    _set_status(user, actor, actor_pin, UserStatus.DISABLED)


def enable_user(user: Annotated[str, typer.Argument()], actor: Actor, actor_pin: ActorPin = None) -> None:
    """Enable a disabled user."""
    _set_status(user, actor, actor_pin, UserStatus.ENABLED)


def show_user(user: Annotated[str | None, typer.Argument(help="Name, id or index; all when absent.")] = None) -> None:
    """Show users' access fields (Matter index, type, rule, permission)."""
    with _store() as store:
        users = [store.user(user)] if user else store.users()
    output([_user_dict(u) for u in users], "\n".join(_show_user(u) for u in users) or _("no users"))


# ---------------------------------------------------------------------- credentials


@credentials_app.command("add")
def add_credential(
    user: Annotated[str, typer.Argument(help="Name, id or index of the user.")],
    actor: Actor,
    ctype: Annotated[CredentialType, typer.Option("--type", help="pin, rfid, face, fingerprint.")] = (
        CredentialType.PIN),
    uid: Annotated[str | None, typer.Option(help="RFID tag UID.")] = None,
    backup: Annotated[bool, typer.Option(help="Backup PIN: limited offline uses.")] = False,
    offline_uses: Annotated[int | None, typer.Option(help="Offline uses of a backup PIN.")] = None,
    valid_from: Annotated[str | None, typer.Option(help="ISO date/time (lock's zone if none given).")] = None,
    valid_until: Annotated[str | None, typer.Option(help="ISO date/time.")] = None,
    max_uses: Annotated[int | None, typer.Option(help="Maximum number of openings.")] = None,
    expires_after: Annotated[int | None, typer.Option(help="Minutes of validity after first use.")] = None,
    actor_pin: ActorPin = None,
) -> None:
    """Link a credential to a user (PINs are prompted and stored only as Argon2id hashes)."""
    with _store() as store:
        actor_id = _actor(store, actor, actor_pin)
        label = _("New PIN for {name}").format(name=user)
        secret = _prompt_pin(label, confirm=True) if ctype is CredentialType.PIN else uid
        cred = store.add_credential(
            user, ctype, actor_id, _now(), secret=secret, backup=backup, offline_max_uses=offline_uses,
            valid_from=_instant(valid_from, store, "valid_from"),
            valid_until=_instant(valid_until, store, "valid_until"), max_uses=max_uses,
            expire_after_s=expires_after * 60 if expires_after is not None else None)
    output(_cred_dict(cred), _("added {id}").format(id=cred.id))


@credentials_app.command("remove")
def remove_credential(cred_id: Annotated[str, typer.Argument(help="e.g. pin:3")], actor: Actor,
                      actor_pin: ActorPin = None) -> None:
    """Delete a credential (a removed PIN may not be reused soon)."""
    with _store() as store:
        store.remove_credential(cred_id, _actor(store, actor, actor_pin), _now())
    output({"removed": cred_id}, _("removed {id}").format(id=cred_id))


@credentials_app.command("revoke")
def revoke_credential(cred_id: Annotated[str, typer.Argument()], actor: Actor, actor_pin: ActorPin = None) -> None:
    """Refuse a credential from the next attempt on (kept on record)."""
    with _store() as store:
        store.revoke_credential(cred_id, _actor(store, actor, actor_pin), _now())
    output({"revoked": cred_id}, _("revoked {id}").format(id=cred_id))


@credentials_app.command("list")
def list_credentials(user: Annotated[str | None, typer.Argument()] = None) -> None:
    """List credentials (never their secrets)."""
    with _store() as store:
        creds = store.credentials(store.user(user).user_id if user else None)
    rows = [_cred_dict(c) for c in creds]
    output(rows, "\n".join(f"{r['id']:<16} user {r['user_id'][:8]}  uses {r['uses']}"
                           f"{'  revoked' if r['revoked'] else ''}" for r in rows) or _("no credentials"))


# ---------------------------------------------------------------------- schedules


@schedules_app.command("week-day")
def week_day(
    user: Annotated[str, typer.Argument()],
    actor: Actor,
    days: Annotated[str, typer.Option(help="mon,tue,… or weekdays, weekend, all.")],
    start: Annotated[str, typer.Option(help="HH:MM (lock's time zone).")],
    end: Annotated[str, typer.Option(help="HH:MM, after start.")],
    index: Annotated[int, typer.Option(help="Schedule index 1..10.")] = 1,
    actor_pin: ActorPin = None,
) -> None:
    """Allow a user on some days between two times (makes an unrestricted user schedule-restricted)."""
    mask, t0, t1 = parse_days(days), parse_time_of_day(start, "start"), parse_time_of_day(end, "end")
    with _store() as store:
        s = store.add_week_day(user, index, mask, t0, t1, _actor(store, actor, actor_pin), _now())
    output({"user_id": s.user_id, "index": s.index, "days": _days(s.days), "start": start, "end": end},
           _("week-day schedule {index} set").format(index=s.index))


@schedules_app.command("year-day")
def year_day(
    user: Annotated[str, typer.Argument()],
    actor: Actor,
    start: Annotated[str, typer.Option(help="ISO date/time.")],
    end: Annotated[str, typer.Option(help="ISO date/time, after start.")],
    index: Annotated[int, typer.Option()] = 1,
    actor_pin: ActorPin = None,
) -> None:
    """Allow a user between two instants (e.g. a tenant's stay)."""
    with _store() as store:
        t0, t1 = _instant(start, store, "start"), _instant(end, store, "end")
        assert t0 is not None and t1 is not None
        s = store.add_year_day(user, index, t0, t1, _actor(store, actor, actor_pin), _now())
    output({"user_id": s.user_id, "index": s.index, "start": s.start.isoformat(), "end": s.end.isoformat()},
           _("year-day schedule {index} set").format(index=s.index))


@schedules_app.command("holiday")
def holiday(
    actor: Actor,
    start: Annotated[str, typer.Option()],
    end: Annotated[str, typer.Option()],
    mode: Annotated[OperatingMode, typer.Option(help="Operating mode during the holiday.")],
    index: Annotated[int, typer.Option()] = 1,
    actor_pin: ActorPin = None,
) -> None:
    """Run the lock in another operating mode between two instants."""
    with _store() as store:
        t0, t1 = _instant(start, store, "start"), _instant(end, store, "end")
        assert t0 is not None and t1 is not None
        s = store.add_holiday(index, t0, t1, mode, _actor(store, actor, actor_pin), _now())
    output({"index": s.index, "start": s.start.isoformat(), "end": s.end.isoformat(), "mode": s.mode.value},
           _("holiday schedule {index} set").format(index=s.index))


@schedules_app.command("remove")
def remove_schedule(
    kind: Annotated[str, typer.Argument(help="week-day, year-day or holiday.")],
    index: Annotated[int, typer.Argument()],
    actor: Actor,
    user: Annotated[str | None, typer.Option(help="Whose schedule (week-day / year-day).")] = None,
    actor_pin: ActorPin = None,
) -> None:
    """Remove one schedule."""
    with _store() as store:
        store.remove_schedule(kind, index, _actor(store, actor, actor_pin), _now(), ref=user)
    output({"removed": kind, "index": index}, _("removed {kind} schedule {index}").format(kind=kind, index=index))


@schedules_app.command("list")
def list_schedules(user: Annotated[str | None, typer.Argument()] = None) -> None:
    """List schedules (of one user, or all with holidays)."""
    with _store() as store:
        users = [store.user(user)] if user else store.users()
        rows: list[dict[str, Any]] = []
        for u in users:
            rows += [{"kind": "week-day", "user": u.name, "index": s.index, "days": _days(s.days),
                      "start": s.start.isoformat("minutes"), "end": s.end.isoformat("minutes")}
                     for s in store.week_days(u.user_id)]
            rows += [{"kind": "year-day", "user": u.name, "index": s.index, "start": s.start.isoformat(),
                      "end": s.end.isoformat()} for s in store.year_days(u.user_id)]
        if not user:
            rows += [{"kind": "holiday", "index": h.index, "start": h.start.isoformat(), "end": h.end.isoformat(),
                      "mode": h.mode.value} for h in store.holidays()]
    output(rows, "\n".join(" ".join(f"{k}={v}" for k, v in r.items()) for r in rows) or _("no schedules"))


def _days(days: int) -> str:
    """A week-day mask as `schedules week-day --days` takes it: "tue", "mon,wed,fri"."""
    from limen.access.model import DAY_NAMES

    return ",".join(name for name, day in DAY_NAMES.items() if day & days)


# ---------------------------------------------------------------------- offline codes


@codes_app.command("issue")
def issue_code(
    actor: Actor,
    kind: Annotated[offline.CodeKind, typer.Option(help="single_use (6 h, once), limited, period_quota.")] = (
        offline.CodeKind.SINGLE_USE),
    start: Annotated[str | None, typer.Option(help="ISO date/time (default now).")] = None,
    hours: Annotated[int, typer.Option(help="limited: validity in hours.")] = 24,
    days: Annotated[int, typer.Option(help="period_quota: validity in days.")] = 7,
    uses_per_day: Annotated[int, typer.Option(help="period_quota: openings per day.")] = 1,
    actor_pin: ActorPin = None,
) -> None:
    """Issue an offline code with the actor's secret and print it (for the owner to pass on)."""
    with _store() as store:
        actor_id = _actor(store, actor, actor_pin)
        code, grant = store.issue_code(kind, actor_id, _now(), start=_instant(start, store, "start"), hours=hours,
                                       days=days, uses_per_day=uses_per_day)
    output({"code": code, "code_id": grant.code_id, "kind": kind.value, "start": grant.start.isoformat(),
            "end": grant.end.isoformat(), "uses_per_day": grant.uses_per_day},
           _("code {code}  ({kind}, valid {start} – {end} UTC)\ntype it at the keypad as *{code}#").format(
               code=code, kind=kind.value, start=f"{grant.start:%Y-%m-%d %H:%M}", end=f"{grant.end:%Y-%m-%d %H:%M}"))


@codes_app.command("list")
def list_codes(actor: Actor, actor_pin: ActorPin = None) -> None:
    """List issued offline codes with their uses (owner/administrator only: codes open the door)."""
    with _store() as store:
        _actor(store, actor, actor_pin)
        rows = store.list_codes()
    output(rows, "\n".join(f"{r['code_id']:<24} {r['kind']:<13} {r['start'][:16]} – {r['end'][:16]}  uses {r['uses']}"
                           f"{'  REVOKED' if r['revoked'] else ''}" for r in rows) or _("no codes"))


@codes_app.command("revoke")
def revoke_code(code: Annotated[str, typer.Argument(help="The code's digits or its id.")], actor: Actor,
                actor_pin: ActorPin = None) -> None:
    """Revoke a code now (it joins the synchronised revocation list)."""
    with _store() as store:
        code_id = store.revoke_code(code, _actor(store, actor, actor_pin), _now())
    output({"revoked": code_id}, _("revoked {id}").format(id=code_id))


@codes_app.command("clear")
def clear_code(code: Annotated[str, typer.Argument(help="The code to cancel at the keypad.")], actor: Actor,
               actor_pin: ActorPin = None) -> None:
    """Print the clear code that revokes `code` when typed at an offline keypad."""
    with _store() as store:
        actor_id = _actor(store, actor, actor_pin)
        secret = store.offline_secret(actor_id, actor_id, _now()).secret
        clear = offline.issue_clear(secret, code, _now())
    output({"clear_code": clear}, _("clear code {code}  (type *{code}# at the keypad)").format(code=clear))


@codes_app.command("sync")
def sync_codes(file: Annotated[Path, typer.Argument(help="JSON list of revoked code ids (from the owner's app).")],
               actor: Actor, actor_pin: ActorPin = None) -> None:
    """Merge a synchronised revocation list: every code in it is refused from now on."""
    try:
        ids = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(str(file), f"cannot read a JSON list of code ids ({exc})") from exc
    if not isinstance(ids, list) or not all(isinstance(i, str) and 0 < len(i) <= 64 for i in ids):
        raise BadRequest(str(file), "expected a JSON list of code ids (strings)")
    with _store() as store:
        added = store.sync_revocations(ids, _actor(store, actor, actor_pin), _now())
    output({"added": added, "listed": len(ids)},
           _("{added} new revocation(s) of {listed} listed").format(added=added, listed=len(ids)))


# ---------------------------------------------------------------------- lock-wide settings


@access_app.command("link")
def set_link(state: Annotated[str, typer.Argument(help="online or offline.")], actor: Actor,
             actor_pin: ActorPin = None) -> None:
    """Record whether the lock can reach its owner (offline: mechanical-key and backup-PIN limits apply)."""
    from limen.audit.event import Event, EventKind

    if state not in ("online", "offline"):
        raise BadRequest("state", "online or offline")
    with _store() as store:
        who = _actor(store, actor, actor_pin)
        store.set_online(state == "online")
        store.audit.append(Event(EventKind.CONFIG_CHANGE, _now(), actor=who, subject="lock", reason=f"link {state}",
                                 source="cli", data={"online": state == "online"}))
    output({"online": state == "online"}, _("link online") if state == "online" else _("link offline"))


@access_app.command("status")
def status() -> None:
    """Operating mode, lockout counters, link and lockdown flags."""
    with _store() as store:
        s = store.load_state()
    data = {"mode": s.mode.value, "online": s.online, "lockdown": s.lockdown,
            "lockdown_cause": s.lockdown_cause.value if s.lockdown_cause else None,
            "owner_reauth_required": s.owner_reauth_required, "key_offline_uses": s.key_offline_uses,
            "wrong_code_count": s.lockout.wrong_code_count, "lockouts": s.lockout.lockouts,
            "locked_until": s.lockout.locked_until.isoformat() if s.lockout.locked_until else None,
            "bio_fail_count": s.lockout.bio_fail_count, "config": asdict(s.config),
            "users": len([u for u in s.users.values() if not u.implicit])}
    output(data, "\n".join(f"{k}: {v}" for k, v in data.items()))


@access_app.command("lockdown")
def set_lockdown(state: Annotated[str, typer.Argument(help="on or off.")], actor: Annotated[str, typer.Option(
        "--as", help="The owner starting or lifting it (name, id or index).")], actor_pin: ActorPin = None) -> None:
    """Start or lift an owner's lockdown (owners only, PIN-confirmed, audited): faces, fingers, PINs, codes and
    tags are refused, the mechanical key and the owner's signed app command still open; nothing is erased.  A
    tamper lockdown is not lifted here: `limen tamper clear` re-provisions the lock."""
    from limen.access.model import PermissionLevel
    from limen.tamper.lockdown import LockdownCause

    if state not in ("on", "off"):
        raise BadRequest("state", "on or off")
    with _store() as store:
        pin = actor_pin if actor_pin is not None else _prompt_pin(_("PIN of {name}").format(name=actor),
                                                                 env="LIMEN_ACTOR_PIN")
        owner = store.authenticate(actor, pin, _now())
        if owner.permission is not PermissionLevel.OWNER:
            raise BadRequest("as", "only an owner starts or lifts a lockdown")
        cause = store.set_lockdown(state == "on", owner.user_id, _now())
    data = {"lockdown": cause is not None, "cause": cause.value if cause else None}
    if cause is LockdownCause.TAMPER:
        text = _("a tamper lockdown is in force: only `limen tamper clear` (re-provisioning) lifts it")
    elif cause is LockdownCause.COMMAND:
        text = _("owner lockdown on: faces, fingers, PINs, codes and tags are refused; the mechanical key and your "
                 "signed app command still open; lift it with `limen access lockdown off --as {name}`").format(
            name=actor)
    else:
        text = _("lockdown off: the lock opens as usual (nothing was erased)")
    output(data, text)


@access_app.command("mode")
def set_mode(mode: Annotated[OperatingMode, typer.Argument()], actor: Actor, actor_pin: ActorPin = None) -> None:
    """Set the operating mode (normal, vacation, privacy, no_remote_lock_unlock, passage)."""
    with _store() as store:
        store.set_mode(mode, _actor(store, actor, actor_pin), _now())
    output({"mode": mode.value}, _("mode {mode}").format(mode=mode.value))


@access_app.command("set")
def set_config(
    actor: Actor,
    settings: Annotated[list[str], typer.Argument(help="name=value, e.g. wrong_code_entry_limit=5.")],
    actor_pin: ActorPin = None,
) -> None:
    """Change lock settings (owner only): lockout, auto-relock, time zone, remote PIN rule."""
    changes: dict[str, Any] = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep:
            raise BadRequest(item, "expected name=value")
        if key == "timezone":
            changes[key] = value
        elif key == "require_pin_for_remote":
            changes[key] = value.lower() in ("1", "true", "yes", "on")
        else:
            try:
                changes[key] = int(value)
            except ValueError as exc:
                raise BadRequest(key, "expected an integer") from exc
    with _store() as store:
        new = store.set_config(_actor(store, actor, actor_pin), _now(), **changes)
    output(asdict(new), "\n".join(f"{k}: {v}" for k, v in asdict(new).items()))


# ---------------------------------------------------------------------- unlock (local testing)


def unlock(
    pin: Annotated[str | None, typer.Option(help="PIN as typed at the keypad (decoys allowed).")] = None,
    code: Annotated[str | None, typer.Option(help="Offline code.")] = None,
    key: Annotated[bool, typer.Option("--key", help="Simulate the mechanical key.")] = False,
    remote_as: Annotated[str | None, typer.Option(help="Remote unlock as this owner (signature assumed).")] = None,
) -> None:
    """Try to open the configured door through the lock's controller (same policy, audit and door path)."""
    from limen.runtime import open_runtime

    chosen = [x for x in (pin is not None, code is not None, key, remote_as is not None) if x]
    if len(chosen) != 1:
        raise BadRequest("unlock", "give exactly one of --pin, --code, --key, --remote-as")
    rt = open_runtime(STATE.settings)
    try:
        controller = rt.controller
        if remote_as is not None:
            owner = rt.access().user(remote_as).user_id
            decision = controller.remote(owner, authorised=True,
                                         pin=_prompt_pin(_("PIN of {name}").format(name=remote_as),
                                                         env="LIMEN_ACTOR_PIN"), device="cli")
        elif pin is not None:
            decision = controller.keypad(pin)
        elif code is not None:
            decision = controller.keypad("*" + code.lstrip("*"))
        else:
            decision = controller.key_turned()
    finally:
        rt.close()
    data = decision.to_dict()
    verdict = _("OPEN") if decision.accepted else _("REFUSED")
    output(data, f"{verdict}: {_why(decision)}"
                 f"{' (' + decision.user_name + ')' if decision.user_name else ''}"
                 f"{' – ' + decision.detail if decision.detail else ''}")
    if not decision.accepted:
        sys.exit(3)


def _why(decision: Any) -> str:
    """The reason code; for a PIN/code alone that needs a face too, what the door screen says, in the CLI's
    language ('show your face first, then your PIN')."""
    from limen.decision import Reason
    from limen.service.messages import FACE_FIRST

    if decision.reason is Reason.FACE_FIRST:
        return f"{decision.reason.value} ({_(FACE_FIRST)})"
    return str(decision.reason.value)
