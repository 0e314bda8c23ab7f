"""`AuditLog`: the durable, hash-chained, signed audit trail on SQLite.

`append` writes the record inside `BEGIN IMMEDIATE … COMMIT` on a WAL database
with `synchronous=FULL`, so it returns only once the record is on disk; the
chain head is read inside the same transaction, so several threads and
processes can append safely.  Every `AUDIT_CHECKPOINT_EVERY` records (and on
`checkpoint()` / `close()`) a checkpoint signed with the device's Ed25519 audit
key is written in the same transaction as the record it covers.  The class is
thread-safe: one connection guarded by a re-entrant lock; reads (`verify`,
`tail`, `export`) use their own connection and never block appends.

Observers (the anomaly monitor) are called after each durable append, under
the same lock, so they see records in chain order.

Witnesses (`limen.audit.witness`) remember the head outside `audit.db`: the
witness file after every durable append, the vault's sealed copy after every
checkpoint.  `verify` fails with `AuditTruncated` when the log is shorter than
a witness says, or when the chain records a truncation found at a start.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from limen import thresholds
from limen.audit.chain import GENESIS, ChainSummary, make_checkpoint, make_record, verify_chain
from limen.audit.event import FORBIDDEN_DATA_KEYS, Event, EventKind, Recorded
from limen.audit.keys import AUDIT_KEY_NAME, SigningKey, known_public_keys
from limen.audit.schema import AUDIT_DB_MIGRATIONS
from limen.audit.witness import (
    DECLARATION_REASON,
    TRUNCATION_REASON,
    AuditTruncated,
    Head,
    Mismatch,
    Witness,
    compare,
    forged,
    missing,
)
from limen.clock import Clock, SystemClock
from limen.db import connect
from limen.errors import AuditError, BadRequest, LimenError, StorageError

log = logging.getLogger(__name__)

Observer = Callable[[int, Event], None]

_RECORD_COLUMNS = "idx, v, prev, hash, recorded_at, at, kind, actor, subject, outcome, reason, source, data"
_CHECKPOINT_COLUMNS = "v, idx, hash, at, every, device_id, key_id, signature"
_SELECT_RECORDS = f"SELECT {_RECORD_COLUMNS} FROM records"  # noqa: S608 (constant column list)
_SELECT_CHECKPOINTS = f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints"  # noqa: S608
_INSERT_RECORD = f"INSERT INTO records({_RECORD_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"  # noqa: S608
_INSERT_CHECKPOINT = f"INSERT INTO checkpoints({_CHECKPOINT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)"  # noqa: S608


class AuditLog:
    """The device's audit chain in `path` (see the module docstring for guarantees)."""

    def __init__(self, path: Path, key: SigningKey, keys_dir: Path, device_id: str,
                 clock: Clock | None = None, every: int = thresholds.AUDIT_CHECKPOINT_EVERY,
                 witness: Witness | None = None) -> None:
        self.path, self.keys_dir, self.device_id, self.every = path, keys_dir, device_id, every
        self._key, self._clock = key, clock or SystemClock()
        self._lock = threading.RLock()
        self._observers: list[Observer] = []
        self._conn: sqlite3.Connection | None = _open_store(path)
        self._last_recorded: datetime | None = None
        self.monitor: Any = None  # the anomaly monitor attached by `open_audit`
        self._close_hooks: list[Callable[[AuditLog], None]] = []
        self._witnesses: list[Witness] = [] if witness is None else [witness]
        self._checkpoint_witnesses: list[Witness] = []
        self.started_unwitnessed: int | None = None  # records found when the witness file was missing at start

    # ------------------------------------------------------------------ writing
    def append(self, event: Event) -> int:
        """Append `event` durably and return its index; raise `BadRequest` for secret-looking data."""
        return self.append_with(event, None)

    def append_with(self, event: Event, extra: Callable[[sqlite3.Connection, int], None] | None) -> int:
        """`append`, also running `extra(conn, index)` in the same transaction (outbox rows)."""
        check_event(event)
        signed = False
        with self._lock:
            conn = self._live()
            now = self._clock.now()
            try:
                with _immediate(conn):
                    jump = self._clock_jump(conn, now)
                    if jump is not None:
                        signed |= self._insert(conn, jump, now)[2]
                    index, hash_, at_checkpoint = self._insert(conn, event, now)
                    signed |= at_checkpoint
                    if extra is not None:
                        extra(conn, index)
            except sqlite3.DatabaseError as exc:
                raise StorageError(f"{self.path}: audit append failed ({exc})") from exc
            self._last_recorded = now
            head = Head(index + 1, hash_)
            self._advance(self._witnesses, head)  # after the commit: a witness never leads the log
            self._notify(index, event)
        if signed:
            self._advance(self._checkpoint_witnesses, head)  # outside the log's lock (the vault has its own)
        return index

    def raise_alarm(self, rule: str, severity: str, reason: str, *, subject: str | None = None,
                    at: datetime | None = None, events: tuple[int, ...] = ()) -> int:
        """Record an alarm through the anomaly monitor (grouping, delivery); a plain ALARM record without one."""
        if self.monitor is not None:
            return int(self.monitor.raise_alarm(rule, severity, reason, subject=subject, at=at, events=events))
        return self.append(Event(EventKind.ALARM, at or self._clock.now(), actor="system", subject=subject,
                                 outcome=severity, reason=rule, source="alarm",
                                 data={"text": reason, "events": list(events)}))

    def checkpoint(self) -> int | None:
        """Sign the current head now; return its index (None when the chain is empty)."""
        with self._lock:
            conn = self._live()
            try:
                with _immediate(conn):
                    head = conn.execute("SELECT idx, hash FROM records ORDER BY idx DESC LIMIT 1").fetchone()
                    if head is None:
                        return None
                    signed = conn.execute("SELECT MAX(idx) FROM checkpoints").fetchone()[0]
                    if signed != head["idx"]:
                        self._sign(conn, head["idx"], head["hash"])
            except sqlite3.DatabaseError as exc:
                raise StorageError(f"{self.path}: audit checkpoint failed ({exc})") from exc
            current = Head(int(head["idx"]) + 1, str(head["hash"]))
            self._advance(self._witnesses, current)
        self._advance(self._checkpoint_witnesses, current)
        return current.count - 1

    def add_witness(self, witness: Witness, checkpoints_only: bool = False) -> None:
        """Keep `witness` up to date: after every append, or only at checkpoints (costlier witnesses)."""
        with self._lock:
            (self._checkpoint_witnesses if checkpoints_only else self._witnesses).append(witness)

    def witness_mismatches(self) -> list[Mismatch]:
        """Every witness that says the log is shorter than it was, or differs; [] when all agree."""
        with self._reader() as conn:
            return self._mismatches(conn)

    def declared_witnesses(self) -> tuple[int, tuple[str, ...]] | None:
        """The chain's latest declaration of the witnesses it is kept by: (record index, identities); None for a
        chain written before declarations (a missing witness cannot then be told from a first start)."""
        with self._reader() as conn:
            return _declaration(conn)

    def declare(self, witness: Witness) -> int | None:
        """Record in the chain that `witness` is kept, once it holds a head; return the record's index (None when
        already declared, or when the witness holds nothing or cannot say what it is)."""
        identity = _identity(witness)
        if identity is None:
            return None
        with self._lock:
            try:
                if witness.read() is None:
                    return None
            except AuditError:
                return None  # a forged witness is a mismatch, reported; it is not declared over
            current = self.declared_witnesses()
            kept = current[1] if current is not None else ()
            if identity in kept:
                return None
            kind = identity.split(":", 1)[0]
            names = sorted({k for k in kept if k.split(":", 1)[0] != kind} | {identity})
            return self.append(Event(EventKind.SYSTEM, self._clock.now(), actor="system", source="audit",
                                     reason=DECLARATION_REASON, data={"witnesses": names}))

    def _mismatches(self, conn: sqlite3.Connection) -> list[Mismatch]:
        row = conn.execute("SELECT MAX(idx) FROM records").fetchone()
        records = 0 if row[0] is None else int(row[0]) + 1
        declaration = _declaration(conn)
        found = []
        for witness in [*self._witnesses, *self._checkpoint_witnesses]:
            try:
                seen = witness.read()
            except AuditError as exc:
                found.append(forged(witness.name, records, str(exc)))
                continue
            if seen is None:
                if declaration is not None and _identity(witness) in declaration[1]:
                    found.append(missing(witness.name, records, declaration[0]))
                continue
            at = conn.execute("SELECT hash FROM records WHERE idx = ?", (seen.count - 1,)).fetchone()
            problem = compare(witness.name, seen, records, None if at is None else str(at[0]))
            if problem is not None:
                found.append(problem)
        return found

    def _advance(self, witnesses: list[Witness], head: Head) -> None:
        for witness in list(witnesses):
            try:
                witness.advance(head)
            except LimenError as exc:  # the record is durable; a lagging witness only weakens detection
                log.error("audit witness %s not updated to %d records (%s)", witness.name, head.count, exc)

    def add_observer(self, observer: Observer) -> None:
        """Call `observer(index, event)` after every durable append (anomaly detection)."""
        with self._lock:
            self._observers.append(observer)

    def close(self) -> None:
        """Write the shutdown checkpoint and release the connection.

        The object stays usable: a later append (from a component that kept a
        reference) reopens the store, so one component closing the shared log
        can never make another lose an event.  `open_audit` hands out a fresh
        log after `close()` (a restart).
        """
        with self._lock:
            if self._conn is None:
                return
            try:
                self.checkpoint()
            finally:
                self._conn.close()
                self._conn = None
                for hook in self._close_hooks:
                    hook(self)

    def on_close(self, hook: Callable[[AuditLog], None]) -> None:
        self._close_hooks.append(hook)

    @property
    def closed(self) -> bool:
        return self._conn is None

    # ------------------------------------------------------------------ reading
    def verify(self) -> ChainSummary:
        """Verify every link, hash, checkpoint signature and spacing; raise `ChainBroken` at the first fault."""
        with self._reader() as conn:
            checkpoints = [dict(r) for r in conn.execute(_SELECT_CHECKPOINTS)]
            for cp in checkpoints:
                cp["index"] = cp.pop("idx")
            seen = [-1]

            def tracked() -> Iterator[dict[str, Any]]:
                for rec in _iter_records(conn.execute(_SELECT_RECORDS + " ORDER BY idx")):
                    seen[0] = rec["index"]
                    yield rec

            try:
                summary = verify_chain(tracked(), checkpoints, self.public_keys(), self.every)
                self._check_truncation(conn, summary.records)
                return summary
            except sqlite3.DatabaseError as exc:
                raise StorageError(f"{self.path}: audit database is corrupt after record {seen[0]} ({exc}); "
                                   "restore it from the last export and verify again") from exc

    def _check_truncation(self, conn: sqlite3.Connection, records: int) -> None:
        """Raise `AuditTruncated` for a witness ahead of the log now, or a truncation recorded at a start."""
        problems = self._mismatches(conn)
        if problems:
            raise AuditTruncated(problems[0].line, records)
        recorded = conn.execute("SELECT idx, data FROM records WHERE kind = 'alarm' AND reason = ? ORDER BY idx "
                                "LIMIT 1", (TRUNCATION_REASON,)).fetchone()
        if recorded is not None:
            text = str(json.loads(recorded["data"]).get("text", TRUNCATION_REASON))
            raise AuditTruncated(f"{text} (found at a start, alarm record {recorded['idx']})", records)

    def tail(self, n: int = 20) -> list[dict[str, Any]]:
        """The last `n` records, oldest first."""
        if n < 0:
            raise BadRequest("n", "must be ≥ 0")
        with self._reader() as conn:
            rows = conn.execute(_SELECT_RECORDS + " ORDER BY idx DESC LIMIT ?", (n,))
            return list(_iter_records(reversed(rows.fetchall())))

    def records(self, start: int = 0, kinds: tuple[str, ...] = ()) -> Iterator[dict[str, Any]]:
        """Records from `start` on (optionally only some kinds), oldest first."""
        with self._reader() as conn:
            sql, args = _SELECT_RECORDS + " WHERE idx >= ?", [str(start)]
            if kinds:
                sql += f" AND kind IN ({','.join('?' * len(kinds))})"
                args += [str(k) for k in kinds]
            yield from _iter_records(conn.execute(sql + " ORDER BY idx", args))

    def find(self, kind: EventKind, start: int = 0) -> Iterator[Recorded]:
        """`AuditSink.find`: the records of `kind` from `start` on, oldest first."""
        for rec in self.records(max(0, start), (kind.value,)):
            yield Recorded(int(rec["index"]), kind, rec.get("data") or {})

    def pending_deliveries(self) -> int:
        """Alarm deliveries queued in the outbox and not yet delivered (for `limen status`)."""
        with self._reader() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()[0])

    def checkpoints(self) -> list[dict[str, Any]]:
        with self._reader() as conn:
            rows = conn.execute(_SELECT_CHECKPOINTS + " ORDER BY id").fetchall()
        out = []
        for row in rows:
            cp = dict(row)
            cp["index"] = cp.pop("idx")
            out.append(cp)
        return out

    def count(self) -> int:
        with self._reader() as conn:
            row = conn.execute("SELECT MAX(idx) FROM records").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def public_keys(self) -> dict[str, Any]:
        keys = known_public_keys(self.keys_dir, AUDIT_KEY_NAME)
        keys[self._key.key_id] = self._key.public
        return keys

    @property
    def key(self) -> SigningKey:
        return self._key

    def export(self, path: Path) -> int:
        """Write the whole trail as verifiable JSON lines (see `limen.audit.export`); return the record count."""
        from limen.audit.export import export_log

        return export_log(self, path)

    # ------------------------------------------------------------------ internals
    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            log.info("audit log %s reopened after close", self.path)
            self._conn = _open_store(self.path)
        return self._conn

    def _insert(self, conn: sqlite3.Connection, event: Event, now: datetime) -> tuple[int, str, bool]:
        """Insert the record; return (index, hash, whether a checkpoint was signed with it)."""
        head = conn.execute("SELECT idx, hash FROM records ORDER BY idx DESC LIMIT 1").fetchone()
        index, prev = (0, GENESIS) if head is None else (head["idx"] + 1, head["hash"])
        rec = make_record(event, index, prev, now.isoformat())
        conn.execute(
            _INSERT_RECORD,
            (index, rec["v"], prev, rec["hash"], rec["recorded_at"], rec["at"], rec["kind"], rec["actor"],
             rec["subject"], rec["outcome"], rec["reason"], rec["source"], _json(rec["data"])),
        )
        signed = conn.execute("SELECT MAX(idx) FROM checkpoints").fetchone()[0]
        if index - (-1 if signed is None else signed) >= self.every:
            self._sign(conn, index, rec["hash"])
            return int(index), str(rec["hash"]), True
        return int(index), str(rec["hash"]), False

    def _sign(self, conn: sqlite3.Connection, index: int, hash_: str) -> None:
        cp = make_checkpoint(self._key, self.device_id, index, hash_, self._clock.now().isoformat(), self.every)
        conn.execute(
            _INSERT_CHECKPOINT,
            (cp["v"], index, hash_, cp["at"], cp["every"], cp["device_id"], cp["key_id"], cp["signature"]),
        )

    def _clock_jump(self, conn: sqlite3.Connection, now: datetime) -> Event | None:
        last = self._last_recorded
        if last is None:
            row = conn.execute("SELECT recorded_at FROM records ORDER BY idx DESC LIMIT 1").fetchone()
            try:
                last = datetime.fromisoformat(row[0]) if row else None
            except (TypeError, ValueError):
                last = None
        if last is None or (last - now).total_seconds() <= thresholds.AUDIT_CLOCK_BACKWARDS_S:
            return None
        return Event(EventKind.SYSTEM, at=now, actor="system", reason="clock_jumped_backwards",
                     source="audit", data={"previous": last.isoformat(), "now": now.isoformat()})

    def _notify(self, index: int, event: Event) -> None:
        for observer in list(self._observers):
            try:
                observer(index, event)
            except Exception:  # an observer must never lose or block the record
                log.exception("audit observer failed on record %d", index)

    class _ReaderCtx:
        def __init__(self, path: Path) -> None:
            self.path = path
            self.conn: sqlite3.Connection | None = None

        def __enter__(self) -> sqlite3.Connection:
            self.conn = connect(self.path)
            try:
                self.conn.execute("BEGIN")  # one snapshot for records and checkpoints
            except sqlite3.DatabaseError as exc:
                self.conn.close()
                raise StorageError(f"{self.path}: audit database is unreadable ({exc})") from exc
            return self.conn

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            assert self.conn is not None
            self.conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise StorageError(f"{self.path}: audit database is unreadable or corrupt ({exc})") from exc

    def _reader(self) -> AuditLog._ReaderCtx:
        return AuditLog._ReaderCtx(self.path)


