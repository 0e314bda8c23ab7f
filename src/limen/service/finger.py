"""The fingerprint in the lock service: the door screen's "place your finger" and the console's fingers.

    GET  /kiosk/finger                            the door screen's finger page (a form: no script needed)
    POST /kiosk/finger                            the page's form: one finger from the lock's sensor
    POST /api/kiosk/finger                        the same as JSON (paired door screens only)
    GET  /owner/users/{id}/fingers                a person's enrolled fingers and "add a finger"
    POST /owner/users/{id}/fingers                enrol a finger from the sensor or from uploaded images
    POST /owner/users/{id}/fingers/{n}/remove     remove one finger (its sealed impressions are deleted)
    POST /owner/users/{id}/fingers/page/{p}/remove  remove a finger enrolled on the sensor (its page is deleted)

The routes only translate: reading a finger, judging it and enrolling one are `limen.fingerprint`'s (the CLI's
path too), which honours `finger_matching` — "host": the sensor's image is matched by Limen; "sensor": the
module enrols on and searches its own library, and the sealed page map names the person.

A finger is added only with the password (+ TOTP) in the same form (`pages.confirm_owner`): a finger is a way
in, as a PIN is, and one added to an owner opens the door as the owner (a stolen console cookie alone adds none).
An owner's or administrator's finger is removed only with it too (`pages.confirm_owner_for`).

The door path reads fingers only from the lock's sensor (`FingerDesk`): the
paired module (`limen finger pair`, read at each use), or the simulator that
`limen serve --simulate-sensors` starts.  An image uploaded at the door is
refused unless the sensor is simulated, in which case it is presented to the
simulated module and captured back through its serial protocol.  A sensor
that fails its password check or is not the paired one raises an alarm and
the door stays shut.  The finger goes through `LockService.unlock_finger`
(the controller: policy, one audit record, the door).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import cv2
import numpy as np
from fastapi import APIRouter, Depends, FastAPI, File, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload

from limen import fingerprint, people
from limen import thresholds as T
from limen.access.store import AccessStore
from limen.audit.event import Event, EventKind
from limen.bio.finger.extract import extract
from limen.bio.finger.image import checked_image
from limen.bio.finger.protocol import SensorError, SensorNoFinger
from limen.bio.finger.references import FINGER_NAMES, FingerReferences, open_references
from limen.bio.finger.sensor import PAIRING_FILE, PairedSensor, R30xSensor, SensorErasure
from limen.bio.finger.simulator import SimulatedR30x
from limen.bio.finger.template import FingerTemplate
from limen.errors import BadImage, BadRequest, ConfigError, SensorUnavailable, VaultError
from limen.fingerprint import FingerProbe
from limen.people import Consent
from limen.runtime import Runtime
from limen.service.api import ERRORS, KioskAnswer, door_details, kiosk_session
from limen.service.auth import Caller, check_csrf, ctx_of, kiosk_allowed, page_caller, unlock_rate
from limen.service.i18n import choose, door_message
from limen.service.lockservice import KioskResult
from limen.service.pages import back, confirm_owner, confirm_owner_for, is_privileged, render

router = APIRouter()

NO_SENSOR = "no fingerprint sensor is paired with this lock: use your PIN, or the owner pairs one"
SENSOR_FAILED = "the fingerprint sensor is unavailable: use your PIN or your key"
NO_FINGER = "no finger on the sensor: place your finger and try again"


class FingerDesk:
    """The lock's fingerprint sensor as the service uses it (see the module docstring).  Thread-safe: one
    exchange with the module at a time (`Runtime.sensor_lock`).  Reading and enrolling are `limen.fingerprint`'s,
    for every entry point; this desk only lays uploaded images on a simulated module first."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.simulator: SimulatedR30x | None = None

    def simulate(self) -> SimulatedR30x:
        """Start a simulated module on a pty, pair it (a fresh random password, real protocol) and make it the
        lock's module for this process.  Refused on a lock paired with a real module (its page map and pairing
        stay that module's)."""
        if (self.rt.settings.data_dir / PAIRING_FILE).is_file():
            raise ConfigError("this lock is paired with a fingerprint module: --simulate-sensors is for a lock "
                              "without one (use another data directory)")
        simulator = SimulatedR30x()
        try:
            with R30xSensor(simulator.port) as module:
                pairing = module.pair()
        except BaseException:
            simulator.close()
            raise
        self.simulator = simulator
        self.rt.use_finger_sensor(PairedSensor(simulator.port, pairing.password, pairing.identity))
        return simulator

    def sensor(self) -> PairedSensor | None:
        return self.rt.finger_sensor()

    def read(self, presented: np.ndarray | None = None, wait_s: float = T.FINGER_SENSOR_WAIT_S) -> FingerProbe:
        """One finger from the sensor, read as `finger_matching` says (`fingerprint.read`); `presented`
        (simulation only) is first laid on the simulated module."""
        sensor = self._sensor(presented is not None)
        with self.rt.sensor_lock:  # what is laid on the module is what this scan reads
            if presented is not None and self.simulator is not None:
                self.simulator.present(presented)
            return fingerprint.read(self.rt, sensor, wait_s=wait_s)

    def enrol(self, access: AccessStore, user_id: str, images: list[np.ndarray], consent: Consent, actor: str,
              at: datetime, finger: int, serialised: Callable[[], threading.Lock]) -> fingerprint.FingerEnrolled:
        """One finger enrolled by `fingerprint.enrol`: from uploaded images (matched on the host), else from the
        sensor (host: FINGER_CONSOLE_CAPTURES captures; sensor: its library, two captures).  On a simulated
        module matching on itself, the uploaded images are laid on it instead."""
        sensor = self.sensor()
        templates: list[FingerTemplate] = []
        present: list[np.ndarray] = []
        if images and fingerprint.on_sensor(self.rt) and self.simulator is not None:
            if len(images) < 2:
                raise BadRequest("images", "the simulated module takes two impressions of the finger")
            present = images[:2]
        elif images:
            templates = [extract(image, source=f"impression {k}") for k, image in enumerate(images, 1)]
        simulator = self.simulator

        def lay(k: int, n: int) -> None:  # called with the module held, before its captures
            if k == 1 and simulator is not None:
                for image in present:
                    simulator.present(image)

        return fingerprint.enrol(self.rt, access, user_id, consent, actor, at, finger=finger, sensor=sensor,
                                 templates=templates, prompt=lay, serialised=serialised)

    def _sensor(self, presented: bool) -> PairedSensor:
        sensor = self.sensor()
        if sensor is None:
            raise HTTPException(409, NO_SENSOR)  # the lock has no sensor: not a failure of the service
        if presented and self.simulator is None:
            raise HTTPException(400, "this lock reads fingers from its sensor, not from uploaded images")
        return sensor

    def close(self) -> None:
        if self.simulator is not None:
            self.simulator.close()


