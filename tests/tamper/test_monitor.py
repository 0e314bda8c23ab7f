"""`TamperMonitor`: a source still in its tamper condition trips again once the tamper lockdown is lifted."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from limen import thresholds
from limen.access.model import PermissionLevel
from limen.config import load_settings
from limen.db import open_db
from limen.decision import Reason
from limen.runtime import open_runtime
from limen.tamper import SimulatedSource, SourceKind, TamperMonitor, journal_dir
from limen.tamper.journal import IntentJournal
from limen.tamper.lockdown import clear_lockdown, command_lockdown_in, is_locked_down
from limen.tamper.provision import reprovision

from .conftest import Lock

PIN = "482915"


def _lift(lock: Lock) -> None:
    """`limen tamper clear` from another process: its own connection lifts the lockdown."""
    conn = open_db(lock.settings.db_path)
    try:
        clear_lockdown(conn, "owner", datetime.now(UTC))
    finally:
        conn.close()


def _case_opened(lock: Lock) -> tuple[SimulatedSource, TamperMonitor, list[float]]:
    now = [0.0]
    case = SimulatedSource("case", SourceKind.CASE, monotonic=lambda: now[0])
    monitor = TamperMonitor(lock.responder, [case], monotonic=lambda: now[0])
    case.set(True, 0.0)
    now[0] = 0.05
    (first,) = monitor.poll()
    assert first.locked_down and is_locked_down(lock.responder.conn)
    return case, monitor, now


def _polls(monitor: TamperMonitor, now: list[float], seconds: float) -> list[object]:
    reports: list[object] = []
    for _ in range(int(seconds / 0.005)):
        now[0] += 0.005
        reports += monitor.poll()
    return reports


def test_a_case_left_open_trips_again_when_the_tamper_lockdown_is_lifted(lock: Lock) -> None:
    case, monitor, now = _case_opened(lock)
    assert _polls(monitor, now, 5.0) == []          # one event per tamper while the lockdown lasts
    _lift(lock)
    (again,) = _polls(monitor, now, 0.01)           # the next tick: a new response, a new lockdown
    assert again.signal.source == "case" and again.locked_down  # type: ignore[attr-defined]
    assert is_locked_down(lock.responder.conn)
    assert _polls(monitor, now, 5.0) == []


def test_a_case_closed_before_the_lockdown_is_lifted_does_not_trip_again(lock: Lock) -> None:
    case, monitor, now = _case_opened(lock)
    case.set(False, now[0])
    assert _polls(monitor, now, 2.0) == []
    _lift(lock)
    assert _polls(monitor, now, 2.0) == []
    assert not is_locked_down(lock.responder.conn)


def test_a_command_lockdown_does_not_hold_back_the_trip(lock: Lock) -> None:
    """The lift leaves an owner's lockdown in force: a case still open is still a tamper."""
    case, monitor, now = _case_opened(lock)
    conn = open_db(lock.settings.db_path)
    try:
        clear_lockdown(conn, "owner", datetime.now(UTC))
        command_lockdown_in(conn, "owner", datetime.now(UTC))
        conn.commit()
    finally:
        conn.close()
    (again,) = _polls(monitor, now, 0.01)
    assert again.locked_down  # type: ignore[attr-defined]


def test_case_left_open_after_tamper_clear_in_a_running_service(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The review's repro: GPIO case switch, `limen tamper clear` while the service runs with the case open —
    the monitor trips again (it stayed latched, and a PIN then opened the door)."""
    monkeypatch.setattr(thresholds, "PIN_ARGON2_MEMORY_KIB", 64)
    monkeypatch.setattr(thresholds, "PIN_ARGON2_TIME_COST", 1)
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    factory = MockFactory()
    monkeypatch.setattr(Device, "pin_factory", factory)
    factory.pin(17).drive_low()                       # case shut
    settings = load_settings(tmp_path / "data", tamper_sources=["case:17"])
    rt = open_runtime(settings)
    try:
        owner = rt.access().add_user("Olga", "", datetime.now(UTC), pin=PIN, permission=PermissionLevel.OWNER)
        monitor = rt.start_monitor()
        monitor.stop()                                # driven by hand
        factory.pin(17).drive_high()                  # case opened
        now = time.monotonic()
        assert [r for t in (now, now + 0.1) for r in monitor.poll(t)]
        journal = IntentJournal(journal_dir(settings))
        reprovision(rt.conn, rt.store, rt.audit, journal, owner.user_id, datetime.now(UTC))
        journal.close()
        assert not is_locked_down(rt.conn)
        reports = [r for i in range(1, 21) for r in monitor.poll(now + 0.1 + i * 0.1)]
        assert len(reports) == 1 and reports[0].locked_down
        time.sleep(thresholds.TAMPER_UNLOCK_HOLDOFF_S + 0.2)
        assert rt.controller.keypad(PIN).reason is Reason.LOCKDOWN
    finally:
        rt.close()
