"""The tamper-evident audit trail, its anomaly rules and alarm delivery.

    from limen.audit import Event, EventKind, open_audit
    audit = open_audit(settings)                 # one shared, thread-safe log per data dir
    index = audit.append(Event(EventKind.TAMPER, at, source="tamper:case", reason="case_opened"))
    audit.verify()                               # raises ChainBroken(index, reason)

A witness of the chain head outside `audit.db` (`limen.audit.witness`) makes a
truncated, emptied or deleted log an alarm at the next start and a failure of
`verify` (`AuditTruncated`, a `ChainBroken`).  The chain records which
witnesses it is kept by, so a witness deleted with the tail is a truncation too.

`open_audit` attaches the anomaly monitor, so appending an event is enough for
the rules to raise alarms; `raise_alarm(audit, …)` raises one directly; a
`Dispatcher` (started by the service, or `limen alerts deliver`) delivers them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path
from typing import Any

from limen.audit.alarms import Monitor, raise_alarm
from limen.audit.anomaly import AnomalyConfig, AnomalyDetector, Finding, Rule, Severity
from limen.audit.chain import ChainSummary
from limen.audit.channels import Channel, build_channels, usable_channels, verify_webhook_signature
from limen.audit.delivery import DeliveryResult, Dispatcher
from limen.audit.event import AuditSink, Event, EventKind, MemoryAuditSink, attempt_event
from limen.audit.export import ExportSummary, verify_export
from limen.audit.keys import AUDIT_KEY_NAME, SigningKey, load_or_create_key
from limen.audit.log import AuditLog
from limen.audit.witness import (
    TRUNCATION_REASON,
    WITNESS_FILE,
    AuditTruncated,
    FileWitness,
    Head,
    Mismatch,
    Witness,
)
from limen.clock import Clock
from limen.config import Settings
from limen.errors import AuditError, KeyStoreError, LimenError

log = logging.getLogger(__name__)

__all__ = [
    "AnomalyConfig", "AnomalyDetector", "AuditLog", "AuditSink", "AuditTruncated", "ChainSummary", "Channel",
    "DeliveryResult", "Dispatcher", "Event", "EventKind", "ExportSummary", "Finding", "MemoryAuditSink", "Monitor",
    "Rule", "Severity", "attach_witness", "attempt_event", "audit_db_path", "open_audit", "open_dispatcher",
    "quarantine_store", "raise_alarm", "record_lost", "reported_lost", "witness_file", "verify_export",
    "verify_webhook_signature",
]

_OPEN: dict[Path, AuditLog] = {}
_OPEN_LOCK = threading.Lock()


def audit_db_path(settings: Settings) -> Path:
    """`audit.db` in the data directory (separate from `limen.db`: see `limen.audit.schema`)."""
    return settings.data_dir / "audit.db"


def open_audit(settings: Settings, clock: Clock | None = None) -> AuditLog:
    """The device's audit log, shared per data directory in this process, with its anomaly monitor.

    Creates `audit.db` and the Ed25519 audit key (`keys_dir/audit_ed25519`) on
    first use.  The returned log is thread-safe; `close()` writes the shutdown
    checkpoint, after which the next `open_audit` opens a fresh one (a stale
    reference keeps working: it reopens the store on its next append).  `clock`
    applies only when this call opens the log.
    """
    path = audit_db_path(settings).resolve()
    with _OPEN_LOCK:
        audit = _OPEN.get(path)
        if audit is None or audit.closed:
            key, replaced = _audit_key(settings)
            try:
                witness: FileWitness | None = witness_file(settings)
            except KeyStoreError as exc:  # token absent: the trail keeps recording, the witness waits (unchanged)
                witness, missing = None, str(exc)
            started = witness is not None and not witness.exists()
            audit = AuditLog(path, key, settings.keys_dir, settings.device_id, clock, witness=witness)
            found = audit.count()
            problems = audit.witness_mismatches()  # before anything is appended
            channels, unusable = usable_channels(settings.alert_urls, settings.keys_dir)
            Monitor(audit, channels, clock).attach()
            if witness is None:
                audit.append(Event(EventKind.SYSTEM, audit._clock.now(), actor="system", source="audit",
                                   reason="audit_witness_unavailable", data={"problem": missing[:200]}))
            else:
                _record_truncation(audit, problems, witness)
            declared = any(p.witness == FileWitness.name for p in problems)  # the chain says it was kept: critical
            if started and audit.count() > 0 and not declared:
                # a chain that does not record its witnesses (written before they were recorded): deleted, or the
                # first start of a version with witnesses, cannot be told apart; alarmed, not fatal
                audit.started_unwitnessed = audit.count()  # unless a checkpoint witness shows it was deleted
                raise_alarm(audit, Rule.AUDIT_WITNESS_MISSING, Severity.WARNING,
                            f"audit witness missing: started over an existing log of {audit.count()} records "
                            "(deleted, or the first start of a version with witnesses); this chain does not "
                            "record which witnesses it is kept by, so a deletion cannot be told from a first "
                            "start: it records them from now on",
                            data={"records": audit.count()})
            if witness is not None and (found or problems):  # a brand-new chain declares at its next start
                _declare(audit, witness)
            if replaced is not None:
                audit.append(Event(EventKind.SYSTEM, audit._clock.now(), actor="system", source="audit",
                                   reason="audit_key_replaced", data={"previous": replaced, "key_id": key.key_id}))
            for problem in unusable:  # a typo in the settings must not stop the trail: record it instead
                audit.append(Event(EventKind.SYSTEM, audit._clock.now(), actor="system", source="audit",
                                   reason="alert_channel_unusable", data={"problem": problem[:200]}))
            audit.on_close(_forget)
            _OPEN[path] = audit
        return audit


def witness_file(settings: Settings) -> FileWitness:
    """The head witness beside the key store (`keys_dir/audit.witness`), MAC'd by its side key."""
    from limen.vault.keystore.sidekeys import AUDIT_WITNESS, open_side_key

    return FileWitness(settings.keys_dir / WITNESS_FILE, open_side_key(settings, AUDIT_WITNESS), settings.device_id)


