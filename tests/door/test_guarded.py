"""`GuardedLock` (the tamper guard the runtime puts around every door) passes the actuator contract and guards."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from limen.clock import FixedClock
from limen.door.actuator import LockState
from limen.door.simulated import SimulatedLock
from limen.tamper.gate import GuardedLock, IntentCheck, TamperGate
from limen.tamper.journal import Intent, IntentJournal

from .contract import LockActuatorContract


class GuardedRig:
    def __init__(self, journal: Path) -> None:
        self.clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
        self.inner = SimulatedLock(self.clock, travel_s=0.5, auto_relock_s=30)
        self.gate = TamperGate(holdoff_s=5.0, monotonic=self.clock.monotonic)
        self.finished: list[bool] = []
        self.actuator = GuardedLock(self.inner, self.gate, IntentCheck(journal, lambda: self.finished.append(True)))

    def settle(self) -> None:
        self.clock.advance(0.5)

    def set_door(self, open_: bool) -> None:
        self.inner.door_open = open_

    def set_key(self, inserted: bool) -> None:
        self.inner.key_in = inserted

    def jam(self) -> None:
        self.inner.jam = True


class TestGuardedLock(LockActuatorContract):
    @pytest.fixture
    def rig(self, tmp_path: Path) -> GuardedRig:  # type: ignore[override]
        return GuardedRig(tmp_path / "tamper")


def test_a_running_response_turns_unlock_into_secure(tmp_path: Path) -> None:
    rig = GuardedRig(tmp_path / "tamper")
    rig.gate.trip()
    assert rig.actuator.unlock() is LockState.LOCKED and rig.actuator.refused == 1 and not rig.inner.relay
    rig.gate.done()
    rig.clock.advance(5.1)  # hold-off over
    rig.actuator.unlock()
    assert rig.inner.relay


def test_a_pending_intent_in_the_journal_keeps_the_door_shut(tmp_path: Path) -> None:
    rig = GuardedRig(tmp_path / "tamper")
    journal = IntentJournal(tmp_path / "tamper")
    journal.begin(Intent("e" * 32, "case", "case", "opened", "2026-01-01T00:00:00+00:00"))
    journal.close()
    assert rig.actuator.intent is not None and rig.actuator.intent.pending()
    rig.actuator.unlock()
    assert rig.actuator.refused == 1 and not rig.inner.relay


def test_an_unreadable_journal_counts_as_pending(tmp_path: Path) -> None:
    (tmp_path / "tamper").mkdir()
    (tmp_path / "tamper" / "intent").write_bytes(b"garbage")
    assert IntentCheck(tmp_path / "tamper").pending()
