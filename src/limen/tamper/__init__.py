"""Tamper detection and response: from a tamper signal to erased biometric keys, with the evidence kept.

Public API:

* `open_responder(settings, *, store=None, audit=None, door=None) -> TamperResponder`
  – `respond(signal) -> ResponseReport`, `recover()`, `check_sensors(probes)`.
* `recover(settings, store, audit, door=None) -> ResponseReport | None` – what
  `open_runtime` calls right after opening the vault: an unfinished response
  completes before any other work.
* `TamperMonitor(responder, sources)` – polls sources (`GpioSwitchSource`,
  `GpioShockSource`, `SupplyMonitor`, `Watchdog`, `SimulatedSource`) and responds;
  `sources.open_supply` and `watchdog.open_watchdog` build the ones the settings name.
* `lockdown.is_locked_down(conn)`, `enter_lockdown`, `clear_lockdown`, `lockdown_status`:
  the lock's one lockdown flag (cause `tamper` or `command`), read by the access policy.
* `binding.bind_sensors / check_sensors` with `V4L2Camera`, `CallableSensor`, `SimulatedSensor`.
* `TamperGate` + `GuardedLock` – no unlock reaches the motor while a response runs;
  `IntentCheck` – nor while another process's response is pending in the journal.
* `guard_lock(settings, store, audit, door, sources)` – the composition the lock
  service uses: a `GuardedLock` around the real door and a started monitor.
* `provision.authenticate_owner` + `provision.reprovision` – the owner's way out of lockdown.

State: `tamper_*` tables in `limen.db`; the intent journal in `<data_dir>/tamper/intent`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from limen.audit.event import AuditSink
from limen.config import Settings
from limen.door.actuator import LockActuator
from limen.tamper.gate import GuardedLock, IntentCheck, TamperGate
from limen.tamper.journal import IntentJournal
from limen.tamper.lockdown import clear_lockdown, enter_lockdown, is_locked_down, lockdown_status
from limen.tamper.monitor import TamperMonitor
from limen.tamper.response import ResponseReport, TamperResponder, ZeroizableStore
from limen.tamper.signals import Sensitivity, SourceKind, TamperSignal
from limen.tamper.sources import GpioShockSource, GpioSwitchSource, SimulatedSource, SupplyMonitor, TamperSource
from limen.tamper.watchdog import Watchdog

__all__ = [
    "GpioShockSource", "GpioSwitchSource", "GuardedLock", "IntentCheck", "ResponseReport", "Sensitivity",
    "SimulatedSource", "SourceKind", "SupplyMonitor", "TamperGate", "TamperMonitor", "TamperResponder", "TamperSignal",
    "Watchdog", "clear_lockdown", "enter_lockdown", "guard_lock", "is_locked_down", "journal_dir", "lockdown_status",
    "open_responder", "recover",
]


def journal_dir(settings: Settings) -> Path:
    return settings.data_dir / "tamper"


def open_responder(settings: Settings, *, store: ZeroizableStore | None = None, audit: AuditSink | None = None,
                   door: LockActuator | None = None, gate: TamperGate | None = None,
                   scrub: tuple[Any, ...] = ()) -> TamperResponder:
    """The lock's responder.  Without `store`, a tamper opens the vault itself to erase it.

    Its own handles (limen.db, and the audit log when none is given) serve the
    recovery path: the runtime's `recover` and `guard_lock` are its callers.
    """
    if audit is None:
        from limen.audit import open_audit

        audit = open_audit(settings)

    def open_store() -> ZeroizableStore:
        from limen.vault import open_template_store

        return open_template_store(settings)

    return TamperResponder(settings.db_path, IntentJournal(journal_dir(settings)), audit, store=store,
                           open_store=open_store, door=door, gate=gate, scrub=scrub)


def recover(settings: Settings, store: ZeroizableStore, audit: AuditSink,
            door: LockActuator | None = None) -> ResponseReport | None:
    """Finish a tamper response a crash or power cut interrupted (no-op, ≈ 0.1 ms, when there is none)."""
    from limen.tamper.journal import read_pending

    if read_pending(journal_dir(settings)) is None:
        return None
    responder = open_responder(settings, store=store, audit=audit, door=door)
    try:
        return responder.recover()
    finally:
        responder.close()


def guard_lock(settings: Settings, store: ZeroizableStore, audit: AuditSink, door: LockActuator,
               sources: Iterable[TamperSource] = (), *, start: bool = True) -> tuple[GuardedLock, TamperMonitor]:
    """Wrap `door` so no unlock reaches it during a response; return it with the (started) monitor.

    The `GuardedLock` also refuses to unlock while the intent journal holds a
    pending response (`guarded.intent`, which the controller checks too).
    Give the returned `GuardedLock` to the `AccessController`; call
    `monitor.check_sensors(probes)` before each capture session and
    `monitor.close()` at shutdown.  The response secures the door from the
    monitor's thread: `secure()` is the one actuator call meant for that.
    """
    gate = TamperGate()
    guarded = GuardedLock(door, gate)
    responder = open_responder(settings, store=store, audit=audit, door=guarded, gate=gate)
    guarded.intent = IntentCheck(journal_dir(settings), responder.recover)
    monitor = TamperMonitor(responder, sources)
    if start:
        monitor.start()
    return guarded, monitor