def attach_witness(audit: AuditLog, witness: Witness) -> None:
    """Add a checkpoint witness (the vault's sealed head); a mismatch now raises the truncation alarm.

    The witness file missing at this start over a non-empty log is a deletion, not a first start of a
    version with witnesses, when this witness has a head (both were always written together): the records
    after its last checkpoint were vouched for by that file alone, so a log cut back to a checkpoint with
    the file deleted would verify.  That is alarmed as a truncation (`verify` fails), as a forged file is.
    """
    audit.add_witness(witness, checkpoints_only=True)
    problems = [p for p in audit.witness_mismatches() if p.witness == witness.name]
    records, audit.started_unwitnessed = audit.started_unwitnessed, None
    if records is not None and not problems:
        with contextlib.suppress(AuditError):  # an unreadable witness is already one of the problems
            seen = witness.read()
            if seen is not None:
                problems.append(Mismatch(
                    FileWitness.name, seen.count, records,
                    f"audit witness file deleted: {witness.name} vouches for {seen.count} of the {records} "
                    "records found at start; any cut back to it cannot be seen"))
    _record_truncation(audit, problems, witness)
    audit.checkpoint()
    if audit.declared_witnesses() is not None:  # declared along with the witness file, from a chain's second start
        audit.declare(witness)  # from now on this vault's copy missing is a truncation, not "nothing witnessed"


def _declare(audit: AuditLog, witness: Witness) -> None:
    """Make `witness` hold the current head, then record in the chain that it is kept (once)."""
    last = audit.tail(1)
    try:
        witness.advance(Head(int(last[0]["index"]) + 1, str(last[0]["hash"])) if last else Head(0, ""))
    except LimenError as exc:  # the trail goes on; undeclared, a missing witness stays a warning
        log.error("audit witness %s not created (%s)", witness.name, exc)
        return
    audit.declare(witness)


def record_lost(audit: AuditLog, lost: list[tuple[str, int]], what: str) -> int:
    """Chain (and alarm) as a truncation each record another file says this trail held and it does not
    (`lost`: (reference, record index), `what` names them, e.g. "tamper incident"), once per reference: `verify`
    fails from then on.  Return how many were new."""
    if not lost:
        return 0
    alarmed = reported_lost(audit)
    new = [(ref, index) for ref, index in lost if ref not in alarmed]
    last = audit.tail(1)
    records = int(last[0]["index"]) + 1 if last else 0
    for ref, index in new:
        raise_alarm(audit, Rule.AUDIT_TRUNCATED, Severity.CRITICAL,
                    f"audit log truncated: {what} {ref[:12]} was chained as record {index}, which the log no "
                    f"longer holds ({records} records found at start)", subject=_LOST + ref,
                    data={"witness": what, "witnessed": index + 1, "records": records})
    return len(new)


