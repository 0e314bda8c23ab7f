"""The lock's fingerprint, one way from every entry point: `limen enrol/verify/identify`, the door screen and the
owner console all go through here, wherever the setting `finger_matching` says a finger is matched.

    read(rt, sensor, image=None)     one finger to judge.  "host": the sensor's image (or, CLI only, an image
                                     file); "sensor": the module searches its own library → `SensorMatch`
    rt.controller.finger(probe, …)   the door attempt: evidence (`LockFingers`), policy, one audit record, the door
    enrol(rt, access, name, …)       one finger enrolled.  "host": impressions sealed under the vault; "sensor":
                                     a free page of the module's library, recorded in the sealed page map

`LockFingers` is the controller's `FingerSource` (built by `Runtime.fingers`) for either probe: an image goes
to Limen's matcher (`FingerRecognizer`), a `SensorMatch` is named by the page map *when the attempt is
judged* (a person erased since the search is nobody), and only by the map of the generation the module
searched under (a page that changed hands since is no match: the finger can be placed again).  A match on the
sensor is taken at the host's operating point (`FINGER_MATCH_DEFAULT`), never higher: the module's own score is
on its firmware's scale and is dropped.

A module that fails its password check (refused, not answered, answered garbage) or is not the paired one raises
a tamper alarm here (an ALARM record on the audit trail), then the error (`SensorAuthError`); so does a module
whose serial port is gone or fails (`SensorDisconnected`, a `SensorUnavailable`).  The caller refuses (CLI: one
line, exit 1; door screen: 503) and no attempt is judged.  Only a module that passed its check and saw no finger
is "no finger on the sensor" (`SensorNoFinger`).
"""

from __future__ import annotations

import contextlib
import hmac
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from limen import people
from limen import thresholds as T
from limen.access.attempt import FingerprintEvidence
from limen.audit.event import Event, EventKind
from limen.config import FingerMatching
from limen.decision import Reason
from limen.errors import BadRequest, ConfigError, NotFound, VaultError

if TYPE_CHECKING:
    from limen.access.store import AccessStore
    from limen.bio.finger.enrolment import FingerRecognizer
    from limen.bio.finger.sensor import PairedSensor, SensorPages
    from limen.bio.finger.template import FingerTemplate
    from limen.runtime import Runtime
    from limen.vault.secrets import SecretBox

NOT_FROM_IMAGES = ('finger_matching = "sensor": fingers are read, enrolled and matched by the paired module, '
                   "not from images")
NO_SENSOR = "no paired fingerprint sensor: run `limen finger pair PORT` first"
NO_MATCH_ON_SENSOR = "fingerprint: no match on the sensor"
MATCHED_ON_SENSOR = "fingerprint: matched on the sensor (the module's decision, no score)"
TAMPER_TEXT = "the fingerprint sensor failed its password check or is not the paired one"
PAGES_CHANGED = "fingerprint: the sensor's page map changed since its search: place the finger again"
GONE_TEXT = "the paired fingerprint sensor cannot be reached (serial port gone or failing: unplugged or cable cut?)"


@dataclass(frozen=True)
class SensorMatch:
    """Match on sensor: the library page the module found for the finger (None: no match) on module `identity`,
    and the page map's `generation` when the module searched (None: unreadable then); judged by that map only."""

    page: int | None
    identity: str
    generation: str | None


FingerProbe = np.ndarray | SensorMatch  # what the controller's finger path judges


@dataclass(frozen=True)
class FingerEnrolled:
    user_id: str
    name: str
    impressions: int
    new_person: bool
    finger: int
    page: int | None = None  # the module's library page (match on sensor)


def on_sensor(rt: Runtime) -> bool:
    return rt.settings.finger_matching is FingerMatching.SENSOR


# ---------------------------------------------------------------------- scan a finger