# ---------------------------------------------------------------------- helpers
def check_event(event: Event) -> None:
    """Refuse events that could carry secrets or biometric data, or that cannot be chained."""
    if not isinstance(event.kind, EventKind):
        raise BadRequest("kind", f"unknown event kind {event.kind!r}")
    if event.at.tzinfo is None:
        raise BadRequest("at", "must be timezone-aware")
    for name in ("actor", "subject", "outcome", "reason", "source"):
        value = getattr(event, name)
        if value is not None and (not isinstance(value, str) or len(value) > thresholds.AUDIT_DATA_MAX_STR):
            raise BadRequest(name, f"must be a string of at most {thresholds.AUDIT_DATA_MAX_STR} characters")
    _check_value("data", event.data)


def _check_value(where: str, value: Any) -> None:
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadRequest(where, "numbers must be finite")
        return
    if isinstance(value, str):
        if len(value) > thresholds.AUDIT_DATA_MAX_STR:
            raise BadRequest(where, f"strings are limited to {thresholds.AUDIT_DATA_MAX_STR} characters")
        return
    if isinstance(value, list | tuple | dict) and len(value) > thresholds.AUDIT_DATA_MAX_ITEMS:
        raise BadRequest(where, f"at most {thresholds.AUDIT_DATA_MAX_ITEMS} items (no biometric vectors)")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise BadRequest(where, "keys must be strings")
            if key.lower() in FORBIDDEN_DATA_KEYS:
                raise BadRequest(f"{where}.{key}", "secret or biometric data must not enter the audit trail")
            _check_value(f"{where}.{key}", item)
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_value(f"{where}[{i}]", item)
        return
    raise BadRequest(where, f"{type(value).__name__} is not allowed (ids, numbers and reasons only)")


