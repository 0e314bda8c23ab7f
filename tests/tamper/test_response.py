from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from limen.audit.event import Event
from limen.bio.templates import Modality
from limen.config import Settings
from limen.db import open_db
from limen.errors import VaultErased
from limen.tamper import (
    SimulatedSource,
    SourceKind,
    TamperMonitor,
    TamperSignal,
    is_locked_down,
    journal_dir,
    open_responder,
)
from limen.tamper import memory as tamper_memory
from limen.tamper.journal import Intent, IntentJournal, read_pending
from limen.tamper.response import incidents
from limen.vault import open_template_store

from .conftest import Lock, embedding, enrol, signal, unsealable_templates

ORDER = ["journaled", "zeroized", "scrubbed", "door_secured", "audited", "alarmed", "locked_down", "journal_cleared"]


def tamper_events(lock: Lock) -> list[dict[str, Any]]:
    return list(lock.audit.records(0, ("tamper",)))


def test_full_response_in_order(lock: Lock) -> None:
    lock.door.unlock()
    assert lock.door.state.value == "unlocked"
    report = lock.responder.respond(signal())
    assert report.complete and not report.errors
    assert [s for s in report.steps_ms if s != "keys_destroyed"] == ORDER
    if "keys_destroyed" in report.steps_ms:  # the vault reports when its root keys were gone
        assert report.steps_ms["journaled"] <= report.steps_ms["keys_destroyed"] <= report.steps_ms["zeroized"]
    assert report.steps_ms == dict(sorted(report.steps_ms.items(), key=lambda kv: kv[1]))
    assert lock.store.status().state == "erased"
    assert unsealable_templates(lock.settings) == 0
    assert lock.door.state.value == "locked" and report.door == "locked"
    lock.audit.verify()
    (event,) = tamper_events(lock)
    assert event["data"]["incident"] == report.incident and event["source"] == "tamper:case"
    assert event["index"] <= (lock.audit.checkpoints()[-1]["index"])  # signed before the response ended
    alarm = next(lock.audit.records(report.alarm_index or 0, ("alarm",)))
    assert alarm["reason"] == "tamper" and report.audit_index in alarm["data"]["events"]
    conn = open_db(lock.settings.db_path)
    assert is_locked_down(conn)
    assert [i["id"] for i in incidents(conn)] == [report.incident]
    assert read_pending(journal_dir(lock.settings)) is None


def test_failed_erase_keeps_the_intent_and_recovery_finishes(lock: Lock) -> None:
    real_zeroize = lock.store.zeroize

    def broken() -> None:
        raise OSError("disk full")

    lock.store.zeroize = broken  # type: ignore[method-assign]
    report = lock.responder.respond(signal())
    assert not report.complete and "zeroized" in report.errors
    assert report.door == "locked" and report.audit_index is not None and report.locked_down  # the rest ran
    pending = read_pending(journal_dir(lock.settings))
    assert pending is not None and pending.incident == report.incident
    lock.store.zeroize = real_zeroize  # type: ignore[method-assign]
    again = lock.responder.recover()
    assert again is not None and again.complete and again.incident == report.incident
    assert again.audit_index == report.audit_index     # the event was found, not duplicated
    assert len(tamper_events(lock)) == 1
    assert unsealable_templates(lock.settings) == 0
    assert lock.responder.recover() is None


def test_failed_audit_is_retried_by_recovery(lock: Lock) -> None:
    class Down:
        def append(self, event: Event) -> int:
            raise OSError("audit disk gone")

    real = lock.responder.audit
    lock.responder.audit = Down()
    report = lock.responder.respond(signal())
    assert "audited" in report.errors and report.erased and not report.complete
    lock.responder.audit = real
    again = lock.responder.recover()
    assert again is not None and again.complete and again.recovered
    (event,) = tamper_events(lock)
    assert event["data"]["recovered"] is True
    lock.audit.verify()


