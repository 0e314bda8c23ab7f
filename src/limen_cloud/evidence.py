"""The cloud's copy of each lock's audit chain: re-verified on arrival, its head kept, cut-backs alarmed.

`ingest(session, lock, message, now)` takes one events message from the lock
(`limen.link.forward`): records are accepted only in order, each linking to the
head the cloud holds and hashing to what it claims (the lock's own chain
rules, `limen.audit.chain`).  A record the cloud already holds is a duplicate
if identical (idempotent by (lock, index)) and an alarm if different.  The
head the lock reports is compared with the cloud's: fewer records than the
cloud holds means the local trail was cut back, rolled back or deleted —
alarm `audit_truncated`, once until acknowledged.  A message that starts after the cloud's head is not
final: the lock read it from `start`, so if `start` is past the cloud's head an earlier message is late or was
lost after the broker took it (a broker restart): nothing is alarmed, the message's records wait, and the
lock is asked to resend from the cloud's head (`IngestResult.resend_from`; the bridge answers on
`limen/<id>/head`).  Only a gap in a batch the lock read from at or before the cloud's head (its log lacks
the records) is `audit_gap`.  Alarms the lock raised
itself (ALARM records) become owner alarms too.

A chain in conflict (a record refused: `audit_rewritten`, `audit_gap`, `audit_chain_broken`, `audit_old_chain`)
is not extended: the head stays, nothing is stored as verified.  The rest of that message is still read, so a lock
whose trail was cut cannot be silenced: each ALARM record in it that hashes as it claims (and is not one the cloud
holds, live or archived) becomes an owner alarm flagged `unverified`, once per record hash (a lock resending it
raises nothing again), at most `CLOUD_UNVERIFIED_ALARMS_PER_HOUR` a lock an hour; past that, one
`audit_unverified_capped` alarm an hour says more were dropped.  The lock's audit public keys
are pinned at first sight (a key announced later is kept but alarmed,
`audit_key_added`); a signed checkpoint that does not verify, or names
another record than the cloud holds, is `audit_checkpoint_invalid` (a chain
rewritten before it was first forwarded, by someone without the lock's key).

A lock replaced under the same id (smashed; the owner restored its backup onto new hardware) starts a new chain:
new audit key, records from 0.  Only the owner can say so (`mark_replaced`: a statement signed on a device
paired on the lock, `limen_cloud.statements`, and a step-up): the chain the cloud held is archived with its
head, pinned keys and that statement (`ArchivedChain`, `ArchivedRecord`; `verify_archive` re-checks it), the
head and keys are reset, and the lock stays marked until the new chain's first record is taken: its record 0 is
then accepted from genesis and its keys pinned.  While marked, keys are not pinned without a record taken, and a
record 0 that begins an archived chain is refused (`audit_old_chain`: the old lock, not a new one).
Without the mark, a new chain is what it always was: `audit_rewritten` / `audit_truncated`.

The bridge ingests many messages in one transaction (`IngestPass`): the chain is verified in memory against
the head the cloud holds, and the pass's new records and alarms are written with one executemany each at
`IngestPass.flush()` (before the commit), not one INSERT per row.  Rows written in the same pass are looked up
in the pass first, so a message delivered twice in one pass is a duplicate, not a rewrite.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, bindparam, delete, func, insert, inspect, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from limen import thresholds as T
from limen.audit.chain import FORMAT_VERSION, GENESIS, checkpoint_valid, record_hash
from limen_cloud import statements
from limen_cloud.models import Alarm, ArchivedChain, ArchivedRecord, Base, Lock, Record

MESSAGE_VERSION = 1
MAX_INDEX = 2**31 - 1  # record indexes and counts are 32-bit integer columns (PostgreSQL INTEGER); beyond: refused
UNVERIFIED_PER_HOUR = T.CLOUD_UNVERIFIED_ALARMS_PER_HOUR
UNVERIFIED_WINDOW = timedelta(hours=1)
ACK_REASON = "alarm acknowledged"  # the lock's SYSTEM record when its owner acknowledged alarms (service.feed)
_ACKS_MAX = 200  # the lock writes at most this many alarm indexes in one acknowledgement


class BadMessage(ValueError):
    """An events message that is not one (refused whole; nothing stored)."""


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    alarms: list[str] = field(default_factory=list)
    stale: bool = False  # a redelivered message older than what the cloud holds (its head not taken)
    resend_from: int | None = None  # records went missing on the way: the lock is asked to resend from here


def parse(payload: bytes, lock_id: str) -> dict[str, Any]:
    """The events message in `payload` for `lock_id`; `BadMessage` otherwise."""
    try:
        message = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError: also an integer of too many digits
        raise BadMessage(f"not JSON ({str(exc)[:100]})") from exc
    except RecursionError as exc:  # b"[" * 100_000: nested deeper than the parser's stack
        raise BadMessage("not JSON (nested too deeply)") from exc
    if not isinstance(message, dict) or message.get("v") != MESSAGE_VERSION:
        raise BadMessage("unknown message version")
    if message.get("lock") != lock_id:
        raise BadMessage("the message names another lock than the one that sent it")
    records, head = message.get("records"), message.get("head")
    if not isinstance(records, list) or not all(isinstance(r, dict) and _index(r.get("index")) for r in records):
        raise BadMessage(f"records must be a list of chained records (indexes 0 to {MAX_INDEX})")
    if not isinstance(head, dict) or not _index(head.get("count")):
        raise BadMessage(f"head must give the lock's record count (0 to {MAX_INDEX})")
    if message.get("start") is not None and not _index(message["start"]):
        raise BadMessage(f"start must be the index the lock read the batch from (0 to {MAX_INDEX})")
    keys, checkpoints = message.get("keys", {}), message.get("checkpoints", [])
    if not isinstance(keys, dict) or not all(isinstance(k, str) and isinstance(v, str) and len(v) == 44
                                             for k, v in keys.items()):
        raise BadMessage("keys must map key ids to base64 Ed25519 public keys")
    if not isinstance(checkpoints, list) or not all(isinstance(c, dict) and _index(c.get("index"))
                                                    for c in checkpoints):
        raise BadMessage(f"checkpoints must be a list of signed checkpoints (indexes 0 to {MAX_INDEX})")
    claim = message.get("claim")
    if claim is not None and not (isinstance(claim, str) and len(claim) == 64
                                  and all(c in "0123456789abcdef" for c in claim)):
        raise BadMessage("claim must be a SHA-256 hex digest")
    return message


def _index(value: Any) -> bool:
    """A record index or count the cloud can store (bool is an int in Python, not here)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INDEX


