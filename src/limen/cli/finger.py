"""`limen finger …`: enrol and verify fingerprints, pair a UART sensor, run the sensor simulator;
and `limen lab finger` (the FVC protocol).

The top-level `limen enrol NAME --finger IMAGE…|--sensor PORT` and `limen verify NAME --finger IMAGE|--sensor
PORT` (cli/face.py) call `enrol_finger` and `door_attempt` here: `verify` is a door attempt through the
runtime's `AccessController` (policy, one audit record, the door), `limen finger verify` a 1:1 check.

With the setting `finger_matching = "sensor"`, `--sensor` enrols on the module's own library (a free page,
recorded with its person in the sealed page map) and a door attempt searches that library: the module's
decision, trusted only over the paired, password-checked link, taken at the host's own operating point and
never higher; a removed person's pages on the module are deleted by `Runtime.erase_sensor_pages` (docs/finger.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from limen.cli.common import STATE, output, progress
from limen.cli.common import gettext as _

if TYPE_CHECKING:
    from limen.bio.finger.references import FingerReferences
    from limen.bio.finger.sensor import PairedSensor, R30xSensor
    from limen.bio.finger.template import FingerTemplate
    from limen.capture import Capture
    from limen.decision import Decision
    from limen.runtime import Runtime
    from limen.vault.secrets import SecretBox

finger_app = typer.Typer(help="Fingerprint: enrol, verify, list, pair a sensor, simulate a sensor.",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(finger_app, name="finger")      # `limen lab finger` (lab_finger below) is added by cli/lab.py


ImagesOption = Annotated[list[Path] | None, typer.Option(
    "--image", help="A 500 dpi fingerprint image, or an ISO/IEC 19794-2 minutiae record (.fmr) (repeatable).")]
SensorOption = Annotated[str | None, typer.Option("--sensor", help="Serial port of a paired R30x/R503/AS608 module.")]


def _sensor_file() -> Path:
    from limen.bio.finger.sensor import PAIRING_FILE

    return STATE.settings.data_dir / PAIRING_FILE


def _box(rt: Runtime) -> SecretBox:
    from limen.errors import ConfigError
    from limen.vault.secrets import box_for

    box = box_for(rt.conn)
    if box is None:
        raise ConfigError("fingerprints need the template vault; it is not open")
    return box


def _references(rt: Runtime) -> FingerReferences:
    from limen.bio.finger.references import FingerReferences, references_folder

    return FingerReferences(references_folder(STATE.settings.data_dir), _box(rt))


def _templates(rt: Runtime, images: list[Path] | None, sensor: str | None, count: int) -> list[FingerTemplate]:
    from limen.bio.finger.extract import extract, template_file
    from limen.errors import BadRequest

    if bool(images) == bool(sensor):
        raise BadRequest("--image/--sensor", "give images or a sensor, not both or neither")
    out = []
    if images:
        with progress("extracting", len(images)) as advance:
            for p in images:
                out.append(template_file(p))
                advance(1)
        return out
    assert sensor is not None
    with _open_sensor(rt, sensor) as module:
        for k in range(count):
            typer.echo(_("place the finger on the sensor ({k}/{count})").format(k=k + 1, count=count), err=True)
            out.append(extract(module.capture_image(), source=f"sensor capture {k + 1}"))
    return out


@contextlib.contextmanager
def _open_sensor(rt: Runtime, port: str) -> Iterator[R30xSensor]:
    """The paired module on `port`, its sealed password unsealed, as the door opens it: one exchange at a time
    (`Runtime.sensor_lock`), and a module that fails its check (`SensorAuthError`: swapped, reset, wrong
    password) or whose port fails (`SensorDisconnected`), at the handshake or later, is a tamper alarm on the
    audit trail before the error (`fingerprint.tamper_alarm`)."""
    from limen import fingerprint

    paired = _paired(rt, port)
    with rt.sensor_lock, fingerprint.tamper_alarm(rt), paired.open() as module:
        yield module


def _paired(rt: Runtime, port: str | None = None) -> PairedSensor:
    """The recorded pairing (its sealed password unsealed), on `port` when given."""
    from dataclasses import replace

    from limen.bio.finger.sensor import load_pairing
    from limen.errors import ConfigError

    paired = load_pairing(_sensor_file(), _box(rt))
    if paired is None:
        raise ConfigError("no paired fingerprint sensor: run `limen finger pair PORT` first")
    return paired if port is None else replace(paired, port=port)  # the module may come back on another port


@finger_app.command("enroll", hidden=True)  # the old spelling still works
@finger_app.command("enrol")  # one spelling across CLI, console and docs: "enrol"
def enroll(
    name: Annotated[str, typer.Argument(help="The person's name (an existing person gets a finger added).")],
    image: ImagesOption = None,
    sensor: SensorOption = None,
    captures: Annotated[int, typer.Option(help="Captures taken from --sensor.")] = 3,
    purpose: Annotated[str, typer.Option(help="Why the fingerprint is processed (accepted by the person).")] = "",
    retention_days: Annotated[int, typer.Option(help="How long the template may be kept, in days.")] = 0,
    consent: Annotated[bool, typer.Option("--consent", help="The person gave explicit consent.")] = False,
    actor: Annotated[str, typer.Option("--as", help="Owner/administrator performing the enrolment.")] = "cli",
    actor_pin: Annotated[str | None, typer.Option("--as-pin", envvar="LIMEN_ACTOR_PIN", hidden=True)] = None,
    position: Annotated[int, typer.Option("--position", min=0, max=10, help="Which finger (ISO/IEC 19794-2): 0 "
                                          "unknown, 1-5 right thumb…little, 6-10 left thumb…little.")] = 0,
    replace: Annotated[bool, typer.Option("--replace", help="NAME already has this finger position enrolled: "
                                          "replace it (else refused).")] = False,
) -> None:
    """Enrol a finger of NAME from images or a paired sensor (all or nothing; needs consent)."""
    data = enrol_finger(name, image, sensor, captures, purpose, retention_days, consent, actor, actor_pin, position,
                        replace)
    output(data, _("enrolled a finger of {name} ({id}) from {n} impression(s)").format(
        name=data["name"], id=data["user_id"], n=data["impressions"]))


def enrol_finger(name: str, images: list[Path] | None, sensor: str | None, captures: int, purpose: str,
                 retention_days: int, consent: bool, actor: str, actor_pin: str | None,
                 position: int = 0, replace: bool = False) -> dict[str, object]:
    """Enrol one finger of NAME (`limen finger enrol` and `limen enrol --finger`) through `limen.fingerprint.enrol`,
    the console's own path; what was enrolled."""
    from limen import fingerprint
    from limen.bio.finger.extract import template_files
    from limen.errors import BadRequest, ConsentRequired
    from limen.people import Consent
    from limen.runtime import open_runtime

    if not consent:
        raise ConsentRequired("biometric enrolment needs the person's explicit consent: add --consent, "
                              "--purpose and --retention-days")
    rt = open_runtime(STATE.settings)
    try:
        if fingerprint.on_sensor(rt) and (images or sensor is None):
            raise BadRequest("--finger/--sensor", 'finger_matching = "sensor": fingers are enrolled on the paired '
                                                  "module (--sensor PORT), not from images")
        if bool(images) == bool(sensor):
            raise BadRequest("--image/--sensor", "give images or a sensor, not both or neither")
        at = datetime.now(UTC)
        who = rt.authorise(actor, actor_pin, at)  # before anyone puts a finger on the module
        templates = []
        if images:
            with progress("extracting", len(images)) as advance:
                for p in images:
                    templates.extend(template_files(p))  # an exported finger's record: all its impressions
                    advance(1)
        result = fingerprint.enrol(rt, rt.access(), name, Consent(purpose, retention_days), who, at,
                                   finger=position, sensor=None if sensor is None else _paired(rt, sensor),
                                   templates=templates, captures=captures, wait_s=10.0, prompt=_prompt,
                                   replace=replace)
    finally:
        rt.close()
    data: dict[str, object] = {"user_id": result.user_id, "name": result.name, "impressions": result.impressions,
                               "new_person": result.new_person, "finger": result.finger}
    if result.page is not None:
        data["page"] = result.page
    return data