def test_second_tamper_while_the_first_runs(lock: Lock) -> None:
    release, entered = threading.Event(), threading.Event()
    real_secure = lock.door.secure

    def slow_secure() -> Any:
        entered.set()
        release.wait(5)
        return real_secure()

    lock.door.secure = slow_secure  # type: ignore[method-assign]
    reports: list[Any] = []
    first = threading.Thread(target=lambda: reports.append(lock.responder.respond(signal("case"))))
    first.start()
    assert entered.wait(5)
    second = threading.Thread(target=lambda: reports.append(
        lock.responder.respond(signal("shock", SourceKind.SHOCK, "pulses"))))
    second.start()
    assert lock.responder.gate.blocks_unlock()
    release.set()
    first.join(10)
    second.join(10)
    assert len(reports) == 2 and all(r.complete for r in reports)
    assert {e["source"] for e in tamper_events(lock)} == {"tamper:case", "tamper:shock"}
    lock.audit.verify()
    assert unsealable_templates(lock.settings) == 0


def test_tamper_during_enrolment(lock: Lock) -> None:
    stop = threading.Event()
    outcomes: list[str] = []

    def enrolling() -> None:
        i = 100
        while not stop.is_set():
            try:
                lock.store.put(f"user-{i}", Modality.FACE, embedding(i))
                outcomes.append("ok")
            except VaultErased:
                outcomes.append("erased")
                return
            i += 1

    worker = threading.Thread(target=enrolling)
    worker.start()
    while not outcomes:
        pass
    report = lock.responder.respond(signal())
    worker.join(10)
    stop.set()
    assert report.complete and outcomes[-1] == "erased"
    assert unsealable_templates(lock.settings) == 0
    with pytest.raises(VaultErased):
        lock.store.put("late", Modality.FACE, embedding(1))


def test_tamper_at_start_up_before_the_vault_is_open(settings: Settings) -> None:
    store = open_template_store(settings)
    enrol(store)
    store.close()
    responder = open_responder(settings)  # no store handed over yet
    try:
        report = responder.respond(signal("supply", SourceKind.SUPPLY))
    finally:
        responder.close()
    assert report.complete and report.erased and report.door == "not_attached"
    assert unsealable_templates(settings) == 0
    assert is_locked_down(open_db(settings.db_path))


def test_power_cut_after_the_intent_completes_at_start(settings: Settings) -> None:
    from limen.runtime import open_runtime

    store = open_template_store(settings)
    enrol(store)
    store.close()
    journal = IntentJournal(journal_dir(settings))
    journal.begin(Intent("c" * 32, "escutcheon", "escutcheon", "held", datetime.now(UTC).isoformat()))
    journal.close()  # ... and the power goes
    rt = open_runtime(settings)
    try:
        assert rt.store.status().state == "erased"  # type: ignore[attr-defined]
        assert is_locked_down(rt.conn)
        events = list(rt.audit.records(0, ("tamper",)))  # type: ignore[attr-defined]
        assert events[-1]["data"]["incident"] == "c" * 32 and events[-1]["data"]["recovered"]
        rt.audit.verify()  # type: ignore[attr-defined]
    finally:
        rt.close()
    assert read_pending(journal_dir(settings)) is None


def test_memory_scrub_overwrites_buffers(lock: Lock) -> None:
    key, ref = bytearray(b"\x01" * 32), np.ones(128)

    class Cache:
        def __init__(self) -> None:
            self.items = {"a": 1}

        def clear(self) -> None:
            self.items.clear()

    cache = Cache()
    tamper_memory.register(cache)
    lock.responder.scrub_targets = [key, {"ref": ref}]
    lock.responder.respond(signal())
    assert key == bytearray(32) and not ref.any() and cache.items == {}


def test_monitor_key_is_a_notice_not_a_tamper(lock: Lock) -> None:
    notices: list[TamperSignal] = []
    key = SimulatedSource("key", SourceKind.KEY, monotonic=lambda: 0.0)
    monitor = TamperMonitor(lock.responder, [key], on_notice=notices.append)
    key.set(True, 0.0)
    assert monitor.poll(1.0) == []
    assert [n.source for n in notices] == ["key"]
    assert lock.store.status().state == "active"