class IngestPass:
    """The rows one drain pass adds (records, alarms), written together by `flush()` in the pass's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.records: list[dict[str, Any]] = []
        self.alarms: list[dict[str, Any]] = []
        self.held: dict[tuple[str, int], str] = {}  # (lock, index) → hash of the records added in this pass
        self.raised: set[tuple[str, str]] = set()  # (lock, rule) of the alarms added in this pass
        self.unverified: dict[str, set[str]] = {}  # lock → record hashes of the unverified alarms added in this pass
        self.acks: list[dict[str, Any]] = []  # the lock's acknowledgements taken in this pass (`add_ack`)

    def add_record(self, lock_id: str, record: dict[str, Any]) -> None:
        self.records.append({"lock_id": lock_id, "idx": record["index"], "hash": record["hash"],
                             "kind": str(record.get("kind"))[:40], "at": str(record.get("at"))[:40],
                             "body": json.dumps(record, sort_keys=True)})
        self.held[(lock_id, record["index"])] = record["hash"]

    def add_alarm(self, lock_id: str, rule: str, detail: str, now: datetime, record_hash: str | None = None,
                  record: dict[str, Any] | None = None) -> None:
        """Add an alarm; with `record_hash`, one read from a record of a chain in conflict (flagged unverified);
        `record`: the lock's ALARM record taken into the chain (its index and time, the lock's clock, are kept)."""
        self.alarms.append({"lock_id": lock_id, "rule": rule[:40], "detail": detail[:400], "raised_at": now,
                            "unverified": record_hash is not None, "record_hash": record_hash,
                            "lock_index": record["index"] if record is not None else None,
                            "lock_at": str(record.get("at"))[:40] if record is not None else None})
        if record_hash is None:
            self.raised.add((lock_id, rule[:40]))
        else:
            self.unverified.setdefault(lock_id, set()).add(record_hash)

    def add_ack(self, lock_id: str, record: dict[str, Any]) -> None:
        """Someone acknowledged these alarms on the lock (a SYSTEM record of the verified chain naming the ALARM
        records' indexes): the cloud's alarms read from them note the lock's time of it, at `flush`, and stay
        pending in the cloud — whoever holds the lock (a coercer too) must not close the owner's alarm."""
        data = record.get("data")
        indexes = data.get("alarms") if isinstance(data, dict) else None
        if not isinstance(indexes, list):
            return
        chosen = sorted({i for i in indexes[:_ACKS_MAX] if _index(i) and i < record["index"]})
        if chosen:
            self.acks.append({"b_lock_id": lock_id, "b_indexes": chosen,
                              "lock_acknowledged_at": str(record.get("at"))[:40]})

    def held_hash(self, lock_id: str, index: int) -> str | None:
        """The hash of record `index` of `lock_id` as the cloud holds it (this pass's rows first)."""
        if (lock_id, index) in self.held:
            return self.held[(lock_id, index)]
        return self.session.scalar(select(Record.hash).where(Record.lock_id == lock_id, Record.idx == index))

    def flush(self) -> None:
        """Write the pass's rows: the heads of the locks it moved, then alarms (so the owner's row never waits
        behind the evidence rows), then records — one executemany each, on PostgreSQL sent together in one round
        trip (a psycopg pipeline; under load every round trip waits for the scheduler).  The heads are written
        here rather than by the ORM's flush (the same UPDATE, without its per-object bookkeeping); any other
        change to a lock is left to the ORM."""
        heads = self._moved_heads()
        if not (heads or self.alarms or self.records or self.acks):
            return
        conn = self.session.connection()
        with _pipeline(conn):
            if heads:
                conn.execute(update(LOCKS).where(LOCKS.c.lock_id == bindparam("b_lock_id")), heads)
            if self.alarms:
                conn.execute(insert(ALARMS).inline(), self.alarms)  # (inline: no RETURNING of the ids)
            if self.records:
                conn.execute(insert(RECORDS).inline(), self.records)
        for ack in self.acks:  # after the alarms: one acknowledged in the pass that raised it is found
            conn.execute(update(ALARMS).where(  # never `acknowledged_at`: only the owner closes a cloud alarm
                ALARMS.c.lock_id == ack["b_lock_id"], ALARMS.c.lock_index.in_(ack["b_indexes"]),
                ALARMS.c.unverified.is_(False), ALARMS.c.lock_acknowledged_at.is_(None)).values(
                lock_acknowledged_at=ack["lock_acknowledged_at"]))
        self.records, self.alarms, self.acks = [], [], []
        self.held.clear()
        self.raised.clear()
        self.unverified.clear()

    def _moved_heads(self) -> list[dict[str, Any]]:
        """The head columns of every lock in the session changed since it was loaded, as UPDATE parameters; the
        objects are then marked as holding those values (the ORM's flush does not write them again)."""
        rows = []
        for lock in [o for o in self.session.dirty if isinstance(o, Lock)]:
            state = inspect(lock)
            if state.pending or not any(state.attrs[k].history.has_changes() for k in HEAD_COLUMNS):
                continue
            rows.append({"b_lock_id": lock.lock_id, **{k: getattr(lock, k) for k in HEAD_COLUMNS}})
            for k in HEAD_COLUMNS:
                set_committed_value(lock, k, getattr(lock, k))
        return rows


LOCKS, ALARMS, RECORDS = (Base.metadata.tables[t] for t in ("locks", "alarms", "records"))  # (Core: no ORM bookkeeping)
HEAD_COLUMNS = ("head_count", "head_hash", "reported_count", "last_seen", "claim_hash", "audit_keys", "replaced_at")


@contextmanager
def _pipeline(conn: Connection) -> Iterator[None]:
    """On psycopg, the statements inside go in one round trip (their errors raised at the end, as SQLAlchemy's
    own exception types, so that a busy or lost database is still told apart from a message that cannot be
    stored); elsewhere nothing changes."""
    driver = conn.connection.driver_connection
    pipeline = getattr(driver, "pipeline", None) if conn.dialect.driver == "psycopg" else None
    if pipeline is None:
        yield
        return
    import psycopg  # (only on PostgreSQL)

    try:
        with pipeline():
            yield
    except psycopg.Error as exc:
        raise DBAPIError.instance(None, None, exc, psycopg.Error, dialect=conn.dialect) from exc


def ingest(session: Session, lock: Lock, message: dict[str, Any], now: datetime,
           batch: IngestPass | None = None, redelivered: bool = False) -> IngestResult:
    """Take one events message; its rows go into `batch` (written by its `flush()`), or are written now.

    `redelivered`: the broker sent it before (MQTT DUP).  Such a message, or one that carries records (the lock
    resent a batch whose acknowledgement it never got), may be one the cloud took before later ones: a head
    behind the cloud's that is a prefix of the chain the cloud holds is then old news, not a cut-back.  A cut-back
    still shows: a lock whose log is shorter than its cursor sends its head with no records, and it sends its head
    at least every `LINK_LOOP_PERIOD_S`.  The records are still checked one by one."""
    own = batch is None
    batch = batch or IngestPass(session)
    result = IngestResult()
    start = message.get("start")  # where the lock read this batch from (None: a lock that predates resending)
    records = sorted(message["records"], key=lambda r: r["index"])
    for k, record in enumerate(records):
        if record["index"] > lock.head_count and start is not None and start > lock.head_count:
            break  # an earlier message is late or lost, not the lock's records: asked for below, no alarm
        if not _take(batch, lock, record, now, result):
            _read_unverified(batch, lock, records[k:], now, result)
            break
    _check_checkpoints(batch, lock, message, now, result)
    head = message["head"]
    count, hash_ = int(head["count"]), head.get("hash")
    if start is not None and start > lock.head_count and count > lock.head_count:
        result.resend_from = lock.head_count  # the lock believes the broker took what the cloud lacks
    if count < lock.head_count and (redelivered or message["records"]) \
            and (count == 0 or batch.held_hash(lock.lock_id, count - 1) == hash_):
        result.stale = True
    elif count < lock.head_count:
        _alarm(batch, lock, "audit_truncated", now, result,
               f"the lock reports {count} audit records; the cloud holds {lock.head_count}: its trail was cut "
               "back, rolled back or deleted")
    elif count == lock.head_count and count and hash_ != lock.head_hash:
        _alarm(batch, lock, "audit_rewritten", now, result,
               f"the lock's head record {count - 1} differs from the cloud's copy")
    if not result.stale:  # an old message says nothing about the lock now
        lock.reported_count = count
        lock.last_seen = now
        if lock.owner_id is None:
            lock.claim_hash = message.get("claim")
    if own:
        batch.flush()
    return result


def _take(batch: IngestPass, lock: Lock, record: dict[str, Any], now: datetime, result: IngestResult) -> bool:
    index = record["index"]
    if index < lock.head_count:
        held = batch.held_hash(lock.lock_id, index)
        if held is not None and held == record.get("hash") and _hashes(record):
            result.duplicates += 1
            return True
        _alarm(batch, lock, "audit_rewritten", now, result,
               f"record {index} differs from the copy the cloud holds (history rewritten)")
        return False
    if index > lock.head_count:
        _alarm(batch, lock, "audit_gap", now, result,
               f"record {index} arrived while the cloud holds {lock.head_count}: records are missing")
        return False
    if record.get("v") != FORMAT_VERSION or record.get("prev") != (lock.head_hash or GENESIS) \
            or not _hashes(record):
        _alarm(batch, lock, "audit_chain_broken", now, result,
               f"record {index} does not extend the chain the cloud holds")
        return False
    if index == 0 and lock.replaced_at is not None:
        if batch.session.scalar(select(ArchivedRecord.id).where(
                ArchivedRecord.lock_id == lock.lock_id, ArchivedRecord.idx == 0,
                ArchivedRecord.hash == record["hash"]).limit(1)) is not None:
            _alarm(batch, lock, "audit_old_chain", now, result,
                   "the lock marked replaced sends the chain archived at the replacement, not a new one")
            return False
        lock.replaced_at = None  # the new chain's first record: from here on, checked as any chain
    batch.add_record(lock.lock_id, record)
    lock.head_count, lock.head_hash = index + 1, record["hash"]
    result.accepted += 1
    if record.get("kind") == "alarm":
        batch.add_alarm(lock.lock_id, f"lock:{record.get('reason')}", _alarm_text(record), now, record=record)
        result.alarms.append(f"lock:{record.get('reason')}")
    elif record.get("kind") == "system" and record.get("reason") == ACK_REASON:
        batch.add_ack(lock.lock_id, record)
    return True


def _read_unverified(batch: IngestPass, lock: Lock, records: list[dict[str, Any]], now: datetime,
                     result: IngestResult) -> None:
    """The ALARM records of a chain in conflict (not taken) become owner alarms flagged unverified: once per record
    hash, capped per lock an hour (`UNVERIFIED_PER_HOUR`, then one `audit_unverified_capped` an hour)."""
    for record in records:
        if record.get("kind") != "alarm" or not _hashes(record) or _known(batch, lock, record):
            continue
        since = now - UNVERIFIED_WINDOW
        raised = batch.session.scalar(select(func.count()).select_from(Alarm).where(
            Alarm.lock_id == lock.lock_id, Alarm.record_hash.is_not(None), Alarm.raised_at > since)) or 0
        if raised + len(batch.unverified.get(lock.lock_id, ())) >= UNVERIFIED_PER_HOUR:
            _cap(batch, lock, now, since, result)
            return
        rule = f"lock:{record.get('reason')}"
        batch.add_alarm(lock.lock_id, rule, f"UNVERIFIED (this lock's audit chain is in conflict; record "
                        f"{record['index']} not checked against it): {_alarm_text(record)}", now, record["hash"])
        result.alarms.append(f"{rule} (unverified)")


def _alarm_text(record: dict[str, Any]) -> str:
    """What an ALARM record says for people (its `data.text`), else its rule."""
    data = record.get("data")
    return str((data.get("text") if isinstance(data, dict) else None) or record.get("reason") or "alarm")


def _known(batch: IngestPass, lock: Lock, record: dict[str, Any]) -> bool:
    """Whether `record` already raised its alarm: read before (unverified), or held in the chain, live or archived."""
    hash_, index = record["hash"], record["index"]
    if hash_ in batch.unverified.get(lock.lock_id, ()) or batch.held_hash(lock.lock_id, index) == hash_:
        return True
    session = batch.session
    return session.scalar(select(Alarm.id).where(Alarm.lock_id == lock.lock_id, Alarm.record_hash == hash_)
                          .limit(1)) is not None \
        or session.scalar(select(ArchivedRecord.id).where(ArchivedRecord.lock_id == lock.lock_id,
                                                          ArchivedRecord.idx == index,
                                                          ArchivedRecord.hash == hash_).limit(1)) is not None


def _cap(batch: IngestPass, lock: Lock, now: datetime, since: datetime, result: IngestResult) -> None:
    """One `audit_unverified_capped` alarm per lock an hour (in this pass or in the database)."""
    rule = "audit_unverified_capped"
    if (lock.lock_id, rule) in batch.raised or batch.session.scalar(select(Alarm.id).where(
            Alarm.lock_id == lock.lock_id, Alarm.rule == rule, Alarm.raised_at > since).limit(1)) is not None:
        return
    batch.add_alarm(lock.lock_id, rule, f"this lock's audit chain is in conflict and it sent more than "
                    f"{UNVERIFIED_PER_HOUR} alarm records within an hour: later ones are not raised until the hour "
                    "has passed", now)
    result.alarms.append(rule)


def _check_checkpoints(batch: IngestPass, lock: Lock, message: dict[str, Any], now: datetime,
                       result: IngestResult) -> None:
    """Pin the lock's audit keys at first sight (new ids are added); every checkpoint the cloud can place must
    be signed by a pinned key and name the record the cloud holds at its index."""
    if lock.replaced_at is not None:
        return  # marked replaced, the new chain not begun: its keys are pinned with its first record
    pinned: dict[str, str] = json.loads(lock.audit_keys or "{}")
    new = {k: v for k, v in message.get("keys", {}).items() if k not in pinned}
    if new and pinned:  # a rotation, or someone who can write the lock's keys directory: the owner decides
        _alarm(batch, lock, "audit_key_added", now, result,
               f"the lock announced new audit key(s) {', '.join(sorted(new))}")
    pinned.update(new)
    lock.audit_keys = json.dumps(pinned, sort_keys=True)
    for cp in message.get("checkpoints", []):
        index = cp["index"]
        if index >= lock.head_count:
            continue  # not placed (its record was refused): the chain alarm already speaks
        held = batch.held_hash(lock.lock_id, index)
        key = pinned.get(str(cp.get("key_id")))
        try:
            valid = key is not None and checkpoint_valid(cp, Ed25519PublicKey.from_public_bytes(
                base64.b64decode(key)))
        except (ValueError, TypeError):
            valid = False
        if not valid or cp.get("hash") != held:
            _alarm(batch, lock, "audit_checkpoint_invalid", now, result,
                   f"the signed checkpoint at record {index} does not verify against the lock's audit key")
            return


def _hashes(record: dict[str, Any]) -> bool:
    try:
        return record_hash(record) == record.get("hash")
    except (TypeError, ValueError):
        return False


def _alarm(batch: IngestPass, lock: Lock, rule: str, now: datetime, result: IngestResult, detail: str) -> None:
    """Raise `rule` for `lock` once until acknowledged (pending in the database or raised earlier in this pass)."""
    result.alarms.append(rule)
    if (lock.lock_id, rule) in batch.raised:
        return
    pending = batch.session.scalar(select(Alarm.id).where(Alarm.lock_id == lock.lock_id, Alarm.rule == rule,
                                                          Alarm.acknowledged_at.is_(None)).limit(1))
    if pending is None:
        batch.add_alarm(lock.lock_id, rule, detail, now)


# ---------------------------------------------------------------------------------------------- replacement


class NotReplaceable(ValueError):
    """The lock cannot be marked replaced now (already marked, or no chain held)."""


def mark_replaced(session: Session, lock: Lock, owner_id: int, now: datetime, statement: str) -> ArchivedChain:
    """The owner's mark (after a step-up), authorised by `statement`, signed on a device paired on this lock and
    naming the head held now (`limen_cloud.statements.check`): archive the chain the cloud holds (records, head,
    pinned keys, the statement), reset the head and keys so the replacement's new chain is taken from its first
    record, and raise `lock_replaced` (an owner action every channel of the owner hears).  The caller commits;
    `NotReplaceable` and `StatementRefused` change nothing."""
    session.refresh(lock, with_for_update=True)  # the head as committed, row-locked against a drain pass
    if lock.replaced_at is not None:
        raise NotReplaceable("the lock is already marked replaced: waiting for the new lock's first record")
    if lock.head_count == 0:
        raise NotReplaceable("the cloud holds no records of this lock: nothing to archive")
    signed = statements.check(session, lock, statement, now)
    chain = ArchivedChain(lock_id=lock.lock_id, replaced_at=now, marked_by=owner_id, head_count=lock.head_count,
                          head_hash=lock.head_hash, reported_count=lock.reported_count, audit_keys=lock.audit_keys,
                          statement=statement, signed_by=signed.device, statement_counter=signed.counter)
    session.add(chain)
    session.flush()
    rows = session.execute(select(Record.idx, Record.hash, Record.kind, Record.at, Record.body)
                           .where(Record.lock_id == lock.lock_id).order_by(Record.idx)).all()
    if rows:
        session.execute(insert(ArchivedRecord), [
            {"chain_id": chain.id, "lock_id": lock.lock_id, "idx": r.idx, "hash": r.hash, "kind": r.kind,
             "at": r.at, "body": r.body} for r in rows])
    session.execute(delete(Record).where(Record.lock_id == lock.lock_id))
    # the new chain's indexes start at 0 again: its acknowledgements must not reach the archived chain's alarms
    session.execute(update(Alarm).where(Alarm.lock_id == lock.lock_id, Alarm.lock_index.is_not(None))
                    .values(lock_index=None))
    lock.head_count, lock.head_hash, lock.reported_count, lock.audit_keys = 0, None, 0, None
    lock.replaced_at = now
    session.add(Alarm(lock_id=lock.lock_id, rule="lock_replaced", raised_at=now,
                      detail=f"the owner marked the lock replaced: its {chain.head_count} audit records were "
                      "archived and the cloud takes a new chain from its first record"))
    return chain


@dataclass
class ArchiveCheck:
    """What re-verifying an archived chain found (`verified`: every link and hash that can be checked holds)."""

    records: int
    redacted: int
    verified: bool
    problem: str = ""


def verify_archive(session: Session, chain: ArchivedChain) -> ArchiveCheck:
    """Re-walk an archived chain: indexes 0…n−1, each record hashing as the lock's chain rules say and linking to
    the one before, the last one being the archived head.  A redacted record (a person erased) keeps its index
    and hash: its own body cannot be re-hashed, but the next record's link to it is still checked."""
    prev, count, redacted = GENESIS, 0, 0
    for row in session.scalars(select(ArchivedRecord).where(ArchivedRecord.chain_id == chain.id)
                               .order_by(ArchivedRecord.idx)):
        if row.idx != count:
            return ArchiveCheck(count, redacted, False, f"record {count} is missing")
        body = json.loads(row.body)
        if body.get("redacted") is True:
            redacted += 1
        elif body.get("hash") != row.hash or body.get("prev") != prev or not _hashes(body):
            return ArchiveCheck(count, redacted, False, f"record {row.idx} does not verify")
        prev, count = row.hash, count + 1
    if count != chain.head_count or (count and prev != chain.head_hash):
        return ArchiveCheck(count, redacted, False, "the records do not end at the archived head")
    return ArchiveCheck(count, redacted, True)