def _prompt(k: int, count: int) -> None:
    typer.echo(_("place the finger on the sensor ({k}/{count})").format(k=k, count=count), err=True)


def door_attempt(claim: str | None, image: Path | None, sensor: str | None, face: Capture | None = None,
                 pin: bool = False) -> Decision:
    """A finger (from an image file or the paired sensor), with a face captured with it if given, through
    the runtime's controller: policy, one audit record, the door — the door screen's path
    (`limen.fingerprint.read`, then `AccessController.finger`).  A finger taken as a first factor is completed
    by the PIN when `pin` (prompted, or LIMEN_PIN)."""
    from limen import fingerprint, people
    from limen.access.attempt import Source
    from limen.bio.finger.image import load_image
    from limen.decision import Reason
    from limen.errors import BadRequest
    from limen.runtime import open_runtime

    if (image is None) == (sensor is None):
        raise BadRequest("--finger/--sensor", "give a fingerprint image or a sensor, not both or neither")
    rt = open_runtime(STATE.settings)
    try:
        if fingerprint.on_sensor(rt) and face is not None:
            raise BadRequest("--face", 'finger_matching = "sensor" gives no score to fuse with a face: use --face '
                                       'alone, or finger_matching = "host"')
        if claim is not None:
            people.find(rt.conn, claim)  # an unknown name is an error (rc 1), not a refused attempt
        grey = None if image is None else load_image(image)
        paired = None if sensor is None else _paired(rt, sensor)
        if paired is not None:
            typer.echo(_("place the finger on the sensor"), err=True)
        probe = fingerprint.read(rt, paired, grey, wait_s=10.0)
        if face is not None:
            assert not isinstance(probe, fingerprint.SensorMatch)
            decision = rt.controller.face_and_finger(face, probe, claim=claim, source=Source.CLI)
        else:
            decision = rt.controller.finger(probe, claim=claim, source=Source.CLI, session="cli")
        if pin and decision.reason in (Reason.SECOND_FACTOR_MISSING, Reason.PIN_REQUIRED):
            typed = os.environ.get("LIMEN_PIN") or str(typer.prompt("PIN", hide_input=True, err=True))
            decision = rt.controller.keypad(typed, session="cli")
    finally:
        rt.close()
    return decision


