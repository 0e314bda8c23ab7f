"""The tamper response: from a `TamperSignal` to erased keys, a locked door, evidence and lockdown.

`TamperResponder.respond(signal)` runs, in this order, every step even when an
earlier one failed (each failure is recorded, never raised):

    0. gate tripped (no unlock reaches the motor), intent journaled (`IntentJournal`, one fdatasync)
    1. vault.zeroize()             crypto-erase: root keys destroyed, data keys wiped
    2. memory scrubbed             best effort (`limen.tamper.memory`; a young-generation collection runs last)
    3. door.secure()               drive to locked
    4. TAMPER event appended       chained and signed (checkpoint) with the audit key, untouched by the erase
    5. alarm                       the audit monitor's ALARM + outbox rows (raised here if it is missing)
    6. lockdown                    incident row + `tamper_lockdown` in one transaction; journal cleared

Power loss: the journal record stays *pending* until steps 1, 4 and 6 have
succeeded.  `recover()` — run by `open_runtime` right after the vault is
opened, before any other work — replays an unfinished response with the same
incident id; every step is idempotent (the audit event and the alarm are
looked up by incident before being written again).  A second tamper while a
response runs waits for it, then runs its own (fast: the vault is already
erased) and gets its own event.  Thread-safe.
"""

from __future__ import annotations

import contextlib
import gc
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from limen.audit.event import AuditSink, Event, EventKind
from limen.clock import Clock, SystemClock
from limen.db import open_db, transaction
from limen.door.actuator import LockActuator
from limen.errors import LimenError, VaultError
from limen.tamper import memory
from limen.tamper.binding import Mismatch, SensorProbe, check_sensors
from limen.tamper.gate import TamperGate
from limen.tamper.journal import UNKNOWN, Intent, IntentJournal
from limen.tamper.lockdown import LockdownCause, lockdown_status, set_lockdown_in
from limen.tamper.signals import SourceKind, TamperSignal

if TYPE_CHECKING:  # the vault loads only when a response opens it
    from limen.vault.recipe import ZeroizeTiming


class ZeroizableStore(Protocol):
    """What the response needs of the vault (`VaultTemplateStore`): crypto-erase it, and close one it opened."""

    def zeroize(self) -> ZeroizeTiming:
        """Crypto-erase; the timing says when the root keys were gone (`crypto_erase_s`)."""
        ...

    def close(self) -> None: ...


@dataclass
class ResponseReport:
    """What one response did.  `steps_ms`: time from the signal to the end of each step that succeeded."""

    incident: str
    signal: TamperSignal
    recovered: bool = False
    steps_ms: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    erased: bool = False
    door: str | None = None
    audit_index: int | None = None
    alarm_index: int | None = None
    locked_down: bool = False
    complete: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"incident": self.incident, "source": self.signal.source, "kind": str(self.signal.kind),
                "reason": self.signal.reason, "at": self.signal.at.isoformat(), "recovered": self.recovered,
                "erased": self.erased, "door": self.door, "audit_index": self.audit_index,
                "alarm_index": self.alarm_index, "locked_down": self.locked_down, "complete": self.complete,
                "steps_ms": {k: round(v, 3) for k, v in self.steps_ms.items()}, "errors": dict(self.errors)}