def install(app: FastAPI) -> None:
    """Add the fingerprint routes and the lock's `FingerDesk` (`app.state.fingers`) to the service."""
    app.state.fingers = FingerDesk(app.state.ctx.runtime)
    app.include_router(router)


def desk_of(request: Request) -> FingerDesk:
    desk: FingerDesk = request.app.state.fingers
    return desk


def _has_sensor(desk: FingerDesk) -> bool:
    """Whether the pages offer the sensor (an unreadable pairing is offered: a scan then says it is unavailable)."""
    try:
        return desk.sensor() is not None
    except (VaultError, ConfigError):
        return True


# ---------------------------------------------------------------------- the door


def _decode(data: bytes, name: str) -> np.ndarray:
    """An uploaded image as 8-bit grey, checked like a capture (`BadImage` otherwise)."""
    if not data or len(data) > T.MAX_IMAGE_BYTES:
        raise BadImage(name, "empty or too large")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise BadImage(name, "not a decodable image")
    return checked_image(image, name)


def _scan(request: Request, presented: np.ndarray | None) -> KioskResult:
    """A finger from the sensor (`fingerprint.read`: its image, or the module's own search) through the
    controller; sensor faults keep the door shut with a 503 (a module that fails its password check — refused,
    not answered, garbage — or whose port is gone: a tamper alarm too).  Only a module that passed its check
    and saw no finger is a 400 "no finger"."""
    try:
        probe = desk_of(request).read(presented)
    except SensorNoFinger:
        raise HTTPException(400, NO_FINGER) from None
    except (SensorError, SensorUnavailable, ConfigError, VaultError):  # the alarm is raised by fingerprint.read
        raise HTTPException(503, SENSOR_FAILED) from None
    return ctx_of(request).lock.unlock_finger(probe, kiosk_session(request))