@finger_app.command("verify")
def verify(
    name: Annotated[str, typer.Argument(help="Who the person claims to be.")],
    image: Annotated[Path | None, typer.Option("--image", help="A fingerprint image.")] = None,
    sensor: SensorOption = None,
    actor: Annotated[str, typer.Option("--as", help="Owner/administrator making the check.")] = "cli",
    actor_pin: Annotated[str | None, typer.Option("--as-pin", envvar="LIMEN_ACTOR_PIN", hidden=True)] = None,
) -> None:
    """1:1: is this finger the enrolled NAME's?  (A check, not a door attempt; exits 1 on no match.)

    It prints the comparison score, so once the lock has an owner it is theirs (or an administrator's) to run,
    and each check is recorded (who, whose reference, match or not; never the score).
    """
    from limen.audit.event import Event, EventKind
    from limen.bio.finger import enrolment
    from limen.runtime import open_runtime

    rt = open_runtime(STATE.settings)
    try:
        at = datetime.now(UTC)
        who = rt.authorise(actor, actor_pin, at)  # before any capture or comparison
        probe = _templates(rt, [image] if image else None, sensor, 1)[0]
        result = enrolment.verify(rt.conn, _references(rt), name, probe)
        rt.audit.append(Event(EventKind.PRIVACY, at, actor=who, subject=result.user_id, reason="finger checked 1:1",
                              outcome="match" if result.matched else "no match", source="cli"))
    finally:
        rt.close()
    data = {"user_id": result.user_id, "matched": result.matched, "score": round(result.score, 4),
            "threshold": result.threshold}
    verdict = _("match") if result.matched else _("no match")
    output(data, f"{verdict} (" + _("{kind} {score}, threshold {threshold}").format(
        kind=_("score"), score=f"{result.score:.3f}", threshold=f"{result.threshold:.3f}") + ")")
    if not result.matched:
        raise typer.Exit(1)


