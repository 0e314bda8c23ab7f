"""`limen tamper simulate|status|clear|bind`: trigger, inspect and leave the tamper lockdown.

`simulate SOURCE` drives a `SimulatedSource` through the real debouncing,
monitor and response: it ERASES every template of this lock (crypto-erase)
and puts it in lockdown, exactly as a real tamper would.  `clear` is the
owner's way out: PIN-authenticated (prompted, or `LIMEN_ACTOR_PIN`), it
re-provisions the vault with fresh keys, re-binds the sensors named with
`--camera`/`--sensor` and lifts the lockdown; users then enrol again.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from limen.cli.common import STATE, output
from limen.cli.common import gettext as _
from limen.errors import BadRequest

if TYPE_CHECKING:
    from limen.runtime import Runtime

tamper_app = typer.Typer(help="Tamper response: simulate a tamper, status, owner re-provisioning.",
                         no_args_is_help=True)

_SIMULABLE = ("case", "escutcheon", "shock", "supply", "sensor", "watchdog", "simulated")

Camera = Annotated[list[str] | None, typer.Option("--camera", help="V4L2 device to bind (e.g. video0); repeatable.")]
Sensor = Annotated[list[str] | None, typer.Option(
    "--sensor", help="NAME=IDENTITY of a sensor that reports its own identity (fingerprint module, file "
                     "source); repeatable.")]


def register(app: typer.Typer) -> None:
    app.add_typer(tamper_app, name="tamper")


def _now() -> datetime:
    return datetime.now(UTC)


@tamper_app.command("simulate")
def simulate(
    source: Annotated[str, typer.Argument(help=f"Which source trips: {', '.join(_SIMULABLE)}.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask: erase every template now.")] = False,
) -> None:
    """Trip a simulated tamper source: erase the vault, secure the door, audit, alarm, lockdown."""
    from limen.runtime import open_runtime
    from limen.tamper import SimulatedSource, SourceKind
    from limen.tamper.debounce import switch_profile

    if source not in _SIMULABLE:
        raise BadRequest("source", f"one of {', '.join(_SIMULABLE)}")
    if not yes and not typer.confirm("This erases every biometric template of this lock and locks it down. Go on?",
                                     err=True):
        raise typer.Abort()
    rt = open_runtime(STATE.settings)
    try:
        rt.controller  # noqa: B018 - the configured door, guarded, with the lock's tamper monitor
        monitor = rt.monitor
        assert monitor is not None
        t = [0.0]
        sim = SimulatedSource(source, SourceKind(source), switch_profile(), monotonic=lambda: t[0])
        monitor.add(sim)
        sim.set(True)
        t[0] += sim.debouncer.profile.hold_s
        reports = monitor.poll(t[0])
        if not reports:
            raise BadRequest("source", "the simulated source did not trip")
    finally:
        rt.close()
    data = reports[0].to_dict()
    output(data, lambda: _print_report(data))


def _print_report(data: dict[str, Any]) -> None:
    typer.echo(_("tamper {source} ({reason}): incident {incident}").format(
        source=data["source"], reason=data["reason"], incident=data["incident"]))
    for step, ms in data["steps_ms"].items():
        typer.echo(f"  {ms:9.2f} ms  {step}")
    failed = _("FAILED")
    for step, error in data["errors"].items():
        typer.echo(f"  {failed:<10} {step}: {error}")
    typer.echo(_("vault erased: {erased}; door: {door}; audit record {audit}; alarm record {alarm}; "
                 "lockdown: {lockdown}").format(erased=data["erased"], door=data["door"], audit=data["audit_index"],
                                                alarm=data["alarm_index"], lockdown=data["locked_down"]))


@tamper_app.command("status")
def status() -> None:
    """Lockdown, an unfinished response, recent incidents and bound sensors."""
    from limen.runtime import open_runtime

    rt = open_runtime(STATE.settings)
    try:
        data = tamper_status(rt)
    finally:
        rt.close()

    def human() -> None:
        from limen.cli.status import lockdown_text

        typer.echo(_("lockdown: {state}").format(state=lockdown_text(data["lockdown"])))  # by its cause, as `status`
        if data["pending"]:
            typer.echo(_("unfinished response: {pending} (completes at the next start)").format(
                pending=data["pending"]))
        for inc in data["incidents"]:
            typer.echo(_("incident {id} {at} {source}: {reason} (erased {erased}, door {door})").format(
                id=inc["id"][:12], at=inc["detected_at"], source=inc["source"], reason=inc["reason"],
                erased=bool(inc["erased"]), door=inc["door"]))
        for s in data["sensors"]:
            typer.echo(_("sensor {name} ({kind}): {identity}").format(name=s["name"], kind=s["kind"],
                                                                      identity=s["identity"]))
        typer.echo(_("tamper sources: {sources}").format(sources=", ".join(data["sources"]) or _(
            "none configured (set tamper_sources, e.g. [\"case:17\"])")))

    output(data, human)


def tamper_status(rt: Runtime) -> dict[str, Any]:
    """What `limen tamper status` shows (also used by `limen status`); reads only."""
    from limen.cli.status import tamper_source_names
    from limen.tamper import journal_dir, lockdown_status
    from limen.tamper.binding import bound_sensors
    from limen.tamper.journal import read_pending
    from limen.tamper.response import incidents

    pending = read_pending(journal_dir(rt.settings))
    return {"lockdown": lockdown_status(rt.conn).to_dict(),
            "pending": None if pending is None else {"incident": pending.incident, "source": pending.source,
                                                     "reason": pending.reason},
            "incidents": incidents(rt.conn, 5), "sensors": bound_sensors(rt.conn),
            "sources": tamper_source_names(rt.settings)}


@tamper_app.command("clear")
def clear(
    owner: Annotated[str, typer.Option("--as", help="The owner lifting the lockdown (name, id or index).")],
    camera: Camera = None,
    sensor: Sensor = None,
    owner_pin: Annotated[str | None, typer.Option("--as-pin", envvar="LIMEN_ACTOR_PIN", hidden=True)] = None,
) -> None:
    """Re-provision after a tamper: fresh vault keys (users enrol again), sensors re-bound, lockdown lifted."""
    from limen.runtime import open_runtime
    from limen.tamper import journal_dir
    from limen.tamper.journal import IntentJournal
    from limen.tamper.provision import authenticate_owner, reprovision

    probes = _probes(camera, sensor)
    rt = open_runtime(STATE.settings)  # completes an unfinished response first
    journal = IntentJournal(journal_dir(STATE.settings))
    try:
        pin = owner_pin if owner_pin is not None else str(typer.prompt(f"PIN of {owner}", hide_input=True, err=True))
        owner_id = authenticate_owner(rt.conn, rt.audit, owner, pin, _now())
        result = reprovision(rt.conn, rt.store, rt.audit, journal, owner_id, _now(), probes, rt.erase_fingers)
    finally:
        journal.close()
        rt.close()
    output(result, _("lockdown lifted; vault {vault} with fresh keys (enrol users again); sensors bound: {sensors}")
           .format(vault=result["vault"], sensors=", ".join(sorted(result["sensors"])) or _("none")))


@tamper_app.command("bind")
def bind(
    owner: Annotated[str, typer.Option("--as", help="The owner binding the sensors.")],
    camera: Camera = None,
    sensor: Sensor = None,
    owner_pin: Annotated[str | None, typer.Option("--as-pin", envvar="LIMEN_ACTOR_PIN", hidden=True)] = None,
) -> None:
    """Record the identity of the lock's sensors (at provisioning); a later mismatch is a tamper."""
    from limen.audit.event import Event, EventKind
    from limen.runtime import open_runtime
    from limen.tamper.binding import bind_sensors
    from limen.tamper.provision import authenticate_owner

    probes = _probes(camera, sensor)
    if not probes:
        raise BadRequest("sensor", "name at least one --camera or --sensor")
    rt = open_runtime(STATE.settings)
    try:
        pin = owner_pin if owner_pin is not None else str(typer.prompt(f"PIN of {owner}", hide_input=True, err=True))
        owner_id = authenticate_owner(rt.conn, rt.audit, owner, pin, _now())
        bound = bind_sensors(rt.conn, probes, owner_id, _now())
        rt.audit.append(Event(EventKind.CONFIG_CHANGE, _now(), actor=owner_id, subject="sensors",
                              reason="sensors_bound", source="cli", data={"sensors": sorted(bound)}))
    finally:
        rt.close()
    output(bound, "\n".join(f"{k}: {v}" for k, v in bound.items()))


def _probes(cameras: list[str] | None, sensors: list[str] | None) -> list[Any]:
    from limen.tamper.binding import SimulatedSensor, V4L2Camera

    probes: list[Any] = []
    for i, device in enumerate(cameras or []):
        probes.append(V4L2Camera(os.path.basename(device), name="camera" if i == 0 else f"camera{i}"))
    for item in sensors or []:
        name, sep, identity = item.partition("=")
        if not sep or not name or not identity:
            raise BadRequest("sensor", "expected NAME=IDENTITY")
        probes.append(SimulatedSensor(name, "fingerprint" if "finger" in name else "camera", identity))
    return probes