class TamperResponder:
    """Runs the response (see the module docstring).  One per lock process.

    It opens its own connection to `limen.db`: it runs on the monitor's thread and
    in the recovery `open_runtime` performs first; the runtime is its only builder.
    """

    def __init__(self, db_path: Path, journal: IntentJournal, audit: AuditSink, *,
                 store: ZeroizableStore | None = None,
                 open_store: Callable[[], ZeroizableStore] | None = None,
                 door: LockActuator | None = None, scrub: Iterable[Any] = (),
                 gate: TamperGate | None = None, clock: Clock | None = None) -> None:
        self.conn = open_db(db_path)
        self.journal, self.audit = journal, audit
        self.store, self.open_store, self.door = store, open_store, door
        self.scrub_targets: list[Any] = list(scrub)
        self.gate = gate or TamperGate()
        self.clock = clock or SystemClock()
        self._lock = threading.RLock()

    def attach(self, *, store: ZeroizableStore | None = None, door: LockActuator | None = None) -> None:
        """Hand over the vault and the door once they are open (a tamper before that still erases)."""
        with self._lock:
            self.store = store if store is not None else self.store
            self.door = door if door is not None else self.door

    # ------------------------------------------------------------------ entry points
    def respond(self, signal: TamperSignal) -> ResponseReport:
        """Run the whole response for `signal`; never raises (failures are in the report)."""
        t0 = time.perf_counter()
        self.gate.trip()
        try:
            with self._lock:
                intent = Intent(uuid.uuid4().hex, signal.source, str(signal.kind), signal.reason,
                                signal.at.isoformat())
                report = self._run(intent, signal, t0, recovered=False)
        finally:
            self.gate.done()
        gc.collect(1)  # last, outside the lock: frees young dropped copies (no overwrite: limen.tamper.memory)
        return report

    def recover(self) -> ResponseReport | None:
        """Finish a response a crash or power cut interrupted; None when there was none."""
        intent = self.journal.pending()
        if intent is None:
            return None
        t0 = time.perf_counter()
        self.gate.trip()
        try:
            with self._lock:
                if intent.incident == UNKNOWN:  # unreadable record: name the incident durably before going on
                    intent = replace(intent, incident=uuid.uuid4().hex)
                    with contextlib.suppress(LimenError, OSError):
                        self.journal.begin(intent)
                signal = TamperSignal(intent.source, _kind(intent.kind), intent.reason,
                                      _parse_at(intent.detected_at) or self.clock.now(), {"recovered": True})
                return self._run(intent, signal, t0, recovered=True)
        finally:
            self.gate.done()

    def check_sensors(self, probes: Iterable[SensorProbe]) -> list[Mismatch]:
        """Sensor binding check (capture session start); a mismatch starts the response."""
        with self._lock:
            problems = check_sensors(self.conn, probes)
        for problem in problems:
            self.respond(TamperSignal(problem.name, SourceKind.SENSOR, problem.problem, self.clock.now(),
                                      {"sensor_kind": problem.kind}))
        return problems

    def in_tamper_lockdown(self) -> bool:
        """Whether a tamper lockdown is in force (fail closed: an unreadable flag counts as one)."""
        with self._lock:
            try:
                status = lockdown_status(self.conn)
            except sqlite3.Error:
                return True
        return status.active and status.cause is LockdownCause.TAMPER

    def close(self) -> None:
        with self._lock:
            self.journal.close()
            self.conn.close()

    # ------------------------------------------------------------------ the steps
    def _run(self, intent: Intent, signal: TamperSignal, t0: float, recovered: bool) -> ResponseReport:
        report = ResponseReport(intent.incident, signal, recovered)

        def step(name: str, action: Callable[[], Any]) -> Any:
            try:
                result = action()
            except Exception as exc:  # noqa: BLE001 - every step runs whatever the others did
                report.errors[name] = _describe(exc)
                return None
            report.steps_ms[name] = (time.perf_counter() - t0) * 1000.0
            return result

        if not recovered:
            step("journaled", lambda: self.journal.begin(intent))
        zeroize_started = time.perf_counter()
        timing: ZeroizeTiming | None = step("zeroized", self._erase)
        report.erased = timing is not None
        if timing is not None:
            report.steps_ms["keys_destroyed"] = (zeroize_started - t0 + timing.crypto_erase_s) * 1000.0
            report.steps_ms = dict(sorted(report.steps_ms.items(), key=lambda kv: kv[1]))
        step("scrubbed", lambda: memory.scrub(self.scrub_targets, collect=False))
        report.door = step("door_secured", self._secure)
        report.audit_index = step("audited", lambda: self._audit(report))
        if report.audit_index is not None:
            report.alarm_index = step("alarmed", lambda: self._alarm(report))
        report.locked_down = step("locked_down", lambda: self._lock_down(report)) is not None
        if report.erased and report.audit_index is not None and report.locked_down:
            step("journal_cleared", self.journal.finish)
            report.complete = "journal_cleared" in report.steps_ms
        return report

    def _erase(self) -> ZeroizeTiming:
        if self.store is not None:
            return self.store.zeroize()
        if self.open_store is None:
            raise VaultError("the vault is not open: the erase completes at the next start")
        opened = self.open_store()
        try:
            return opened.zeroize()
        finally:
            opened.close()

    def _secure(self) -> str:
        if self.door is None:
            return "not_attached"
        return str(self.door.secure())

    def _audit(self, report: ResponseReport) -> int:
        if report.recovered:
            found = _find_tamper_event(self.audit, report.incident)
            if found is not None:
                return found
        s = report.signal
        data: dict[str, Any] = {
            "incident": report.incident, "kind": str(s.kind), "erased": report.erased, "door": report.door,
            "recovered": report.recovered, "steps_ms": {k: round(v, 3) for k, v in report.steps_ms.items()},
            "failed": sorted(report.errors), "detail": _safe_detail(s.detail),
        }
        index = self.audit.append(Event(EventKind.TAMPER, s.at, actor="system", subject="lock",
                                        outcome="erased" if report.erased else "erase_pending",
                                        reason=s.reason[:120], source=f"tamper:{s.source}"[:120], data=data))
        self.audit.checkpoint()  # sign the head now: the evidence is signed before the response ends
        return index

    def _alarm(self, report: ResponseReport) -> int:
        assert report.audit_index is not None
        found = _find_alarm(self.audit, report.audit_index)
        if found is not None:
            return found
        s = report.signal
        return self.audit.raise_alarm("tamper", "critical", f"tamper: {s.reason}", subject=f"tamper:{s.source}",
                                      events=(report.audit_index,))

    def _lock_down(self, report: ResponseReport) -> bool:
        s, now = report.signal, self.clock.now()
        with transaction(self.conn):
            self.conn.execute(
                "INSERT OR REPLACE INTO tamper_incidents(id, source, kind, reason, detected_at, completed_at, "
                "erased, door, audit_index, alarm_index, recovered, steps) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (report.incident, s.source, str(s.kind), s.reason, s.at.isoformat(), now.isoformat(),
                 int(report.erased), report.door, report.audit_index, report.alarm_index, int(report.recovered),
                 json.dumps({k: round(v, 3) for k, v in report.steps_ms.items()})),
            )
            set_lockdown_in(self.conn, report.incident, f"{s.source}: {s.reason}", s.at)
        return True


