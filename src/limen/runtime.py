"""The composition root: the one place that opens the lock's state and builds its parts.

`open_runtime(settings)` opens, in this order: the template vault (finishing an
interrupted crypto-erase first), the SQLite store (migrations applied), the
audit log; then it finishes an interrupted tamper response and enforces
consent retention.  On first use, `runtime.controller` builds the door chosen
in the settings (`door = "simulated" | "gpio"`), wraps it in the tamper guard
(`tamper.guard_lock`: no unlock during a response or while one is pending in
the journal) and the `AccessController` over the recognizer, with the
assurance rule from the settings.  `limen serve` also calls `start_monitor()`,
which polls the configured tamper sources (GPIO switches and shock sensors,
the supply voltage, the watchdog's heartbeat files).  Other commands do not
start it: GPIO lines are claimed by one process, and a CLI command beside a
running `limen serve` must not fight the service for them.  Every `limen` command and the
service use this; no other module opens the database or the audit log for
the lock's work (the tamper responder and the vault open their own handles
only on the recovery path this module calls).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from limen import people
from limen.access.directory import has_owner
from limen.access.policy import AssuranceRule
from limen.access.store import AccessStore
from limen.audit.event import Event, EventKind
from limen.clock import Clock, SystemClock
from limen.config import DoorKind, Settings
from limen.db import connect, open_db
from limen.door.actuator import LockActuator
from limen.errors import BadRequest, LimenError, VaultErased
from limen.privacy.retention import enforce_retention
from limen.privacy.scrub import forget_deleted, secure

if TYPE_CHECKING:  # the face pipeline, PAD and the door path load on first use (`limen status` needs none)
    from limen.audit.log import AuditLog
    from limen.bio.face import FaceEngine
    from limen.bio.face.detect import Box
    from limen.bio.finger.references import ReferenceIndex
    from limen.bio.finger.sensor import PairedSensor, SensorErasure
    from limen.capture import Capture
    from limen.controller import AccessController
    from limen.fingerprint import LockFingers
    from limen.pad.contract import Purpose
    from limen.pad.fusion import PadVerdict
    from limen.recognition import FaceRecognizer
    from limen.tamper.monitor import TamperMonitor
    from limen.tamper.sources import TamperSource
    from limen.vault.store import VaultTemplateStore


@dataclass
class Runtime:
    """The lock's open state.  Close it once (`close()`); not thread-safe (the service serialises)."""

    settings: Settings
    conn: sqlite3.Connection
    store: VaultTemplateStore  # the vault: TemplateStore + status, zeroize, forget_if_erased
    audit: AuditLog  # the device's audit chain (an AuditSink, with reading and verification)
    clock: Clock = field(default_factory=SystemClock)
    door_override: LockActuator | None = None
    _controller: AccessController | None = field(default=None, init=False, repr=False)
    _monitor: TamperMonitor | None = field(default=None, init=False, repr=False)
    _extra: list[sqlite3.Connection] = field(default_factory=list, init=False, repr=False)
    _engine: FaceEngine | None = field(default=None, init=False, repr=False)
    _finger_index: ReferenceIndex | None = field(default=None, init=False, repr=False)  # fingers' 1:N, in memory
    _sensor_wiper: object | None = field(default=None, init=False, repr=False)  # tamper: empties the module
    _sensor_override: PairedSensor | None = field(default=None, init=False, repr=False)  # a simulated module
    # one exchange with the fingerprint module at a time (a scan, an enrolment's captures, an erasure): the
    # serial line carries one conversation; it may be taken under the service's lock, never the other way round
    sensor_lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    # pages an enrolment on the module has stored or is storing but the sealed page map does not list yet (held
    # from the page's choice to the map's save, both under `sensor_lock`; `limen.fingerprint`)
    sensor_pages_reserved: set[int] = field(default_factory=set, init=False, repr=False)

    def connection(self) -> sqlite3.Connection:
        """Another connection to limen.db, for a part with its own threads (the service's accounts); closed here."""
        conn = secure(connect(self.settings.db_path))  # deleted rows are zeroed (privacy.scrub)
        self._extra.append(conn)
        return conn

    @property
    def engine(self) -> FaceEngine:
        """The face pipeline (loaded once, on first use)."""
        if self._engine is None:
            from limen.bio.face import FaceEngine

            self._engine = FaceEngine(self.settings.embed_backend)
        return self._engine

    def recognizer(self) -> FaceRecognizer:
        from limen.recognition import FaceRecognizer

        pad = partial(pad_check, models_dir=self.settings.models_dir)  # MiniFASNet's imported weights
        return FaceRecognizer(self.conn, self.store, self.audit, engine=self.engine, pad=pad, clock=self.clock)

    def fingers(self) -> LockFingers:
        """The door's fingerprint evidence: an image against the sealed references (opened at each comparison),
        a match on the sensor through the sealed page map (`limen.fingerprint`)."""
        from limen.bio.finger.enrolment import FingerRecognizer
        from limen.bio.finger.references import open_references
        from limen.fingerprint import LockFingers

        host = FingerRecognizer(self.conn, partial(open_references, self.conn, self.settings.data_dir),
                                index=self.finger_index)
        return LockFingers(self.conn, host, self.settings.data_dir, self.clock.now)

    @property
    def finger_index(self) -> ReferenceIndex:
        """The door's 1:N finger index, held between attempts (built at the first search, kept up to date with
        the sealed files); a tamper response's memory scrub wipes it, and so does `close`."""
        if self._finger_index is None:
            from limen.bio.finger.references import ReferenceIndex
            from limen.tamper import memory

            self._finger_index = ReferenceIndex()
            memory.register(self._finger_index)  # weakly held there: the runtime keeps it
        return self._finger_index

    def finger_sensor(self) -> PairedSensor | None:
        """The lock's fingerprint module: the one `use_finger_sensor` gave (a simulated module), else the recorded
        pairing (its password unsealed); None without one or without an open vault."""
        if self._sensor_override is not None:
            return self._sensor_override
        from limen.bio.finger.sensor import PAIRING_FILE, load_pairing
        from limen.vault.secrets import box_for

        box = box_for(self.conn)
        return None if box is None else load_pairing(self.settings.data_dir / PAIRING_FILE, box)

    def use_finger_sensor(self, paired: PairedSensor) -> None:
        """Use `paired` as the lock's module for this process (`limen serve --simulate-sensors`): scans,
        enrolment, erasure and a tamper response's Empty reach it."""
        from limen.bio.finger.sensor import EmptyOnWipe

        self._sensor_override = paired
        if self._controller is not None:
            if isinstance(self._sensor_wiper, EmptyOnWipe):
                self._sensor_wiper.forget()  # the module it held is not the lock's any more
            self._sensor_wiper = self._empty_sensor_on_tamper()

    def erase_fingers(self, user_id: str) -> int:
        """Remove every fingerprint reference of `user_id` (files only: works after a crypto-erase too)."""
        return _erase_fingers(self.settings.data_dir, user_id)

    def erase_sensor_pages(self, user_id: str, actor: str, at: datetime, source: str = "cli") -> SensorErasure:
        """Match on sensor: delete `user_id`'s pages on the paired module and from the page map; audited (a page
        the module did not confirm: outcome "failed", with the pages and why).  Every erasure path calls this."""
        with self.sensor_lock:
            return _erase_sensor_pages(self.settings.data_dir, self.conn, self.audit, user_id, actor, at, source,
                                       self._sensor_override)

    def erase_sensor_page(self, user_id: str, page: int, actor: str, at: datetime, source: str = "cli"
                          ) -> SensorErasure:
        """One page of `user_id` (one finger), as `erase_sensor_pages`."""
        with self.sensor_lock:
            return _erase_sensor_pages(self.settings.data_dir, self.conn, self.audit, user_id, actor, at, source,
                                       self._sensor_override, (page,))

    def empty_sensor(self, actor: str, at: datetime, source: str = "cli") -> SensorErasure:
        """Empty the paired module's whole library (decommission, zeroize): call it before the crypto-erase, the
        module's password is sealed under the vault.  Audited like `erase_sensor_pages`."""
        from limen.bio.finger.sensor import empty_library
        from limen.vault.secrets import box_for

        with self.sensor_lock:
            result = empty_library(self.settings.data_dir, box_for(self.conn), self._sensor_override)
        _audit_sensor(self.audit, result, actor, "lock", at, source, "fingerprint sensor library emptied")
        return result

    def _empty_sensor_on_tamper(self) -> object | None:
        """Have a tamper response empty the paired module right after its crypto-erase (`EmptyOnWipe`)."""
        from limen.bio.finger.sensor import PAGES_FILE, EmptyOnWipe
        from limen.tamper import memory

        try:
            paired = self.finger_sensor()
        except LimenError:  # an altered pairing: every scan refuses it (tamper alarm); the door path still builds
            paired = None
        if paired is None:
            return None
        wiper = EmptyOnWipe(paired, self.settings.data_dir / PAGES_FILE, partial(_report_tamper_empty, self.audit),
                            line=self.sensor_lock)
        memory.register(wiper)  # weakly held there: the runtime keeps it
        return wiper

    def access(self, source: str = "cli") -> AccessStore:
        return AccessStore(self.conn, self.audit, source=source)

    @property
    def controller(self) -> AccessController:
        """The door path (built on first use: a CLI command that never opens the door never claims GPIO)."""
        if self._controller is None:
            self._controller = self._build_controller()
        return self._controller

    @property
    def monitor(self) -> TamperMonitor | None:
        return self._monitor

    def start_monitor(self) -> TamperMonitor:
        """Poll the tamper sources of the settings in the background (`limen serve`)."""
        self.controller  # noqa: B018 - builds the guarded door and its (stopped) monitor
        assert self._monitor is not None
        for source in tamper_sources(self.settings):
            self._monitor.add(source)
        return self._monitor.start()

    def _build_controller(self) -> AccessController:
        from limen.controller import AccessController
        from limen.tamper import guard_lock

        door = self.door_override or open_door(self.settings, self.clock)
        guarded, self._monitor = guard_lock(self.settings, self.store, self.audit, door, start=False)
        self._sensor_wiper = self._empty_sensor_on_tamper()
        rule = AssuranceRule.from_settings(self.settings.allow_face_alone_rgb)
        if self.settings.allow_face_alone_rgb:  # recorded at every start of the door path
            self.audit.append(Event(EventKind.CONFIG_CHANGE, self.clock.now(), actor="settings", subject="lock",
                                    reason="face_alone_rgb_allowed", source="settings",
                                    data={"allow_face_alone_rgb": True, "face_alone_min": rule.face_alone.value}))
        assert guarded.intent is not None
        return AccessController(self.access("door"), guarded, self.audit, self.clock, faces=self.recognizer(),
                                rule=rule, tamper=guarded.intent, fingers=self.fingers())

    def erase_templates(self, user_id: str, actor: str, at: datetime, source: str = "cli") -> int:
        """Erase every biometric reference of `user_id` and audit it; after a crypto-erase there is nothing left.

        Erase-then-delete is one outcome: a user removed after a zeroize is
        removed, with "0 templates erased (vault already erased)" on record.
        """
        try:
            removed = self.store.delete(user_id)
            already = False
        except VaultErased:
            removed, already = 0, True
        removed += self.erase_fingers(user_id)
        people.forget_enrolments(self.conn, user_id)  # shown as not enrolled (not "can open the door by face")
        forget_deleted(self.conn)  # the sealed templates' rows leave the database's log too
        self.audit.append(Event(EventKind.PRIVACY, at, actor=actor, subject=user_id, reason="templates erased",
                                source=source, data={"templates_erased": removed, "vault_already_erased": already}))
        return removed

    def has_owner(self) -> bool:
        return has_owner(self.conn)

    def authorise(self, actor: str, pin: str | None, at: datetime) -> str:
        """The id of the owner/administrator `actor`, proven by PIN, once the lock has an owner.

        Before an owner is provisioned (a fresh lock, a lab), changes are made by
        whoever holds the device's shell and are recorded as `actor` verbatim.
        """
        access = self.access()
        if not self.has_owner():
            return actor
        if pin is None and actor == "cli":  # the CLI's actor when --as is not given
            raise BadRequest("as", "this lock has an owner: give --as USER and that user's PIN "
                             "(prompted on a terminal, or LIMEN_ACTOR_PIN)")
        if pin is None:
            raise BadRequest("as", "the PIN of the --as user is needed: give --as-pin (or LIMEN_ACTOR_PIN), "
                             "or run on a terminal to be asked for it")
        return access.authenticate(actor, pin, at).user_id

    def close(self) -> None:
        if self._sensor_wiper is not None:  # only then the sensor module (and NumPy) is imported: `limen status`
            from limen.bio.finger.sensor import EmptyOnWipe

            wiper = self._sensor_wiper
            if isinstance(wiper, EmptyOnWipe):
                wiper.forget()
                if wiper.thread is not None:
                    # its outcome goes on the audit trail before it closes (two tries, the second waits for the line)
                    wiper.thread.join(timeout=wiper.retry_wait_s + 10)
        if self._finger_index is not None:
            self._finger_index.wipe()
        if self._monitor is not None:
            self._monitor.close()
        if self._controller is not None:
            self._controller.door.close()
        for conn in self._extra:
            conn.close()
        self.store.close()
        self.audit.close()
        self.conn.close()