@finger_app.command("export")
def export(
    name: Annotated[str, typer.Argument(help="Whose enrolled finger (a name or a user id).")],
    out: Annotated[Path, typer.Option("--out", help="The ISO/IEC 19794-2:2005 record to write (.fmr).")],
    position: Annotated[int | None, typer.Option("--position", min=0, max=10, help="Which enrolled finger (ISO "
                                                 "position; needed when NAME has more than one).")] = None,
    actor: Annotated[str, typer.Option("--as", help="Owner/administrator exporting it.")] = "cli",
    actor_pin: Annotated[str | None, typer.Option("--as-pin", envvar="LIMEN_ACTOR_PIN", hidden=True)] = None,
) -> None:
    """Write an enrolled finger of NAME (all its impressions, as views of one record) as an ISO/IEC 19794-2:2005
    minutiae record, 0600.  Biometric data leaving the lock: once the lock has an owner it is theirs (or an
    administrator's) to run, and each export is recorded (who, whose finger; never the template).  Refused when
    fingers are matched on the sensor (the templates live on the module)."""
    from limen import fingerprint, people
    from limen.audit.event import Event, EventKind
    from limen.bio.finger import iso
    from limen.bio.finger.references import FINGER_NAMES
    from limen.errors import BadRequest, NotFound
    from limen.fsio import atomic_write
    from limen.runtime import open_runtime

    rt = open_runtime(STATE.settings)
    try:
        if fingerprint.on_sensor(rt):
            raise BadRequest("export", 'finger_matching = "sensor": the templates live on the module; '
                                       "there is nothing on the lock to export")
        at = datetime.now(UTC)
        who = rt.authorise(actor, actor_pin, at)  # before anything is unsealed
        person = people.find(rt.conn, name)
        references = _references(rt)
        enrolled = references.fingers(person.id)
        if not enrolled:
            raise NotFound(f"{person.name} has no finger enrolled on the lock")
        if position is None and len(enrolled) > 1:
            raise BadRequest("--position", f"{person.name} has fingers {enrolled} enrolled: choose one")
        finger = enrolled[0] if position is None else position
        if finger not in enrolled:
            raise NotFound(f"{person.name} has no {FINGER_NAMES[finger]} (position {finger}) enrolled")
        record = iso.encode_views(references._impressions(person.id, finger), finger_position=finger)
        impressions = len(iso.decode_views(record))
        atomic_write(out, record)                                   # 0600, all or nothing
        try:
            rt.audit.append(Event(EventKind.PRIVACY, at, actor=who, subject=person.id, source="cli",
                                  reason=f"finger exported (ISO/IEC 19794-2, position {finger})", outcome="written"))
        except BaseException:
            out.unlink(missing_ok=True)                             # no export the audit trail does not show
            raise
    finally:
        rt.close()
    data = {"user_id": person.id, "finger": finger, "impressions": impressions, "out": str(out)}
    output(data, _("wrote {n} impression(s) of {name}'s finger {finger} to {out}").format(
        n=impressions, name=person.name, finger=finger, out=out))


@finger_app.command("list")
def list_fingers() -> None:
    """People with an enrolled fingerprint (sealed on the lock, or on the module's pages: match on sensor)."""
    from limen import fingerprint
    from limen.people import by_id
    from limen.runtime import open_runtime

    rt = open_runtime(STATE.settings)
    try:
        on_module = fingerprint.sensor_people(rt)
        people = sorted(set(_references(rt).enrolled()) | set(on_module))
        rows: list[dict[str, object]] = [
            {"user_id": uid, "name": p.name if (p := by_id(rt.conn, uid)) else None,
             **({"sensor_pages": on_module[uid]} if uid in on_module else {})} for uid in people]
    finally:
        rt.close()

    def human() -> None:
        for r in rows:
            pages = r.get("sensor_pages")
            typer.echo(f"{r['user_id']}  {r['name']}" + (_("  (on the sensor: page(s) {pages})").format(
                pages=", ".join(str(p) for p in pages)) if isinstance(pages, list) else ""))

    output(rows, human)


