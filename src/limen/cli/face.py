"""`limen enrol`, `limen verify`, `limen identify`: face (and fingerprint) recognition from files.

`verify` and `identify` are door attempts: the capture goes through the
runtime's `AccessController` (recognition, PAD, the access policy, one audit
record, the configured door), exactly as at the kiosk.  Wherever an image is
accepted, a video file or a folder of frames is too.  `--finger IMAGE` (or
`--sensor PORT`, the paired module) adds or replaces the face by a fingerprint
(cli/finger.py).  Exit codes: 0 accepted/enrolled, 1 error, 3 refused (the
decision is printed).
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from limen import people
from limen.access.attempt import Source
from limen.access.store import ensure_user
from limen.capture import Capture, load_capture
from limen.cli.common import STATE, output, progress
from limen.cli.common import gettext as _
from limen.decision import Decision, Reason
from limen.people import Consent
from limen.runtime import Runtime, open_runtime

REFUSED = 3


def register(app: typer.Typer) -> None:
    app.command("enrol")(enroll)  # one spelling across CLI, console and docs: "enrol"
    app.command("enroll", hidden=True)(enroll)  # the old spelling still works
    app.command("verify")(verify)
    app.command("identify")(identify)


def _captures(paths: list[Path]) -> list[Capture]:
    with progress("reading", len(paths)) as advance:
        captures = []
        for p in paths:
            captures.append(load_capture(p))
            advance(1)
    return captures


def enroll(
    name: Annotated[str, typer.Argument(help="The person's display name.")],
    face: Annotated[list[Path] | None, typer.Option("--face", help="Image, video or folder of frames (repeatable).")
                    ] = None,
    finger: Annotated[list[Path] | None, typer.Option(
        "--finger", help="Fingerprint images of one finger, 500 dpi, or ISO/IEC 19794-2 records (.fmr) "
                 "(repeatable; 2-8 impressions).")] = None,
    sensor: Annotated[str | None, typer.Option("--sensor", help="Enrol the finger from the paired sensor on this "
                                               "port (3 captures).")] = None,
    purpose: Annotated[str, typer.Option(help="Why the face is processed (shown to and accepted by the person).")] = "",
    retention_days: Annotated[int, typer.Option(help="How long the template may be kept, in days.")] = 0,
    consent: Annotated[bool, typer.Option("--consent", help="The person gave explicit consent.")] = False,
    actor: Annotated[str, typer.Option("--as", help="Owner/administrator performing the enrolment.")] = "cli",
    actor_pin: Annotated[str | None, typer.Option("--as-pin", envvar="LIMEN_ACTOR_PIN", hidden=True)] = None,
    replace: Annotated[bool, typer.Option("--replace", help="NAME already has a face (or this finger): replace it.")
                       ] = False,
) -> None:
    """Enrol NAME from face videos or bursts of frames (liveness-checked) and/or fingerprints (--finger, --sensor);
    all or nothing; needs consent.  NAME may be a person already on the lock (by name or id, e.g. enrolled by
    finger): the face is added to them (--replace if they have one)."""
    from limen.cli.finger import enrol_finger
    from limen.errors import BadRequest, ConsentRequired

    if not consent:
        raise ConsentRequired("biometric enrolment needs the person's explicit consent: add --consent, "
                              "--purpose and --retention-days")
    if not face and not finger and sensor is None:
        raise BadRequest("--face/--finger", "give face images (--face), fingerprint images (--finger) or --sensor")
    if not face:
        data = enrol_finger(name, finger, sensor, 3, purpose, retention_days, consent, actor, actor_pin,
                            replace=replace)
        output(data, _("enrolled a finger of {name} ({id}) from {n} impression(s)").format(
            name=data["name"], id=data["user_id"], n=data["impressions"]))
        return
    captures = _captures(face)
    rt = open_runtime(STATE.settings)
    try:
        who = rt.authorise(actor, actor_pin or _prompt_pin(rt, actor), datetime.now(UTC))
        result = rt.recognizer().enrol(name, captures, Consent(purpose, retention_days), who,
                                       person_id=_existing_for_face(rt, name, replace))
        ensure_user(rt.conn, result.user_id, who)
    finally:
        rt.close()
    data = {"user_id": result.user_id, "name": result.name, "samples": result.samples,
            "rejected": result.rejected, "warnings": result.warnings}
    if finger or sensor is not None:  # the finger goes to the person the face just enrolled
        data["finger"] = enrol_finger(result.user_id, finger, sensor, 3, purpose, retention_days, consent, actor,
                                      actor_pin, replace=replace)
    output(data, lambda: _print_enrolment(data))


def _existing_for_face(rt: Runtime, name: str, replace: bool) -> str | None:
    """The id of the person NAME already names (their face is added), or None for a new person; a person who
    already has a face keeps it unless the owner said --replace."""
    from limen.bio.templates import Modality
    from limen.errors import Conflict

    person = people.lookup(rt.conn, name)
    if person is None:
        return None
    if not replace and any(e.modality == Modality.FACE for e in people.enrolments_of(rt.conn, person.id)):
        raise Conflict(f"{person.name!r} already has a face on this lock: add --replace to replace it")
    return person.id


def _prompt_pin(rt: Runtime, actor: str) -> str | None:
    """The actor's PIN, prompted without echo, only once the lock has an owner."""
    if not rt.has_owner() or not sys.stdin.isatty():
        return None
    return str(typer.prompt(f"PIN of {actor}", hide_input=True, err=True))