def test_monitor_thread_responds_to_a_simulated_case_switch(lock: Lock) -> None:
    case = SimulatedSource("case", SourceKind.CASE)
    monitor = TamperMonitor(lock.responder, [case]).start()
    try:
        case.set(True)
        for _ in range(500):
            if monitor.reports:
                break
            threading.Event().wait(0.01)
    finally:
        monitor.stop()
    assert monitor.reports and monitor.reports[0].complete
    assert monitor.reports[0].signal.kind is SourceKind.CASE


def test_secret_looking_detail_never_blocks_the_evidence(lock: Lock) -> None:
    s = TamperSignal("camera", SourceKind.SENSOR, "swapped", datetime.now(UTC),
                     {"key": "oops", "serial": "x" * 1000, "sensor_kind": "camera"})
    report = lock.responder.respond(s)
    assert report.complete
    (event,) = tamper_events(lock)
    assert "key" not in event["data"]["detail"] and len(event["data"]["detail"]["serial"]) == 120


def test_unreadable_journal_is_recovered_as_a_tamper(lock: Lock) -> None:
    path = journal_dir(lock.settings) / "intent"
    path.write_bytes(b"garbage" * 10)
    report = lock.responder.recover()
    assert report is not None and report.complete and report.signal.kind is SourceKind.UNKNOWN
    assert unsealable_templates(lock.settings) == 0
    assert read_pending(journal_dir(lock.settings)) is None


def test_the_trail_deleted_after_a_tamper_erase_is_a_truncation(settings: Settings) -> None:
    """The erase takes the vault's sealed copy of the chain's head with it: `audit.db` deleted with the witness
    file then verified as an empty chain, the tamper's own evidence gone unseen (reproduced with the CLI:
    `limen tamper simulate case`, delete both, `limen audit verify` said ok, 0 records).  The incident row in
    limen.db remembers its TAMPER record: its loss is chained and alarmed at the next start, once."""
    from limen.audit import AuditTruncated, EventKind
    from limen.audit.witness import TRUNCATION_REASON, WITNESS_FILE
    from limen.runtime import open_runtime
    from limen.tamper.signals import SourceKind, TamperSignal

    rt = open_runtime(settings)
    try:
        rt.controller  # noqa: B018 - builds the tamper guard and its responder
        assert rt.monitor is not None
        report = rt.monitor.responder.respond(TamperSignal("case", SourceKind.CASE, "opened", datetime.now(UTC)))
        assert report.complete and report.erased
    finally:
        rt.close()
    for name in ("audit.db", "audit.db-wal", "audit.db-shm"):
        (settings.data_dir / name).unlink(missing_ok=True)
    (settings.keys_dir / WITNESS_FILE).unlink()

    def truncations() -> list[dict[str, Any]]:
        return [r for r in rt.audit.records(0, (EventKind.ALARM.value,)) if r["reason"] == TRUNCATION_REASON]

    for _ in range(2):  # alarmed at the first start after, not again at the next
        rt = open_runtime(settings)
        try:
            (alarm,) = truncations()
            assert f"tamper incident {report.incident[:12]}" in alarm["data"]["text"]
            with pytest.raises(AuditTruncated):
                rt.audit.verify()
        finally:
            rt.close()


def test_a_clean_start_after_a_tamper_is_no_truncation(settings: Settings) -> None:
    from limen.audit import EventKind
    from limen.audit.witness import TRUNCATION_REASON
    from limen.runtime import open_runtime
    from limen.tamper.signals import SourceKind, TamperSignal

    for _ in range(2):
        rt = open_runtime(settings)
        try:
            rt.controller  # noqa: B018
            assert rt.monitor is not None
            rt.monitor.responder.respond(TamperSignal("case", SourceKind.CASE, "opened", datetime.now(UTC)))
            assert not [r for r in rt.audit.records(0, (EventKind.ALARM.value,)) if r["reason"] == TRUNCATION_REASON]
            assert rt.audit.verify().records > 0
        finally:
            rt.close()