# ---------------------------------------------------------------------- helpers
def _find_tamper_event(audit: AuditSink, incident: str) -> int | None:
    for rec in audit.find(EventKind.TAMPER):
        if rec.data.get("incident") == incident:
            return rec.index
    return None


def _find_alarm(audit: AuditSink, tamper_index: int) -> int | None:
    for rec in audit.find(EventKind.ALARM, tamper_index + 1):
        if tamper_index in (rec.data.get("events") or []):
            return rec.index
    return None


def _safe_detail(detail: dict[str, Any]) -> dict[str, Any]:
    """The signal's detail fit for the audit trail: no secret-looking keys, short strings, few items."""
    from limen.audit.event import FORBIDDEN_DATA_KEYS

    out: dict[str, Any] = {}
    for key, value in list(detail.items())[:16]:
        if key.lower() in FORBIDDEN_DATA_KEYS or not isinstance(value, str | int | float | bool):
            continue
        out[key[:64]] = value[:120] if isinstance(value, str) else value
    return out


def _kind(value: str) -> SourceKind:
    try:
        return SourceKind(value)
    except ValueError:
        return SourceKind.UNKNOWN


def _parse_at(value: str) -> datetime | None:
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def _describe(exc: BaseException) -> str:
    """Type and message of a failure (Limen's errors carry no secrets; others are cut short)."""
    return f"{type(exc).__name__}: {exc}"[:200]


def evidence_missing(conn: sqlite3.Connection, audit: AuditSink) -> list[tuple[str, int]]:
    """Completed tamper responses whose TAMPER record is no longer on the audit trail: (incident, its index).

    A response crypto-erases the vault and with it the vault's sealed copy of the chain's head, so after one only
    the witness file vouches for the log: `audit.db` deleted with the witness file was an empty chain that
    verified, the tamper's evidence gone unseen.  The incident row, written by the same response into
    `limen.db`, remembers which record held it."""
    rows = conn.execute("SELECT id, audit_index FROM tamper_incidents WHERE audit_index IS NOT NULL ORDER BY "
                        "detected_at").fetchall()
    if not rows:
        return []  # the usual start: no tamper ever, no scan of the trail
    present = {rec.data.get("incident") for rec in audit.find(EventKind.TAMPER)}
    first = next(iter(audit.find(EventKind.SYSTEM)), None)  # `limen audit recover`'s chain names them first
    carried = first.data.get(CARRIED_INCIDENTS) if first is not None and first.index == 0 else None
    if isinstance(carried, list):
        present.update(str(i) for i in carried)
    return [(str(r["id"]), int(r["audit_index"])) for r in rows if r["id"] not in present]


CARRIED_INCIDENTS = "tamper_incidents"


def carried_over(conn: sqlite3.Connection, accounted: Collection[str]) -> dict[str, Any]:
    """What a replaced audit store held of the tamper responses (`limen audit recover`): their incident ids, for
    the new chain's first record.  The tamper stays on the record (the old store is kept aside as evidence), and
    its absence from the new chain is no truncation at every later start.

    Only the incidents `accounted` for by the old store (its TAMPER record, or its loss already chained there by
    `audit.record_lost`): one whose record was gone unreported (the trail deleted after the erase) is not carried,
    so the next start still chains and alarms its loss — a recover never launders a truncation."""
    ids = [str(r[0]) for r in conn.execute("SELECT id FROM tamper_incidents WHERE audit_index IS NOT NULL "
                                           "ORDER BY detected_at") if str(r[0]) in accounted]
    return {CARRIED_INCIDENTS: ids} if ids else {}


def incidents(conn: sqlite3.Connection, limit: int = 20) -> list[dict[str, Any]]:
    """The most recent completed responses, newest first."""
    rows = conn.execute("SELECT * FROM tamper_incidents ORDER BY detected_at DESC LIMIT ?", (limit,)).fetchall()
    out = []
    for row in rows:
        rec = dict(row)
        rec["steps"] = json.loads(rec["steps"] or "{}")
        out.append(rec)
    return out
