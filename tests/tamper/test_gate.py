from __future__ import annotations

from typing import Any

from limen.access.model import PermissionLevel
from limen.access.store import BOOTSTRAP_ACTOR, AccessStore
from limen.audit.event import Event, EventKind, MemoryAuditSink
from limen.clock import FixedClock
from limen.controller import AccessController
from limen.db import open_db
from limen.decision import Reason
from limen.door import SimulatedLock
from limen.tamper import GuardedLock, TamperGate

from .conftest import T0, Lock, signal

PIN = "482913"


def test_gate_blocks_while_running_and_for_the_holdoff() -> None:
    now = [0.0]
    gate = TamperGate(holdoff_s=5.0, monotonic=lambda: now[0])
    assert not gate.blocks_unlock()
    gate.trip()
    now[0] = 100.0
    assert gate.blocks_unlock()        # still running
    gate.done()
    assert not gate.blocks_unlock()    # hold-off counted from the signal
    gate.trip()
    gate.done()
    now[0] = 104.0
    assert gate.blocks_unlock()
    now[0] = 105.0
    assert not gate.blocks_unlock()


def test_guarded_lock_unlocks_normally_without_tamper() -> None:
    inner = SimulatedLock(travel_s=0.0)
    door = GuardedLock(inner, TamperGate())
    assert door.unlock().value == "unlocked" and inner.relay


def test_tamper_during_an_unlock_keeps_the_door_shut(lock: Lock) -> None:
    """The PIN is accepted, then the case opens before the motor runs: the door must stay locked."""
    conn = open_db(lock.settings.db_path)
    AccessStore(conn, MemoryAuditSink()).add_user("alice", BOOTSTRAP_ACTOR, T0, pin=PIN,
                                                   permission=PermissionLevel.OWNER)
    inner = SimulatedLock(travel_s=0.0)
    door = GuardedLock(inner, lock.responder.gate)
    lock.responder.attach(door=door)

    class TamperOnAttempt(MemoryAuditSink):
        def append(self, event: Event) -> int:
            index = super().append(event)
            if event.kind is EventKind.UNLOCK_ATTEMPT and event.outcome == "accept":
                self.report: Any = lock.responder.respond(signal())  # between the decision and the motor
            return index

    audit = TamperOnAttempt()
    controller = AccessController(AccessStore(conn, audit), door, audit, FixedClock(T0))
    decision = controller.keypad(PIN)
    assert decision.accepted                      # decided before the tamper ...
    assert audit.report.complete
    assert not inner.relay and door.state.value == "locked" and door.refused == 1   # ... never reached the motor
    later = controller.keypad(PIN)
    assert not later.accepted and later.reason is Reason.LOCKDOWN


def test_guard_lock_composition(lock: Lock) -> None:
    from limen.tamper import SimulatedSource, SourceKind, guard_lock

    case = SimulatedSource("case", SourceKind.CASE)
    door, monitor = guard_lock(lock.settings, lock.store, lock.audit, SimulatedLock(travel_s=0.0), [case],
                               start=False)
    try:
        assert door.unlock().value == "unlocked"
        case.set(True, 0.0)
        (report,) = monitor.poll(1.0)
        assert report.complete and report.door == "locked"
        assert door.unlock().value == "locked"   # hold-off: no unlock right after a tamper
    finally:
        monitor.close()
        monitor.responder.close()