def read(rt: Runtime, sensor: PairedSensor | None, image: np.ndarray | None = None,
         wait_s: float = T.FINGER_SENSOR_WAIT_S) -> FingerProbe:
    """One finger to judge with `rt.controller.finger` (see the module docstring).  `image` (CLI: a file) is
    matched on the host; refused when fingers are matched on the sensor."""
    if image is not None:
        if on_sensor(rt):
            raise BadRequest("finger", NOT_FROM_IMAGES)
        return image
    if sensor is None:
        raise ConfigError(NO_SENSOR)
    with rt.sensor_lock, tamper_alarm(rt):
        if on_sensor(rt):
            try:  # under sensor_lock: no enrolment or erasure changes the map until the search is done
                generation: str | None = page_map(rt.conn, rt.settings.data_dir, sensor.identity).generation
            except (VaultError, ConfigError):
                generation = None  # judged as no match (the map cannot name anyone now either)
            return SensorMatch(sensor.search(wait_s), sensor.identity, generation)
        return sensor.capture(wait_s)


@contextlib.contextmanager
def tamper_alarm(rt: Runtime) -> Iterator[None]:
    """A module that fails its password check (refused, no answer, garbage) or is not the paired one, or whose
    serial port is gone: a tamper alarm (why, in its reason: never the password), then the error."""
    from limen.bio.finger.protocol import SensorAuthError, SensorDisconnected

    try:
        yield
    except SensorAuthError as exc:
        rt.audit.raise_alarm("tamper", "critical", f"{TAMPER_TEXT}: {exc}", subject="fingerprint-sensor",
                             at=rt.clock.now())
        raise
    except SensorDisconnected as exc:
        rt.audit.raise_alarm("tamper", "critical", f"{GONE_TEXT}: {exc}", subject="fingerprint-sensor",
                             at=rt.clock.now())
        raise


class LockFingers:
    """The controller's `FingerSource` for either probe (see the module docstring).  Not thread-safe."""

    def __init__(self, conn: sqlite3.Connection, host: FingerRecognizer, data_dir: Path,
                 now: Callable[[], datetime]) -> None:
        self.conn, self.host, self.data_dir, self.now = conn, host, data_dir, now

    def verify(self, name: str, probe: FingerProbe) -> FingerprintEvidence:
        if not isinstance(probe, SensorMatch):
            return self._consented(self.host.verify(name, probe), claimed=True)
        try:
            person = people.find(self.conn, name)
        except NotFound:
            return FingerprintEvidence(None, None, None, True, refusal=Reason.UNKNOWN_USER, detail="no such person")
        return self._on_sensor(probe, person.id)

    def identify(self, probe: FingerProbe) -> FingerprintEvidence:
        if not isinstance(probe, SensorMatch):
            return self._consented(self.host.identify(probe), claimed=False)
        return self._on_sensor(probe, None)

    def _consented(self, evidence: FingerprintEvidence, claimed: bool) -> FingerprintEvidence:
        """A host match of a person whose consent ran out is no match (retention erases their references only at
        its next pass), as on the module."""
        from limen.bio.templates import Modality

        if not evidence.matched or evidence.user_id in people.consents_running(self.conn, Modality.FINGERPRINT,
                                                                                self.now()):
            return evidence
        return FingerprintEvidence(evidence.user_id if claimed else None, None, None, True,
                                   evidence.sensor_liveness, detail="no fingerprint matched")

    def _on_sensor(self, match: SensorMatch, claimed: str | None) -> FingerprintEvidence:
        from limen.bio.templates import Modality

        try:
            pages = page_map(self.conn, self.data_dir, match.identity)
        except (VaultError, ConfigError):
            return FingerprintEvidence(claimed, None, None, True, refusal=Reason.VAULT_ERASED,
                                       detail="the fingerprint page map cannot be opened (vault erased or not open)")
        if match.page is not None and (match.generation is None
                                       or not hmac.compare_digest(pages.generation, match.generation)):
            # the map changed since the module searched (an erasure, an enrolment): its page may be another's now
            return FingerprintEvidence(claimed, None, None, True, detail=PAGES_CHANGED)
        owner = None if match.page is None else pages.owner_of(match.page, match.identity)
        person = None if owner is None else people.by_id(self.conn, owner)
        if (person is None or (claimed is not None and claimed != person.id)
                # retention reaches the module only at its next pass: a page whose consent ran out is nobody's
                or person.id not in people.consents_running(self.conn, Modality.FINGERPRINT, self.now())):
            return FingerprintEvidence(claimed, None, None, True, detail=NO_MATCH_ON_SENSOR)
        return FingerprintEvidence(person.id, T.FINGER_MATCH_DEFAULT, T.FINGER_MATCH_DEFAULT, True,
                                   detail=MATCHED_ON_SENSOR)