def open_runtime(settings: Settings, *, door: LockActuator | None = None, clock: Clock | None = None) -> Runtime:
    """Open the lock's state (see the module docstring); `door` replaces the configured one (tests, demos)."""
    from limen.audit import attach_witness, open_audit, record_lost
    from limen.tamper import recover as recover_tamper
    from limen.tamper.response import evidence_missing
    from limen.vault import open_template_store
    from limen.vault.witness import SealedHeadWitness

    store = open_template_store(settings)  # first: an interrupted erase completes before anything else
    conn = secure(open_db(settings.db_path))  # deleted rows are zeroed (privacy.scrub)
    audit = open_audit(settings)
    recover_tamper(settings, store, audit)  # an interrupted tamper response completes before any other work
    attach_witness(audit, SealedHeadWitness(store.vault))  # a log shorter than the vault's copy of its head alarms
    record_lost(audit, evidence_missing(conn, audit), "tamper incident")  # after an erase, the incidents witness
    enforce_retention(conn, store, audit, datetime.now(UTC),  # no reference outlives its consent
                      fingers=partial(_erase_fingers, settings.data_dir),
                      sensor=partial(_retention_sensor_pages, settings.data_dir, conn, audit))
    return Runtime(settings, conn, store, audit, clock or SystemClock(), door)


