"""`open_runtime`: the one composition root builds the guarded door, the controller and the tamper monitor."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from limen import thresholds
from limen.access.model import PermissionLevel
from limen.config import Settings, load_settings
from limen.decision import Reason
from limen.door import SimulatedLock
from limen.runtime import open_runtime
from limen.tamper import GuardedLock, journal_dir
from limen.tamper.journal import Intent, IntentJournal

PIN = "482915"


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thresholds, "PIN_ARGON2_MEMORY_KIB", 64)
    monkeypatch.setattr(thresholds, "PIN_ARGON2_TIME_COST", 1)


def _owner(settings: Settings) -> None:
    rt = open_runtime(settings)
    try:
        rt.access().add_user("Olga", "", datetime.now(UTC), pin=PIN, permission=PermissionLevel.OWNER)
    finally:
        rt.close()


def _killed_tamper_response(settings: Settings) -> None:
    """What a SIGKILLed `limen tamper simulate` leaves: an intent begun, nothing else done."""
    journal = IntentJournal(journal_dir(settings))
    journal.begin(Intent("d" * 32, "case", "case", "opened", datetime.now(UTC).isoformat()))
    journal.close()


def test_the_runtime_builds_a_guarded_configured_door(settings: Settings) -> None:
    rt = open_runtime(settings)
    try:
        assert isinstance(rt.controller.door, GuardedLock) and isinstance(rt.controller.door.inner, SimulatedLock)
        assert rt.controller.door.intent is not None and rt.monitor is not None
        assert rt.monitor.sources == []  # none configured
    finally:
        rt.close()


def test_a_pending_tamper_intent_refuses_a_valid_pin_in_a_running_controller(settings: Settings) -> None:
    _owner(settings)
    rt = open_runtime(settings)  # running before the tamper: nothing pending at its start
    try:
        controller = rt.controller
        _killed_tamper_response(settings)  # another process died half-way through its response
        d = controller.keypad(PIN)
        assert not d.accepted and d.reason is Reason.LOCKDOWN
        assert controller.door.is_locked and not controller.door.inner._target_unlocked  # type: ignore[attr-defined]
        assert rt.access().load_state().lockdown  # the response was finished: lockdown is on
        again = controller.keypad(PIN)
        assert not again.accepted and again.reason is Reason.LOCKDOWN
    finally:
        rt.close()


def test_the_guarded_door_refuses_to_unlock_while_an_intent_is_pending(settings: Settings) -> None:
    rt = open_runtime(settings)
    try:
        door = rt.controller.door
        assert isinstance(door, GuardedLock)
        _killed_tamper_response(settings)
        door.unlock()
        assert door.refused == 1 and not door.inner._target_unlocked  # type: ignore[attr-defined]
    finally:
        rt.close()


def test_allow_face_alone_rgb_is_audited_at_every_start(data_dir: Path) -> None:
    settings = load_settings(data_dir, allow_face_alone_rgb=True)
    for _ in range(2):
        rt = open_runtime(settings)
        try:
            rt.controller  # noqa: B018 - the door path starts
            assert rt.controller.rule.face_alone.value == "medium"
        finally:
            rt.close()
    rt = open_runtime(settings)
    try:
        records = [r for r in rt.audit.records(0, ("config_change",))
                   if r["reason"] == "face_alone_rgb_allowed"]
        assert len(records) == 2
    finally:
        rt.close()


def test_removing_a_user_after_a_zeroize_is_one_outcome(settings: Settings) -> None:
    import numpy as np

    from limen import people
    from limen.bio.templates import Modality
    from limen.db import transaction

    rt = open_runtime(settings)
    try:
        with transaction(rt.conn):
            person = people.new_person(rt.conn, "Guest", "owner", datetime.now(UTC))
        rt.store.put(person.id, Modality.FACE, np.random.default_rng(0).normal(0, 0.1, 128))
        rt.store.zeroize()
        assert rt.erase_templates(person.id, "owner", datetime.now(UTC)) == 0
        last = rt.audit.tail(1)[0]
        assert last["reason"] == "templates erased" and last["data"]["vault_already_erased"] is True
    finally:
        rt.close()


def test_serve_polls_the_configured_tamper_sources(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gpiozero")
    import time

    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    factory = MockFactory()
    monkeypatch.setattr(Device, "pin_factory", factory)
    factory.pin(17).drive_low()  # the case switch is closed (case shut)
    settings = load_settings(data_dir, tamper_sources=["case:17", "shock:27"])
    rt = open_runtime(settings)
    try:
        monitor = rt.start_monitor()
        monitor.stop()  # drive it by hand below
        assert [(s.name, s.kind.value) for s in monitor.sources] == [("case", "case"), ("shock", "shock")]
        factory.pin(17).drive_high()  # the case is opened
        now = time.monotonic()
        reports = [r for t in (now, now + 1.0, now + 3.0) for r in monitor.poll(t)]
        assert reports and reports[0].signal.source == "case"
        assert rt.access().load_state().lockdown
        assert rt.controller.keypad(PIN).reason is Reason.LOCKDOWN
    finally:
        rt.close()


def test_serve_polls_the_configured_supply_and_watchdog(data_dir: Path) -> None:
    import os
    import time

    from limen.tamper import SourceKind

    adc, beat = data_dir.parent / "in_voltage0_raw", data_dir.parent / "capture.beat"
    adc.write_text("2400")  # 12 V behind a 1:5 divider
    beat.touch()
    settings = load_settings(data_dir, tamper_supply=f"file:{adc}", tamper_supply_scale=0.005,
                             tamper_watchdog=[f"capture:{beat}"])
    _owner(settings)
    rt = open_runtime(settings)
    try:
        monitor = rt.start_monitor()
        monitor.stop()  # driven by hand below
        assert [s.kind for s in monitor.sources] == [SourceKind.SUPPLY, SourceKind.WATCHDOG]
        now = time.monotonic()
        assert monitor.poll(now) == [] and not rt.access().load_state().lockdown
        stale = time.time() - 2 * thresholds.TAMPER_WATCHDOG_TIMEOUT_S
        os.utime(beat, (stale, stale))  # the capture process fell silent
        later = now + thresholds.TAMPER_WATCHDOG_TIMEOUT_S + 1
        (report,) = monitor.poll(later)
        assert report.signal.kind is SourceKind.WATCHDOG and report.signal.reason == "silent:capture"
        assert rt.access().load_state().lockdown
        assert rt.controller.keypad(PIN).reason is Reason.LOCKDOWN
    finally:
        rt.close()


def test_a_supply_sag_through_the_runtime_monitor_locks_down(data_dir: Path) -> None:
    import time

    adc = data_dir.parent / "in_voltage0_raw"
    adc.write_text("2400")
    settings = load_settings(data_dir, tamper_supply=f"file:{adc}", tamper_supply_scale=0.005)
    rt = open_runtime(settings)
    try:
        monitor = rt.start_monitor()
        monitor.stop()
        adc.write_text("1500")  # 7.5 V
        now = time.monotonic()
        reports = [r for t in (now, now + 1.0) for r in monitor.poll(t)]
        assert [r.signal.source for r in reports] == ["supply"] and reports[0].complete
        assert rt.access().load_state().lockdown
    finally:
        rt.close()


@pytest.mark.parametrize("values", [
    {"tamper_supply": "file:/sys/x"},                              # no scale: the divider is the board's
    {"tamper_supply": "mcp3008:9", "tamper_supply_scale": 15.0},   # no such channel
    {"tamper_watchdog": ["capture"]},                               # no heartbeat file
    {"tamper_watchdog": ["a:/run/a.beat", "a:/run/b.beat"]},        # a name twice
])
def test_bad_supply_or_watchdog_settings_are_refused(data_dir: Path, values: dict[str, object]) -> None:
    from limen.errors import ConfigError

    with pytest.raises(ConfigError):
        load_settings(data_dir, **values)


def test_a_supply_that_reads_wrong_at_start_stops_the_start_not_the_vault(data_dir: Path) -> None:
    from limen.errors import ConfigError

    adc = data_dir.parent / "in_voltage0_raw"
    adc.write_text("2400")
    settings = load_settings(data_dir, tamper_supply=f"file:{adc}", tamper_supply_scale=0.001)  # reads 2.4 V
    rt = open_runtime(settings)
    try:
        with pytest.raises(ConfigError):
            rt.start_monitor()
        assert rt.store.status().state != "erased" and not rt.access().load_state().lockdown
    finally:
        rt.close()


def test_a_face_held_for_a_second_factor_is_forgotten_by_a_restart(settings: Settings) -> None:
    """Deliberately volatile: a restart forgets half-finished attempts; the PIN is then judged alone."""
    import numpy as np

    from limen.access.attempt import FaceEvidence
    from limen.access.model import CredentialRule
    from limen.audit.event import EventKind
    from limen.capture import Capture
    from limen.decision import Assurance
    from limen.pad.contract import Purpose
    from limen.pad.fusion import BONA_FIDE, PadVerdict

    _owner(settings)
    rt = open_runtime(settings, door=SimulatedLock())
    owner = rt.access().user("Olga").user_id
    rt.access().modify_user("Olga", owner, datetime.now(UTC), credential_rule=CredentialRule.DUAL)

    class Faces:  # a recognised RGB face: MEDIUM assurance, a first factor only
        def identify(self, capture: Capture) -> FaceEvidence:
            verdict = PadVerdict(True, BONA_FIDE, Assurance.MEDIUM, Purpose.VERIFY, scores={})
            return FaceEvidence(owner, 0.3, 0.45, verdict)

        def verify(self, name: str, capture: Capture) -> FaceEvidence:
            return self.identify(capture)

    frame = Capture.single(np.zeros((8, 8, 3), np.uint8), "test")
    try:
        rt.controller.faces = Faces()
        assert rt.controller.face(frame, session="kiosk-1").reason is Reason.SECOND_FACTOR_MISSING
        assert rt.controller.holding_face("kiosk-1")
    finally:
        rt.close()
    rt = open_runtime(settings, door=SimulatedLock())  # the service restarts within the window
    try:
        assert not rt.controller.holding_face("kiosk-1")
        decision = rt.controller.keypad(PIN, session="kiosk-1")
        assert not decision.accepted and decision.reason is Reason.FACE_FIRST  # said, never a wrong code
        last = list(rt.audit.find(EventKind.UNLOCK_ATTEMPT))[-1]
        assert last.data["factors"] == ["pin"]  # the lost face is not on the record as a factor
        rt.controller.faces = Faces()  # presenting the face again completes it as usual
        assert rt.controller.face(frame, session="kiosk-1").reason is Reason.SECOND_FACTOR_MISSING
        assert rt.controller.keypad(PIN, session="kiosk-1").accepted
    finally:
        rt.close()


def test_a_gpio_door_in_the_settings_is_built_guarded_and_driven_by_an_accepted_pin(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gpiozero")
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    from limen.door.gpio import GpioLock

    factory = MockFactory()
    monkeypatch.setattr(Device, "pin_factory", factory)
    factory.pin(5).drive_low()   # door contact closed: the door is shut
    factory.pin(6).drive_high()  # no key in
    settings = load_settings(data_dir, door="gpio", door_relay_pin=4, door_contact_pin=5, door_key_pin=6)
    _owner(settings)
    rt = open_runtime(settings)
    try:
        door = rt.controller.door
        assert isinstance(door, GuardedLock) and isinstance(door.inner, GpioLock)
        assert factory.pin(4).state == 0  # fail secure: the relay is off at start
        assert rt.controller.keypad(PIN).accepted
        assert factory.pin(4).state == 1  # the configured relay pin, through the tamper guard
    finally:
        rt.close()
    assert factory.pin(4).state == 0  # closing the runtime releases the relay


def test_the_service_starts_the_runtime_tamper_monitor(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gpiozero")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    import limen.service.app as service_app
    from limen.service import close_app, create_app

    monkeypatch.setattr(service_app, "_warm", lambda ctx: None)  # no face models for this test
    factory = MockFactory()
    monkeypatch.setattr(Device, "pin_factory", factory)
    factory.pin(17).drive_low()  # the case switch is closed
    app = create_app(load_settings(data_dir, tamper_sources=["case:17"]), tick_s=3600)
    try:
        before = app.state.ctx.runtime.monitor
        assert before is None or before._thread is None  # nothing polls before the service starts
        with TestClient(app):
            monitor = app.state.ctx.runtime.monitor
            assert monitor is not None and [s.name for s in monitor.sources] == ["case"]
            assert monitor._thread is not None and monitor._thread.is_alive()  # polled in the background
    finally:
        close_app(app)


def test_erasing_a_person_s_templates_leaves_them_not_enrolled(settings: Settings) -> None:
    """The remote "erase templates" command and the console keep the person: their enrolment records go with the
    references, so `users list` and the console no longer say a face opens the door for them."""
    import numpy as np

    from limen import people
    from limen.bio.templates import Modality
    from limen.db import transaction

    rt = open_runtime(settings)
    try:
        with transaction(rt.conn):
            person = people.new_person(rt.conn, "Dora", "member", datetime.now(UTC))
            people.record_enrolment(rt.conn, person, Modality.FACE, 5, "owner", datetime.now(UTC))
        rt.store.put(person.id, Modality.FACE, np.random.default_rng(0).normal(0, 0.1, 128))
        assert [r["user_id"] for r in people.enrolment_rows(rt.conn)] == [person.id]
        assert rt.erase_templates(person.id, "owner", datetime.now(UTC), source="remote") == 1
        assert people.enrolment_rows(rt.conn) == []
        assert people.by_id(rt.conn, person.id) is not None  # still a person (PINs, codes)
    finally:
        rt.close()