def _print_enrolment(data: dict[str, object]) -> None:
    typer.echo(_("enrolled {name} ({id}) from {n} sample(s)").format(name=data["name"], id=data["user_id"],
                                                                     n=data["samples"]))
    if data["rejected"]:
        typer.echo("  " + _("rejected samples: {rejected}").format(rejected=data["rejected"]))
    for w in data["warnings"]:  # type: ignore[attr-defined]
        typer.echo("  " + _("warning: {text}").format(text=w))


PinOption = Annotated[bool, typer.Option(
    "--pin", help="Complete a face the lock takes as a first factor (RGB camera) with a PIN (prompted, or LIMEN_PIN).")]


FaceOption = Annotated[Path | None, typer.Option("--face", help="Image, video or folder of frames.")]
FingerOption = Annotated[Path | None, typer.Option("--finger", help="A fingerprint image (with --face: both "
                                                   "captured together, two factors fused).")]
SensorOption = Annotated[str | None, typer.Option("--sensor", help="Take the finger from the paired sensor.")]


def verify(
    name: Annotated[str, typer.Argument(help="Who the person claims to be.")],
    face: FaceOption = None,
    pin: PinOption = False,
    finger: FingerOption = None,
    sensor: SensorOption = None,
) -> None:
    """1:1: is the face (--face) and/or finger (--finger, --sensor) the enrolled NAME's? A door attempt (policy,
    audit, door)."""
    _attempt(face, name, pin, finger, sensor)


def identify(face: FaceOption = None, pin: PinOption = False, finger: FingerOption = None,
             sensor: SensorOption = None) -> None:
    """1:N: who, among the enrolled, is this face (--face) and/or finger (--finger, --sensor)? A door attempt
    (policy, audit, door)."""
    _attempt(face, None, pin, finger, sensor)


def _attempt(face: Path | None, claim: str | None, pin: bool, finger: Path | None = None,
             sensor: str | None = None) -> None:
    """The face through the controller; a face taken as a first factor is completed by the PIN, if asked."""
    from limen.errors import BadRequest

    if finger is not None or sensor is not None:
        from limen.cli.finger import door_attempt

        _finish(door_attempt(claim, finger, sensor, load_capture(face) if face else None, pin))
        return
    if face is None:
        raise BadRequest("--face/--finger", "give a face (--face) or a finger (--finger or --sensor)")
    capture = load_capture(face)
    rt = open_runtime(STATE.settings)
    try:
        if claim is not None:
            people.find(rt.conn, claim)  # an unknown name is an error (rc 1, "no user …"), not a refused attempt
        decision = rt.controller.face(capture, claim=claim, source=Source.CLI, session="cli")
        if pin and decision.reason in (Reason.SECOND_FACTOR_MISSING, Reason.PIN_REQUIRED):
            typed = os.environ.get("LIMEN_PIN") or str(typer.prompt("PIN", hide_input=True, err=True))
            decision = rt.controller.keypad(typed, session="cli")
    finally:
        rt.close()
    _finish(decision)


def _finish(decision: Decision) -> None:
    output(decision.to_dict(), lambda: typer.echo(describe(decision)))
    if not decision.accepted:
        sys.exit(REFUSED)


def describe(d: Decision) -> str:
    """One line in the CLI's language (the reason and quality gate stay codes, as in --json)."""
    who = f" {d.user_name}" if d.user_name else ""
    kind = _("score") if d.scores.get("finger.score") == d.score else _("distance")  # finger similarity, face distance
    score = "" if d.score is None or d.threshold is None else " (" + _("{kind} {score}, threshold {threshold}").format(
        kind=kind, score=f"{d.score:.3f}", threshold=f"{d.threshold:.3f}") + ")"
    gate = f" [{d.quality_gate.value}]" if d.quality_gate else ""
    detail = f" – {d.detail}" if d.detail else ""
    outcome = _("accept") if d.accepted else _("reject")
    total = _("in {ms} ms").format(ms=f"{sum(d.timings.values()):.0f}")
    return f"{outcome}{who}: {d.reason.value}{gate}{score} {total}{detail}"  # the detail last, not glued to the time