def _erase_fingers(data_dir: Path, user_id: str) -> int:
    from limen.bio.finger.references import erase_references, references_folder  # the matcher loads on first use

    return erase_references(references_folder(data_dir), user_id)


def _erase_sensor_pages(data_dir: Path, conn: sqlite3.Connection, audit: AuditLog, user_id: str, actor: str,
                        at: datetime, source: str, paired: PairedSensor | None = None,
                        only: Sequence[int] | None = None) -> SensorErasure:
    from limen.bio.finger.sensor import erase_pages_of
    from limen.vault.secrets import box_for

    result = erase_pages_of(data_dir, box_for(conn), user_id, paired, only)
    _audit_sensor(audit, result, actor, user_id, at, source, "fingerprint sensor pages erased")
    return result


def _retention_sensor_pages(data_dir: Path, conn: sqlite3.Connection, audit: AuditLog, user_id: str,
                            at: datetime) -> dict[str, int]:
    return _erase_sensor_pages(data_dir, conn, audit, user_id, "system", at, "retention").counts()


def _report_tamper_empty(audit: AuditLog, result: SensorErasure) -> None:
    """A tamper response's Empty (`EmptyOnWipe`): audited; a module it could not empty is a critical alarm (its
    prints stay on it, and its password is crypto-erased: only a hand can clear it now)."""
    at = datetime.now(UTC)
    _audit_sensor(audit, result, "system", "lock", at, "tamper", "fingerprint sensor library emptied")
    if not result.complete:
        audit.raise_alarm("tamper", "critical", "the fingerprint sensor's library was not emptied after a tamper "
                          f"response: {result.detail}", subject="fingerprint-sensor", at=at)