def _case_opened(settings: Settings) -> Any:
    """A complete tamper response to an opened case, through the runtime's monitor; its report."""
    from limen.runtime import open_runtime
    from limen.tamper.signals import SourceKind, TamperSignal

    rt = open_runtime(settings)
    try:
        rt.controller  # noqa: B018
        assert rt.monitor is not None
        report = rt.monitor.responder.respond(TamperSignal("case", SourceKind.CASE, "opened", datetime.now(UTC)))
        assert report.complete
        return report
    finally:
        rt.close()


def _recover(settings: Settings) -> None:
    """`limen audit recover --force` as typed."""
    from typer.testing import CliRunner

    from limen.cli import app
    from limen.cli.common import STATE

    STATE._settings = None
    try:
        result = CliRunner().invoke(app, ["--data-dir", str(settings.data_dir), "audit", "recover", "--force"])
    finally:
        STATE._settings = None
    assert result.exit_code == 0, result.output


def test_a_recovered_audit_store_after_a_tamper_verifies_and_names_the_tamper(settings: Settings) -> None:
    """`limen audit recover` keeps a broken store aside and starts a chain that verifies; after a tamper the
    incident's TAMPER record was in the old store only, so every later start chained it as a truncation and
    `verify` failed for good.  The new chain's first record names the incidents instead."""
    from limen.audit import EventKind
    from limen.audit.witness import TRUNCATION_REASON
    from limen.runtime import open_runtime

    report = _case_opened(settings)
    _recover(settings)
    for _ in range(2):
        rt = open_runtime(settings)
        try:
            assert not [r for r in rt.audit.records(0, (EventKind.ALARM.value,)) if r["reason"] == TRUNCATION_REASON]
            rt.audit.verify()
            first = next(iter(rt.audit.records(0, (EventKind.SYSTEM.value,))))
            assert first["reason"] == "audit_store_replaced" and report.incident in first["data"]["tamper_incidents"]
        finally:
            rt.close()


def test_a_recover_does_not_launder_a_trail_deleted_after_a_tamper(settings: Settings) -> None:
    """The trail and its witness deleted after a tamper's erase, an empty store made and `limen audit recover
    --force` run before any start: the new chain named every incident limen.db knew as carried, so the lost
    TAMPER record was never chained nor alarmed (review).  Only what the old store accounted for is carried."""
    from limen.audit import EventKind, audit_db_path, open_audit
    from limen.audit.witness import TRUNCATION_REASON
    from limen.runtime import open_runtime

    report = _case_opened(settings)
    trail = audit_db_path(settings)
    for part in [trail.with_name(trail.name + s) for s in ("", "-wal", "-shm")] + list(
            settings.keys_dir.glob("audit.witness*")):
        part.unlink(missing_ok=True)
    open_audit(settings).close()  # an empty store, as any command that opens the trail makes
    _recover(settings)
    rt = open_runtime(settings)
    try:
        lost = [r for r in rt.audit.records(0, (EventKind.ALARM.value,)) if r["reason"] == TRUNCATION_REASON]
        assert [r["subject"] for r in lost] == [f"lost:{report.incident}"]
        first = next(iter(rt.audit.records(0, (EventKind.SYSTEM.value,))))
        assert first["reason"] == "audit_store_replaced" and "tamper_incidents" not in first["data"]
    finally:
        rt.close()
    _recover(settings)  # the loss reported, the owner's next recover carries it: a chain that verifies again
    rt = open_runtime(settings)
    try:
        assert not [r for r in rt.audit.records(0, (EventKind.ALARM.value,)) if r["reason"] == TRUNCATION_REASON]
        rt.audit.verify()
    finally:
        rt.close()