def reported_lost(audit: AuditLog) -> frozenset[str]:
    """The references `record_lost` has chained (and alarmed) as lost on this trail."""
    return frozenset(str(r["subject"])[len(_LOST):] for r in audit.records(0, (EventKind.ALARM.value,))
                     if r["reason"] == TRUNCATION_REASON and str(r["subject"] or "").startswith(_LOST))


_LOST = "lost:"  # the subject prefix of `record_lost`'s alarms


def _record_truncation(audit: AuditLog, problems: list[Mismatch], witness: Witness) -> None:
    """Chain (and alarm) each mismatch, then let `witness` follow this chain: the alarm keeps `verify` failing."""
    for problem in problems:
        raise_alarm(audit, Rule.AUDIT_TRUNCATED, Severity.CRITICAL, problem.line,
                    data={"witness": problem.witness, "witnessed": problem.witnessed, "records": problem.records})
    if problems:
        last = audit.tail(1)[0]
        witness.reset(Head(int(last["index"]) + 1, str(last["hash"])))


def _audit_key(settings: Settings) -> tuple[SigningKey, str | None]:
    """The audit key; an unreadable one is kept aside and replaced (its public key stays known)."""
    import os
    from datetime import UTC, datetime

    from limen.errors import AuditError

    try:
        return load_or_create_key(settings.keys_dir), None
    except AuditError:
        bad = settings.keys_dir / AUDIT_KEY_NAME
        if not bad.exists():
            raise
        kept = bad.with_name(f"{bad.name}.broken-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
        os.replace(bad, kept)
        return load_or_create_key(settings.keys_dir), kept.name


def quarantine_store(settings: Settings, force: bool = False, witnesses: tuple[Witness, ...] = (),
                     carried: dict[str, Any] | None = None) -> Path:
    """Move an unreadable or broken `audit.db` aside (kept as evidence) and start a new chain.

    Refuses (`AuditError`) when the store verifies, unless `force`.  The new
    chain's first record names the preserved file and its SHA-256, so the
    replacement itself is on the record, and carries `carried` (what other
    files say the old chain held: `tamper.response.carried_over`).  Returns the
    preserved file's path.
    """
    import contextlib
    import hashlib
    import os
    from datetime import UTC, datetime

    from limen.errors import AuditError, LimenError

    path = audit_db_path(settings)
    if not path.exists():
        raise AuditError(f"{path}: no audit store to recover")
    if not force:
        try:
            open_audit(settings).verify()
        except LimenError:
            pass
        else:
            raise AuditError(f"{path}: the audit store verifies; nothing to recover")
    with _OPEN_LOCK:
        stale = _OPEN.pop(path.resolve(), None)
    if stale is not None:
        with contextlib.suppress(LimenError):
            stale.close()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.broken-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            os.replace(part, target.with_name(target.name + suffix))
    for witness in (witness_file(settings), *witnesses):  # the owner's new chain starts at 0 (and says why)
        witness.reset(Head(0, ""))
    audit = open_audit(settings)
    audit.append(Event(EventKind.SYSTEM, audit._clock.now(), actor="system", source="audit",
                       reason="audit_store_replaced",
                       data={**(carried or {}), "previous": target.name, "previous_sha256": digest}))
    audit.checkpoint()
    return target


def _forget(audit: AuditLog) -> None:
    with _OPEN_LOCK:
        if _OPEN.get(audit.path) is audit:
            del _OPEN[audit.path]


def open_dispatcher(settings: Settings, audit: AuditLog | None = None, pin_factory: object = None,
                    clock: Clock | None = None) -> Dispatcher:
    """A `Dispatcher` over the configured channels (call `.start()` for background delivery)."""
    audit = audit or open_audit(settings, clock)
    channels = build_channels(settings.alert_urls, settings.keys_dir, pin_factory)
    if isinstance(audit.monitor, Monitor):
        channels = {**channels, **{k: v for k, v in audit.monitor.channels.items() if k not in channels}}
        audit.monitor.channels = channels
    return Dispatcher(audit, channels, clock)