def _audit_sensor(audit: AuditLog, result: SensorErasure, actor: str, subject: str, at: datetime, source: str,
                  reason: str) -> None:
    if result.happened:
        audit.append(Event(EventKind.PRIVACY, at, actor=actor, subject=subject, reason=reason, source=source,
                           outcome="erased" if result.complete else "failed",
                           data={"pages_erased": result.erased, "pages_failed": result.failed,
                                 "emptied": result.emptied, "detail": result.detail}))


def open_door(settings: Settings, clock: Clock | None = None) -> LockActuator:
    """The actuator the settings name: a simulated lock, or the GPIO relay and switches (gpiozero)."""
    if settings.door is DoorKind.GPIO:
        from limen.door.gpio import GpioLock

        assert settings.door_relay_pin is not None and settings.door_contact_pin is not None
        assert settings.door_key_pin is not None  # checked by Settings
        return GpioLock(settings.door_relay_pin, settings.door_contact_pin, settings.door_key_pin,
                        settings.door_bolt_pin, clock=clock)
    from limen.door.simulated import SimulatedLock

    return SimulatedLock(clock)


def tamper_sources(settings: Settings) -> list[TamperSource]:
    """The tamper sources the settings list: GPIO switches and shock sensors (`tamper_sources = ["case:17",
    "shock:27"]`), the supply voltage (`tamper_supply` × `tamper_supply_scale`) and the watchdog over other
    processes' heartbeat files (`tamper_watchdog = ["capture:/run/limen/capture.beat"]`).

    `ConfigError` when the supply cannot be read or reads out of range now: a wrong channel or scale stops the
    start rather than erasing the vault.
    """
    from limen.tamper.signals import SourceKind
    from limen.tamper.sources import GpioShockSource, GpioSwitchSource, open_supply
    from limen.tamper.watchdog import open_watchdog

    sources: list[TamperSource] = []
    try:
        for item in settings.tamper_sources:
            kind, _, pin = item.partition(":")
            if kind == "shock":
                sources.append(GpioShockSource(int(pin)))
            else:
                sources.append(GpioSwitchSource(kind, SourceKind(kind), int(pin)))
        if settings.tamper_supply is not None:
            assert settings.tamper_supply_scale is not None  # checked by Settings
            sources.append(open_supply(settings.tamper_supply, settings.tamper_supply_scale))
        if settings.tamper_watchdog:
            sources.append(open_watchdog(settings.tamper_watchdog))
    except BaseException:
        for source in sources:  # release the pins already claimed
            source.close()
        raise
    return sources


def pad_check(capture: Capture, purpose: Purpose, boxes: Sequence[Box | None] | None = None,
              models_dir: Path | None = None) -> PadVerdict:
    """Presentation attack detection for `purpose` (enrolment is stricter); `boxes` reuse the face detections.

    `models_dir` holds MiniFASNet's imported weights, which PAD requires to pass a face.
    """
    from limen.pad.pipeline import assess

    return assess(capture, purpose=purpose, boxes=boxes, models_dir=models_dir)