async def _presented(request: Request, upload: UploadFile | StarletteUpload | None) -> np.ndarray | None:
    if upload is None or not upload.filename:
        return None
    return _decode(await upload.read(), upload.filename)


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Sensor waits and extraction run off the event loop."""
    return await run_in_threadpool(fn, *args)


class FingerAnswer(KioskAnswer):
    awaiting_second_factor: bool = Field(description="A recognised finger (or the face it completed) waits for "
                                         "this screen's PIN/code or face.")


@router.post("/api/kiosk/finger", response_model=FingerAnswer, response_model_exclude_none=True, tags=["kiosk"],
             responses=ERRORS, dependencies=[Depends(kiosk_allowed), Depends(unlock_rate)])
async def kiosk_finger(request: Request,
                       image: Annotated[UploadFile | None, File(description="Simulated sensor only: the image "
                                                                "presented to it.")] = None) -> dict[str, Any]:
    """A finger on the lock's sensor: sensor → minutiae → access engine (a face held for this screen is
    completed by it) → door + audit.  Waits up to FINGER_SENSOR_WAIT_S for the finger (400 if none).  With
    finger_matching = "sensor" the module's own search names the finger instead of Limen's matcher."""
    result = await _in_thread(_scan, request, await _presented(request, image))
    return {"opened": result.opened, "message": door_message(result, choose(request)),
            "awaiting_second_factor": result.awaiting_pin, **door_details(result)}


@router.get("/kiosk/finger", response_class=HTMLResponse)
def kiosk_finger_page(request: Request) -> Response:
    return render(request, "kiosk_finger.html", simulated=desk_of(request).simulator is not None,
                  sensor=_has_sensor(desk_of(request)))


@router.post("/kiosk/finger", response_class=HTMLResponse, dependencies=[Depends(kiosk_allowed),
                                                                          Depends(unlock_rate)])
async def kiosk_finger_form(request: Request) -> Response:
    form = await request.form()
    upload = form.get("image")
    presented = await _presented(request, upload if isinstance(upload, StarletteUpload) else None)
    desk = desk_of(request)
    try:
        result: KioskResult = await _in_thread(_scan, request, presented)
    except HTTPException as exc:
        return render(request, "kiosk_finger.html", exc.status_code, simulated=desk.simulator is not None,
                      sensor=_has_sensor(desk), message=str(exc.detail), opened=False)
    return render(request, "kiosk_finger.html", simulated=desk.simulator is not None, sensor=True,
                  message=door_message(result, choose(request)), opened=result.opened,
                  awaiting=result.awaiting_pin)


# ---------------------------------------------------------------------- the owner console


def _references(request: Request) -> FingerReferences:
    ctx = ctx_of(request)
    return open_references(ctx.runtime.conn, ctx.settings.data_dir)


def _person(request: Request, user_id: str) -> people.Person:
    person = people.by_id(ctx_of(request).runtime.conn, user_id)
    if person is None:
        raise HTTPException(404, "no such person")
    return person


@router.get("/owner/users/{user_id}/fingers", response_class=HTMLResponse)
def fingers_page(request: Request, user_id: str, done: str = "",
                 caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    return _fingers(request, caller, user_id, notice=_NOTICES.get(done, ""))


_NOTICES = {"finger-added": "Finger added.", "finger-removed": "Finger removed; its sealed impressions are erased."}


def _fingers(request: Request, caller: Caller, user_id: str, code: int = 200, **values: Any) -> Response:
    person = _person(request, user_id)
    desk = desk_of(request)
    try:
        enrolled = _references(request).fingers(user_id)
        vault = True
    except ConfigError:
        enrolled, vault = [], False
    rows = [{"position": p, "name": FINGER_NAMES[p]} for p in enrolled]
    try:
        pages = fingerprint.sensor_pages(ctx_of(request).runtime, user_id)
    except (SensorError, ConfigError, VaultError):  # an altered pairing: listed as none, refused at the door
        pages = []
    return render(request, "person_fingers.html", code, caller=caller, person=person, fingers=rows, vault=vault,
                  names=list(enumerate(FINGER_NAMES)), sensor=_has_sensor(desk), pages=pages,
                  on_sensor=fingerprint.on_sensor(ctx_of(request).runtime),
                  simulated=desk.simulator is not None, min_images=T.FINGER_ENROL_MIN_IMPRESSIONS,
                  max_images=T.FINGER_ENROL_MAX_IMPRESSIONS, guarded=is_privileged(request, user_id), **values)


@router.post("/owner/users/{user_id}/fingers", response_class=HTMLResponse)
async def finger_add(request: Request, user_id: str, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    form = await request.form()
    assert caller.session is not None
    check_csrf(caller.session, str(form.get("csrf", "")))
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    uploads = [u for u in form.getlist("images") if isinstance(u, StarletteUpload) and u.filename]
    person = _person(request, user_id)
    try:
        confirm_owner(request, caller, values)  # a finger is a way in (an owner's opens as the owner)
        position = _position(values.get("position", "0"))
        consent = _consent(values)
        images = [_decode(await u.read(), u.filename or "upload") for u in uploads[:T.FINGER_ENROL_MAX_IMPRESSIONS + 1]]
        if len(images) > T.FINGER_ENROL_MAX_IMPRESSIONS:
            raise BadRequest("images", f"at most {T.FINGER_ENROL_MAX_IMPRESSIONS} images of one finger")
        await _in_thread(_enrol, request, caller, person, images, consent, position)
    except (BadImage, BadRequest, ConfigError) as exc:
        return _fingers(request, caller, user_id, 400, error=str(exc), form=values)
    except HTTPException as exc:
        return _fingers(request, caller, user_id, exc.status_code, error=str(exc.detail), form=values)
    return back(f"/owner/users/{user_id}/fingers", "finger-added")


def _position(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) < len(FINGER_NAMES):
        raise BadRequest("position", "choose which finger")
    return int(text)


def _consent(values: dict[str, str]) -> Consent:
    if values.get("consent") != "yes":
        raise BadRequest("consent", "the person must give explicit consent (tick the consent box)")
    days = values.get("retention_days", "").strip()
    if not days.isdigit() or len(days) > 5:
        raise BadRequest("retention_days", "how many days the fingerprint may be kept")
    return Consent(values.get("purpose", "").strip(), int(days)).validated()


def _enrol(request: Request, caller: Caller, person: people.Person, images: list[np.ndarray], consent: Consent,
           position: int) -> None:
    """`fingerprint.enrol` through the desk (the lock's sensor, or the uploaded images); sensor faults are a
    refusal in words."""
    ctx = ctx_of(request)
    try:
        desk_of(request).enrol(ctx.lock.access, person.id, images, consent, caller.actor, ctx.clock.now(), position,
                               ctx.lock.serialised)
    except SensorNoFinger as exc:
        raise BadRequest("sensor", f"{exc}: place the finger on the sensor") from None
    except (SensorError, SensorUnavailable) as exc:
        raise BadRequest("sensor", str(exc)) from None


async def _confirmed_person(request: Request, caller: Caller, user_id: str) -> people.Person:
    """The person a removal form names, once its CSRF token and (for an owner or administrator) the owner's
    password are checked."""
    form = await request.form()
    assert caller.session is not None
    check_csrf(caller.session, str(form.get("csrf", "")))
    person = _person(request, user_id)
    confirm_owner_for(request, caller, {k: v for k, v in form.items() if isinstance(v, str)}, user_id=person.id)
    return person


@router.post("/owner/users/{user_id}/fingers/{position}/remove")
async def finger_remove(request: Request, user_id: str, position: int,
                        caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    person = await _confirmed_person(request, caller, user_id)
    ctx = ctx_of(request)
    with ctx.lock.serialised():
        removed = _references(request).delete(person.id, _position(str(position)))
        ctx.runtime.audit.append(Event(EventKind.PRIVACY, ctx.clock.now(), actor=caller.actor, subject=person.id,
                                       reason="finger removed", source="api",
                                       data={"finger": position, "templates_erased": removed}))
    return back(f"/owner/users/{user_id}/fingers", "finger-removed")


@router.post("/owner/users/{user_id}/fingers/page/{page}/remove")
async def finger_page_remove(request: Request, user_id: str, page: int,
                             caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    """Remove a finger enrolled on the sensor (match on sensor): its page on the module and in the page map."""
    person = await _confirmed_person(request, caller, user_id)
    ctx = ctx_of(request)

    def erase() -> SensorErasure:
        with ctx.lock.serialised():
            return ctx.runtime.erase_sensor_page(person.id, page, caller.actor, ctx.clock.now(), source="api")

    result: SensorErasure = await _in_thread(erase)
    if not result.erased:
        error = result.detail or "no such finger on the sensor"
        return _fingers(request, caller, user_id, 409 if result.failed else 404,
                        error=f"the finger was not removed from the sensor: {error}")
    return back(f"/owner/users/{user_id}/fingers", "finger-removed")


__all__ = ["FingerDesk", "install", "router"]