def _identity(witness: Witness) -> str | None:
    identity = getattr(witness, "identity", None)  # a witness without one is never declared
    return None if identity is None else identity()


def _declaration(conn: sqlite3.Connection) -> tuple[int, tuple[str, ...]] | None:
    row = conn.execute("SELECT idx, data FROM records WHERE kind = 'system' AND reason = ? ORDER BY idx DESC "
                       "LIMIT 1", (DECLARATION_REASON,)).fetchone()
    if row is None:
        return None
    try:
        names = json.loads(row["data"]).get("witnesses")
    except (TypeError, ValueError, AttributeError):
        names = None
    if not isinstance(names, list):
        return int(row["idx"]), ()
    return int(row["idx"]), tuple(str(n) for n in names)


def _json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _iter_records(rows: Any) -> Iterator[dict[str, Any]]:
    for row in rows:
        rec = dict(row)
        rec["index"] = rec.pop("idx")
        try:
            rec["data"] = json.loads(rec["data"])
        except (TypeError, ValueError):
            rec["data"] = {"__unparseable__": str(rec["data"])[:64]}
        yield rec


class _immediate:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any exception."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:
            self.conn.execute("ROLLBACK")


def _open_store(path: Path) -> sqlite3.Connection:
    """Open `audit.db` with Limen's durability settings and apply `AUDIT_DB_MIGRATIONS`."""
    conn = connect(path)
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER)")
        row = conn.execute("SELECT version FROM schema_versions WHERE component = 'audit'").fetchone()
        current = row[0] if row else 0
        if current > len(AUDIT_DB_MIGRATIONS):
            raise StorageError(f"{path}: audit schema v{current} is newer than this Limen")
        for version, script in enumerate(AUDIT_DB_MIGRATIONS[current:], start=current + 1):
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{script};\n"
                f"INSERT OR REPLACE INTO schema_versions(component, version) VALUES('audit', {version});\nCOMMIT;"
            )
    except sqlite3.DatabaseError as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()
        raise StorageError(f"{path}: audit database is unreadable or corrupt ({exc})") from exc
    return conn