@finger_app.command("pair")
def pair(port: Annotated[str, typer.Argument(help="Serial port of the module, e.g. /dev/ttyUSB0.")],
         current_password: Annotated[str, typer.Option(
             "--current-password", help="The module's current password, hex (factory modules: 00000000).")],
         replace: Annotated[bool, typer.Option("--replace", help="This lock is already paired: replace that module "
                                               "(recorded and raised as an alarm).")] = False,
         actor: Annotated[str, typer.Option("--as", help="Owner/administrator pairing the module.")] = "cli",
         actor_pin: Annotated[str | None, typer.Option("--as-pin", envvar="LIMEN_ACTOR_PIN", hidden=True)] = None,
         ) -> None:
    """Set a fresh random password on the module (its library emptied); keep it sealed under the vault with the
    module's identity.

    Once the lock has an owner, pairing is theirs (or an administrator's), proven by PIN, like `limen finger
    verify`; every pairing is recorded (who, port, module identity; never the password).  A lock already paired
    needs --replace: the new module is trusted from the next scan, so re-pairing is also raised as an alarm, and
    the old module's page map (match on sensor) is forgotten — its people enrol their finger again.
    """
    from limen.audit.event import Event, EventKind
    from limen.bio.finger.sensor import PAGES_FILE, R30xSensor, load_pages, load_pairing, save_pairing
    from limen.errors import BadRequest, Conflict, VaultError
    from limen.runtime import open_runtime

    try:
        current = int(current_password, 16)
    except ValueError as exc:
        raise BadRequest("--current-password", "8 hex digits") from exc
    rt = open_runtime(STATE.settings)
    try:
        at = datetime.now(UTC)
        if actor_pin is None and rt.has_owner() and actor != "cli" and sys.stdin.isatty():
            actor_pin = str(typer.prompt(f"PIN of {actor}", hide_input=True, err=True))
        who = rt.authorise(actor, actor_pin, at)  # before the module's password is changed
        box = _box(rt)
        previous: str | None = None
        forgotten = 0
        if _sensor_file().is_file():
            try:
                old = load_pairing(_sensor_file(), box)
                previous = "unknown" if old is None else old.identity
                forgotten = len(load_pages(STATE.settings.data_dir / PAGES_FILE, box, previous).pages)
            except VaultError:  # a damaged record or page map: replaced all the same (with --replace)
                previous, forgotten = previous or "unreadable", -1
            if not replace:
                raise Conflict(f"this lock is already paired with a fingerprint module ({previous}): re-pairing "
                               "makes the lock trust another module; add --replace to do it (it raises an alarm)")
        with R30xSensor(port) as module:
            pairing = module.pair(current)
        save_pairing(_sensor_file(), port, pairing, box)
        if previous is not None:  # the old module's pages would name people on the new one (all R30x: sn=none)
            (STATE.settings.data_dir / PAGES_FILE).unlink(missing_ok=True)
        rt.audit.append(Event(EventKind.CONFIG_CHANGE, at, actor=who, subject="fingerprint-sensor",
                              outcome="re-paired" if previous is not None else "paired",
                              reason="fingerprint sensor paired", source="cli",
                              data={"port": port, "identity": pairing.identity, "replaced": previous,
                                    "pages_forgotten": forgotten}))
        if previous is not None:
            rt.audit.raise_alarm("tamper", "critical", f"the fingerprint sensor was re-paired by {who}: the lock "
                                 f"now trusts the module on {port} ({pairing.identity})",
                                 subject="fingerprint-sensor", at=at)
    finally:
        rt.close()
    output({"port": port, "identity": pairing.identity, "replaced": previous},
           _("paired {identity} on {port}").format(identity=pairing.identity, port=port))


@finger_app.command("simulate")
def simulate(images: Annotated[list[Path], typer.Argument(help="Images presented, in order, at each capture.")]
             ) -> None:
    """Run a simulated R30x module on a pseudo-terminal (prints its port) until interrupted."""
    from limen.bio.finger.simulator import SimulatedR30x

    with SimulatedR30x(list(images)) as module:
        typer.echo(module.port)
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            signal.sigwait({signal.SIGINT, signal.SIGTERM})