def page_map(conn: sqlite3.Connection, data_dir: Path, identity: str) -> SensorPages:
    """The sealed page map (an empty one for module `identity` when none is recorded); `ConfigError` without
    an open vault, `VaultError` if the file was altered."""
    from limen.bio.finger.sensor import PAGES_FILE, load_pages
    from limen.vault.secrets import box_for

    box = box_for(conn)
    if box is None:
        raise ConfigError("fingerprints need the template vault; it is not open")
    return load_pages(data_dir / PAGES_FILE, box, identity)


def sensor_pages(rt: Runtime, user_id: str) -> list[int]:
    """`user_id`'s pages on the lock's module (match on sensor); [] without a module, a page map or a vault."""
    return sensor_people(rt).get(user_id, [])


def sensor_people(rt: Runtime) -> dict[str, list[int]]:
    """Who has a finger on the lock's module, and on which pages; {} without a module, a page map or a vault."""
    sensor = rt.finger_sensor()
    if sensor is None:
        return {}
    try:
        pages = page_map(rt.conn, rt.settings.data_dir, sensor.identity)
    except (VaultError, ConfigError):
        return {}
    if not hmac.compare_digest(pages.identity, sensor.identity):
        return {}
    return {uid: pages.of(uid) for uid in sorted(set(pages.pages.values()))}


# ---------------------------------------------------------------------- enrol a finger


def _quiet(k: int, n: int) -> None:
    """Nothing to tell before capture `k` of `n` (the CLI prints "place the finger…")."""


def enrol(rt: Runtime, access: AccessStore, name: str, consent: people.Consent, actor: str, at: datetime, *,
          finger: int = 0, sensor: PairedSensor | None = None, templates: Sequence[FingerTemplate] = (),
          captures: int = T.FINGER_CONSOLE_CAPTURES, wait_s: float = T.FINGER_SENSOR_WAIT_S,
          prompt: Callable[[int, int], None] = _quiet,  # before capture k of n, with the module held
          serialised: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
          replace: bool = False) -> FingerEnrolled:
    """Enrol one finger of NAME (a new person, or an existing one by name or id), with consent, by `actor`
    (already authorised by the caller), all or nothing.  "host": `templates` (from image files or uploads),
    else `captures` captures of `sensor`; "sensor": two captures on `sensor`'s own library.  The storage and
    access changes run inside `serialised()` (the service's lock); sensor waits run outside it.  On a lock
    with an owner, the person's Matter credential `Fingerprint` is linked.  "host": a finger position already
    enrolled is refused unless `replace`."""
    from limen.bio.finger import enrolment
    from limen.bio.finger.extract import extract
    from limen.bio.finger.references import FINGER_NAMES, open_references

    consent = consent.validated()
    if not 0 <= finger < len(FINGER_NAMES):
        raise BadRequest("finger", f"a finger position 0-{len(FINGER_NAMES) - 1} (ISO/IEC 19794-2)")
    if on_sensor(rt):
        if templates:
            raise BadRequest("images", NOT_FROM_IMAGES)
        if sensor is None:
            raise ConfigError(NO_SENSOR)
        return _enrol_on_sensor(rt, access, sensor, name, consent, actor, at, finger, wait_s, prompt, serialised)
    impressions = list(templates)
    if not impressions:
        if sensor is None:
            raise BadRequest("images", "give images of the finger: no fingerprint sensor is paired with this lock")
        for k in range(captures):
            with rt.sensor_lock, tamper_alarm(rt):
                prompt(k + 1, captures)
                image = sensor.capture(wait_s)
            impressions.append(extract(image, source=f"sensor capture {k + 1}"))
    with serialised():
        result = enrolment.enrol(rt.conn, open_references(rt.conn, rt.settings.data_dir), rt.audit, name,
                                 impressions, consent, actor, at, finger=finger, replace=replace)
        _link(rt, access, result.user_id, actor, at)
    return FingerEnrolled(result.user_id, result.name, result.impressions, result.new_person, result.finger)