def lab_finger(
    folders: Annotated[list[Path], typer.Argument(help="Folders of FFF_I images (one FVC database each).")],
    peer: Annotated[str, typer.Option(help="Also run an open matcher: none | afis-bozorth3 | afis-mcc.")] = "none",
    out: Annotated[Path, typer.Option(help="Folder for scores, figures, DET curve and HTML report.")] = Path(
        "lab-out"),
    protected: Annotated[bool, typer.Option("--protected", help="Also the protected fixed-length codes: "
                                            "accuracy loss, unlinkability, an inversion attempt.")] = False,
) -> None:
    """Fingerprint verification, FVC protocol: EER, FMR100, FMR1000, ZeroFMR, DET, times, HTML report."""
    from limen.errors import BadRequest
    from limen.lab import finger, finger_protection

    if peer not in ("none", "afis-bozorth3", "afis-mcc"):
        raise BadRequest("--peer", "none, afis-bozorth3 or afis-mcc")
    systems: list[finger.FingerSystem] = [finger.LimenFinger()]
    if peer != "none":
        systems.append(finger.AfisPeer(peer.removeprefix("afis-")))
    runs = []
    for folder in folders:
        samples = finger.fvc_samples(folder)
        for system in systems:
            with progress(f"{system.name} {folder.name}", len(samples)) as advance:
                runs.append(finger.run_fvc(system, folder.name, samples, lambda: advance(1)))
    files = finger.write_report(runs, out, os.getloadavg())
    rows = [r.figures() for r in runs]
    protection = [finger.protection_figures(f.name, finger.fvc_samples(f)) for f in folders] if protected else []
    spectral = [finger_protection.evaluate(f.name, *finger_protection.samples_of(f)) for f in folders
                ] if protected else []
    if protection:
        (out / "finger-protection.json").write_text(json.dumps(
            {"pooled_vector": [asdict(p) for p in protection], "spectral_code": [asdict(p) for p in spectral],
             "load_average": os.getloadavg()}, indent=2))
        files["protection"] = str(out / "finger-protection.json")

    def human() -> None:
        for r in rows:
            typer.echo(f"{r['system']:>14} {r['database']:>6}: EER {100 * float(r['eer']):5.2f} %  "  # type: ignore[arg-type]
                       f"ZeroFMR {100 * float(r['zero_fmr']):5.1f} %  FTE {r['fte']}  "  # type: ignore[arg-type]
                       f"extract {r['extract_ms_median']:.0f} ms  match {r['match_ms_median']:.2f} ms")
        for p in protection:
            typer.echo(f"{'pooled vector':>14} {p.database:>6}: EER {100 * p.eer_unprotected:5.2f} % → "
                       f"{100 * p.eer_protected_mean:5.2f} % (keyed sign projection), D↔sys "
                       f"{p.unlinkability['d_sys_two_devices_stored_templates']:.3f}")
        for q in spectral:
            inv = q.inversion
            typer.echo(f"{'spectral code':>14} {q.database:>6}: EER minutiae {100 * q.eer_minutiae:5.2f} %, "
                       f"code {100 * q.eer_unprotected:5.2f} % → protected {100 * q.eer_protected_mean:5.2f} % "
                       f"(worst {100 * q.eer_protected_worst:5.2f} %), D↔sys "
                       f"{q.unlinkability['d_sys_two_devices']:.3f} (floor "
                       f"{q.unlinkability['d_sys_estimator_floor_shuffled_labels']:.3f}, same key "
                       f"{q.unlinkability['d_sys_control_same_device']:.3f})"
                       + (f"; inversion: {inv.passes_protected}/{inv.targets} forged codes pass the code, "
                          f"{inv.passes_minutiae}/{inv.targets} the minutiae matcher" if inv else ""))
            c = q.cylinder_code
            if c is not None:
                cinv = c.inversion
                typer.echo(f"{'cylinder code':>14} {q.database:>6}: code {100 * c.eer_unprotected:5.2f} % → protected "
                           f"{100 * c.eer_protected_mean:5.2f} % (worst {100 * c.eer_protected_worst:5.2f} %), "
                           f"fused with minutiae {100 * c.eer_fused_with_minutiae:5.2f} %, D↔sys "
                           f"{c.unlinkability.get('d_sys_two_devices', float('nan')):.3f}; encode "
                           f"{c.encode_ms[0]:.1f} ms, compare {c.compare_ms[0]:.3f} ms"
                           + (f"; inversion: {cinv.passes_protected}/{cinv.targets} forged codes pass the code, "
                              f"{cinv.passes_minutiae}/{cinv.targets} the minutiae matcher" if cinv else ""))
        for k, v in files.items():
            typer.echo(f"  {k}: {v}")

    output({"runs": rows, "files": files, "protection": [asdict(p) for p in protection],
            "spectral_protection": [asdict(q) for q in spectral]}, human)