def _enrol_on_sensor(rt: Runtime, access: AccessStore, sensor: PairedSensor, name: str, consent: people.Consent,
                     actor: str, at: datetime, finger: int, wait_s: float, prompt: Callable[[int, int], None],
                     serialised: Callable[[], AbstractContextManager[object]]) -> FingerEnrolled:
    """Two captures → a model stored on the lowest page this lock has not used → page ↔ person in the sealed
    page map.  A failure after the module stored the finger deletes its page again.

    The page is chosen under `rt.sensor_lock` from the map as it is then and stays reserved
    (`rt.sensor_pages_reserved`) until the map records it, under the same lock: two enrolments at once never
    pick the same page (one finger stored over another's, named as the other person)."""
    from limen.bio.finger.sensor import PAGES_FILE, save_pages
    from limen.bio.templates import Modality
    from limen.db import transaction
    from limen.vault.secrets import box_for

    data_dir = rt.settings.data_dir
    with serialised():
        box = box_for(rt.conn)
    if box is None:
        raise ConfigError("fingerprints need the template vault; it is not open")
    with rt.sensor_lock, tamper_alarm(rt), sensor.open() as module:
        try:
            page = _pages_now(data_dir, box, sensor).free_page(module.system_parameters().library_size,
                                                               taken=rt.sensor_pages_reserved)
        except ValueError as exc:
            raise BadRequest("finger", str(exc)) from None
        rt.sensor_pages_reserved.add(page)
        try:
            prompt(1, 2)  # the module takes both captures itself
            module.enroll_on_sensor(page, wait_s)
        except BaseException:
            rt.sensor_pages_reserved.discard(page)
            raise
    person: people.Person | None = None
    created = False
    try:
        with serialised():
            try:
                person = people.find(rt.conn, name)
            except NotFound:
                created = True
            with transaction(rt.conn):
                if person is None:
                    person = people.new_person(rt.conn, name, actor, at)
                people.record_consent(rt.conn, person, Modality.FINGERPRINT, consent, actor, at)
                people.record_enrolment(rt.conn, person, Modality.FINGERPRINT, 2, actor, at)
            with rt.sensor_lock:  # as it is now (an erasure may have run since), and no other writer meanwhile
                save_pages(data_dir / PAGES_FILE, _pages_now(data_dir, box, sensor).with_page(page, person.id), box)
                rt.sensor_pages_reserved.discard(page)
    except BaseException:
        with rt.sensor_lock:
            with contextlib.suppress(Exception):
                sensor.delete(page)
            rt.sensor_pages_reserved.discard(page)
        if created and person is not None:
            with serialised(), contextlib.suppress(Exception):
                people.delete(rt.conn, person)
        raise
    with serialised():
        rt.audit.append(Event(EventKind.ENROLMENT, at, actor=actor, subject=person.id, outcome="enrolled",
                              source="fingerprint", data={"samples": 2, "purpose": consent.purpose,
                                                          "retention_days": consent.retention_days,
                                                          "finger": finger, "on_sensor": True, "page": page}))
        _link(rt, access, person.id, actor, at)
    return FingerEnrolled(person.id, person.name, 2, created, finger, page)


def _pages_now(data_dir: Path, box: SecretBox, sensor: PairedSensor) -> SensorPages:
    """The sealed page map as it is now; an empty one for a newly paired module (the old one's pages are
    unreachable)."""
    from limen.bio.finger.sensor import PAGES_FILE, SensorPages, load_pages

    pages = load_pages(data_dir / PAGES_FILE, box, sensor.identity)
    return pages if hmac.compare_digest(pages.identity, sensor.identity) else SensorPages(sensor.identity)


def _link(rt: Runtime, access: AccessStore, user_id: str, actor: str, at: datetime) -> None:
    """An access row for the person and, on a lock with an owner, Matter's `Fingerprint` credential (a lock
    without an owner yet has nobody who may change credentials: the finger is enrolled, the link comes later)."""
    from limen.access.model import CredentialType
    from limen.access.store import ensure_user

    ensure_user(rt.conn, user_id, actor, at)
    if rt.has_owner() and not any(c.type is CredentialType.FINGERPRINT and not c.revoked
                                  for c in access.credentials(user_id)):
        access.add_credential(user_id, CredentialType.FINGERPRINT, actor, at)


__all__ = ["FingerEnrolled", "FingerProbe", "LockFingers", "SensorMatch", "enrol", "on_sensor", "page_map", "read",
           "sensor_pages", "sensor_people", "tamper_alarm"]
