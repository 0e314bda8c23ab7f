"""The cloud's MQTT client: evidence and command outcomes in from every lock, signed commands out.

It subscribes to `limen/+/events`, `limen/+/result` and `limen/+/backup` (the broker's ACL lets a
lock write only under its own id, so the topic names the sender).  An encrypted backup is kept as
ciphertext (`limen_cloud.backups.store_backup`); an outcome carrying the lock's signed erasure receipt
makes the cloud erase its own copies and sign its part (`erase_in_cloud`).  A lock's
evidence is kept from its first message, unowned until an owner claims it with
the one-time code the lock showed (`limen link claim-code`; only its hash travels).  Its session
is persistent and messages are acknowledged only after they were committed, so
what locks send while the cloud is down or restarting waits at the broker.  A lost connection (broker
restarted, network partition: noticed by MQTT keep-alive) is re-established every `CLOUD_RECONNECT_S` by a
supervisor thread, which also renews it after `LINK_MAX_CONNECTION_S` (fresh TLS handshake, fresh keys).

The cloud takes lock traffic over `CLOUD_BRIDGE_CONNECTIONS` MQTT connections (`limen-cloud serve
--broker-connections`; client ids `limen-cloud`, `limen-cloud-1`, …; one certificate, so one ACL user), each with
its own paho network thread.  With one, it subscribes to `limen/+/events` etc. as it always did.  With several, the
events (the bulk: every audit record, every alarm) go over an MQTT 5 shared subscription all of them take
(`$share/limen-cloud/limen/+/events`): the broker hands each message to one of them, so a burst is received over
several sockets and threads instead of one.  Outcomes, backups and CSRs stay plain subscriptions of the first
connection: Mosquitto 2.0.11 (measured) does not restore shared subscriptions from its persistence, so what locks
publish after a broker restart and before the cloud's connections are back finds no subscriber and is dropped.
For events that is healed by the chain check (the lock's next message, at least every `LINK_LOOP_PERIOD_S`, starts
past the cloud's head: the head answer below, and the lock resends); an outcome or a backup would be lost.
Every connection keeps a persistent session and acknowledges each message itself, after the commit.  A shared
subscription may give one lock's consecutive messages to different connections; they meet again in the one worker
that owns the lock (below), in the order they were received.  Should a later message overtake an earlier one between
two connections (most likely when the sessions' queues are drained after the cloud was away), the evidence check
finds it starting past the head the cloud holds; the worker then keeps it, unacknowledged, with every later message
of that lock behind it in order, and takes them again as soon as the lock's head moved, for up to
`CLOUD_REORDER_WAIT_S`; only then is it taken as it is (the head answer below: the lock resends).  Nothing is lost,
nothing is taken twice.  The first connection also drops the events subscription of the other style from its
session (after taking its own), so the number can be changed; lowering it: a removed connection's session keeps
receiving its share at the broker until it expires (`CLOUD_SESSION_EXPIRY_S`; healed by the lock's resend as
above), so start once more with the old number to drain it.

Messages are ingested by `CLOUD_INGEST_WORKERS` workers, each owning the locks whose id hashes to it (CRC-32),
so one lock's messages are taken in the order the broker delivered them while other locks' go in parallel.  A
worker drains what is queued for it (up to `CLOUD_INGEST_BATCH`, 60) in one pass: the locks' rows in one SELECT,
the chains verified in memory, the moved heads, new alarms and records written with one executemany each (one
round trip on PostgreSQL), one commit, then the acknowledgements (`limen_cloud.evidence.IngestPass`).  A message
from an unclaimed lock, on an unknown topic, too large or malformed is refused
whole, counted by kind in `refused` (`Refusals`: counters by `Refusal` and the last `CLOUD_REFUSED_RECENT`
reasons, so a certificate holder sending garbage cannot grow the cloud's memory) and logged with its kind and
reason; nothing is stored.  A message that cannot be stored
for another reason is found by taking a failed pass again message by message, and refused alone.

A lock whose message starts after the head the cloud holds (an earlier one is late, or was lost after the
broker took it) is answered after the commit with that head on `limen/<id>/head` (QoS 1, not retained); the
lock moves its forward cursor back to it and resends (`limen.link.forward.EventForwarder.rewind`).

With the fleet CA (`ca`, `limen-cloud serve --ca-dir`) it also answers rotation requests: a CSR on
`limen/<id>/csr` from a lock the cloud knows, naming that lock, is signed (at most one per lock every
`CLOUD_CERT_MIN_INTERVAL_S`) and the certificate, once entered in the CA's ledger (`ledger`: serial → lock), published
on `limen/<id>/cert` after the commit.  The lock's acknowledgement is its own audit record "link certificate
rotated" (old and new serial), forwarded with its trail: once the chain check took it, and if the ledger says the
new serial is that lock's, the serial it replaced is revoked after the commit (`CertificateLedger.revoke`:
`limen-cloud serve --ca-dir` adds it to the CA directory's list, re-issues the CRL and pushes it to the broker,
`--crl-push`/`--broker-pid`), so the old key and certificate are refused from the broker's next handshake on.  Only
a serial the ledger gives that same lock is revoked on its word: one it does not hold (signed before the ledger
existed, or not by `limen-cloud ca sign`) is logged for the operator to revoke by hand, so a lock's key cannot
revoke another lock's certificate or the fleet services'.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import ssl
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol, overload

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine, select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from sqlalchemy.orm import Session

from limen import thresholds as T
from limen.errors import BadRequest, LinkError
from limen.link.mqtt import Delivery, MqttLink, Topics
from limen.link.pki import FleetCA, pem
from limen_cloud.backups import Refused, erase_in_cloud, store_backup
from limen_cloud.db import sessions, write_lock
from limen_cloud.evidence import BadMessage, IngestPass, ingest, parse
from limen_cloud.models import CommandLog, Lock

log = logging.getLogger(__name__)
MAX_EVENTS_BYTES = T.CLOUD_MAX_EVENTS_BYTES
BATCH = T.CLOUD_INGEST_BATCH
WORKERS = T.CLOUD_INGEST_WORKERS
CONNECTIONS = T.CLOUD_BRIDGE_CONNECTIONS
SHARE_GROUP = "limen-cloud"  # the shared subscriptions' group: every connection of the cloud takes from one
EVENTS = "limen/+/events"  # the bulk of the traffic, and the topic the chain check puts back in order
LOCK_TOPICS = (EVENTS, "limen/+/result", "limen/+/backup")
RECONNECT_S = T.CLOUD_RECONNECT_S
SESSION_EXPIRY_S = T.CLOUD_SESSION_EXPIRY_S
RECEIVE_MAXIMUM = T.CLOUD_RECEIVE_MAXIMUM
HEAD_PUBLISH_TIMEOUT_S = T.CLOUD_HEAD_PUBLISH_TIMEOUT_S
INGEST_TRIES = T.CLOUD_INGEST_TRIES
REORDER_WAIT_S = T.CLOUD_REORDER_WAIT_S


class CertificateLedger(Protocol):
    """The fleet CA's record of the certificates it issued to locks, and revocation (`limen_cloud.cli.CaDirectory`)."""

    def record(self, cert: x509.Certificate) -> None:
        """Enter a certificate just issued (before it is sent)."""

    def holder(self, serial: int) -> str | None:
        """The lock a certificate was issued to, None if the ledger does not hold it."""

    def revoke(self, serial: int, at: datetime) -> None:
        """Revoke a certificate and push the CRL to the broker."""


CERT_ROTATED = "link certificate rotated"  # the lock's audit record once it installed a new link certificate
SERIAL = re.compile(r"[0-9a-f]{1,40}")  # a certificate serial as the lock writes it (hex)


class Refusal(StrEnum):
    """Why a message from the broker was refused (the counters' keys)."""

    UNKNOWN_TOPIC = "unknown_topic"
    OVERSIZED = "oversized"
    UNKNOWN_LOCK = "unknown_lock"  # a result, backup or CSR from a lock the cloud never saw
    MALFORMED = "malformed"  # events or a result that do not parse
    BACKUP = "backup"  # `limen_cloud.backups.store_backup` refused it
    RECEIPT = "receipt"  # an erasure receipt that does not verify
    CSR = "csr"  # a rotation request not signed
    NOT_STORED = "not_stored"  # failed alone for another reason than the database being away


class Refusals(Sequence[str]):
    """The refusals of one bridge: a counter per `Refusal` (since start) and the last `CLOUD_REFUSED_RECENT` reasons
    (oldest first; indexing, `len` and `==` a list see those).  Thread-safe: every worker adds to it."""

    def __init__(self, recent: int = T.CLOUD_REFUSED_RECENT) -> None:
        self._guard = threading.Lock()
        self._counts = dict.fromkeys(Refusal, 0)
        self._recent: deque[str] = deque(maxlen=recent)

    def add(self, kind: Refusal, reason: str) -> None:
        with self._guard:
            self._counts[kind] += 1
            self._recent.append(reason)

    @property
    def counts(self) -> dict[Refusal, int]:
        """Refusals since start, by kind."""
        with self._guard:
            return dict(self._counts)

    @property
    def total(self) -> int:
        with self._guard:
            return sum(self._counts.values())

    def _snapshot(self) -> list[str]:
        with self._guard:
            return list(self._recent)

    @overload
    def __getitem__(self, k: int) -> str: ...

    @overload
    def __getitem__(self, k: slice) -> list[str]: ...

    def __getitem__(self, k: int | slice) -> str | list[str]:
        return self._snapshot()[k]

    def __len__(self) -> int:
        with self._guard:
            return len(self._recent)

    def __iter__(self) -> Iterator[str]:
        return iter(self._snapshot())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Refusals):
            other = other._snapshot()
        return isinstance(other, list) and self._snapshot() == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Refusals(total={self.total}, recent={self._snapshot()!r})"


class Unfinished(Exception):
    """A pass failed because the database is busy or away; its first `done` messages were committed."""

    def __init__(self, done: int) -> None:
        super().__init__(f"the database failed after {done} message(s) were committed")
        self.done = done


def transient(exc: BaseException) -> bool:
    """Whether `exc` says the database is busy or away (worth retrying), not that a message cannot be stored."""
    return isinstance(exc, OperationalError | InterfaceError | SATimeoutError | Unfinished) \
        or bool(getattr(exc, "connection_invalidated", False))


def _lock_of(topic: str) -> str:
    parts = topic.split("/")
    return parts[1] if len(parts) > 1 else topic


def shared(topic: str) -> str:
    """`topic` as the cloud's MQTT 5 shared subscription: the broker gives each message to one connection."""
    return f"$share/{SHARE_GROUP}/{topic}"


class CloudBridge:
    """Takes messages on `connections` MQTT connections (paho threads), ingests them on `workers` workers (a lock
    always on the same one) in passes of up to `BATCH` per transaction, and acknowledges each on its connection
    after the commit."""

    def __init__(self, engine: Engine, context: ssl.SSLContext, host: str, port: int,
                 client_id: str = "limen-cloud", on_alarms: Callable[[], None] | None = None,
                 receipt_key: Ed25519PrivateKey | None = None, ca: FleetCA | None = None,
                 workers: int | None = None, connections: int | None = None,
                 ledger: CertificateLedger | None = None) -> None:
        """`on_alarms` is called after a commit that raised alarms (the notifier's `wake`); `receipt_key` signs
        the cloud's part of erasure receipts (`limen-cloud serve` keeps it in a file; a fresh one otherwise).
        `workers`: `WORKERS` on PostgreSQL, 1 on SQLite (one writer at a time: more workers only wait in
        SQLite's busy handler, which sleeps up to 100 ms a try).  `connections`: MQTT connections sharing the
        subscriptions (`CONNECTIONS`); commands, certificates and head answers go out on the first.  `ledger`: the CA's
        record of what it issued, and revocation of what a rotation superseded (None: logged for the operator)."""
        if workers is None:
            workers = 1 if engine.dialect.name == "sqlite" else WORKERS
        self.sessions = sessions(engine)
        self.receipt_key = receipt_key or Ed25519PrivateKey.generate()
        self.on_alarms = on_alarms
        self.refused = Refusals()
        self.ca = ca
        self.ledger = ledger
        self._unrevoked: list[tuple[str, str, str, datetime]] = []  # revocations that failed, tried again
        self._revocation_guard = threading.Lock()
        self.issued: dict[str, float] = {}  # lock id → monotonic time of its last certificate (this process)
        self._outbox: list[tuple[str, bytes]] = []  # certificates issued by passes not yet committed (all workers)
        # (the connection it came on, the message); None stops the worker
        self._queues: list[queue.Queue[tuple[int, Delivery] | None]] = [queue.Queue() for _ in range(max(1, workers))]
        self._workers: list[threading.Thread | None] = [None] * len(self._queues)
        self._supervisor: threading.Thread | None = None
        self._closing = threading.Event()
        self._topics = LOCK_TOPICS + (("limen/+/csr",) if ca is not None else ())
        self._unshared = False  # the first connection dropped the other style's subscriptions from its session
        n = max(1, connections if connections is not None else CONNECTIONS)
        self._shared = n > 1
        first = tuple(shared(t) if self._shared and t == EVENTS else t for t in self._topics)
        self.links = [MqttLink(client_id if k == 0 else f"{client_id}-{k}", context, host, port,
                               subscriptions=first if k == 0 else (shared(EVENTS),),
                               session_expiry_s=SESSION_EXPIRY_S, on_delivery=self._receiver(k),
                               receive_maximum=RECEIVE_MAXIMUM)
                      for k in range(n)]
        self.mqtt = self.links[0]  # publishes commands, certificates and head answers

    def _receiver(self, k: int) -> Callable[[Delivery], None]:
        return lambda delivery: self._deliver(delivery, k)

    @property
    def connected(self) -> bool:
        """Whether every connection is up."""
        return all(link.connected for link in self.links)

    def worker_of(self, topic: str) -> int:
        """The worker that takes `topic`'s messages: by the lock id in it, so one lock's stay in order."""
        return zlib.crc32(_lock_of(topic).encode("utf-8")) % len(self._queues)

    def _deliver(self, delivery: Delivery, link: int = 0) -> None:
        """Runs on connection `link`'s network thread: only queued for the lock's worker."""
        self._queues[self.worker_of(delivery.topic)].put((link, delivery))

    def connect(self, timeout: float = 10.0) -> CloudBridge:
        """Connect (`LinkError` if the broker cannot be reached now); from then on the connections are kept up."""
        self.start_workers()
        for link in self.links:
            link.connect(timeout)
        self._unshare()
        self._closing.clear()
        if self._supervisor is None or not self._supervisor.is_alive():
            self._supervisor = threading.Thread(target=self._supervise, name="limen-cloud-bridge-link", daemon=True)
            self._supervisor.start()
        return self

    def _unshare(self) -> None:
        """Drop from the first connection's session the events subscription of the other style (the plain one left
        by a cloud with one connection, the shared one by a cloud with several), once, after this style's was taken
        (nothing goes unsubscribed; a message matching both in between comes twice, the second a duplicate).  What
        the session holds is delivered all the same."""
        if not self._unshared and self.mqtt.connected:
            self.mqtt.client.unsubscribe(EVENTS if self._shared else shared(EVENTS))
            self._unshared = True

    def _supervise(self) -> None:
        while not self._closing.wait(RECONNECT_S):
            for k, link in enumerate(self.links):
                try:
                    link.maintain()
                except LinkError as exc:  # the broker is away: try again
                    log.warning("connection %d: the broker cannot be reached (%s); retrying every %.0f s", k, exc,
                                RECONNECT_S)
                except Exception:  # never let the supervisor die with the cloud running
                    log.exception("reconnecting to the broker failed")
            try:
                self._unshare()
            except Exception:
                log.exception("could not drop the plain subscriptions")
            self.retry_revocations()

    def retry_revocations(self) -> None:
        """Try again the revocations that failed (the supervisor does, every `RECONNECT_S`; kept in memory only)."""
        with self._revocation_guard:
            pending, self._unrevoked = self._unrevoked, []
        for lock_id, old, new, at in pending:
            self._supersede(lock_id, old, new, at)

    def start_workers(self) -> None:
        """Start the workers that are not running (`connect` does)."""
        for k, worker in enumerate(self._workers):
            if worker is None or not worker.is_alive():
                worker = threading.Thread(target=self._work, args=(self._queues[k],),
                                          name=f"limen-cloud-bridge-{k}", daemon=True)
                worker.start()
                self._workers[k] = worker

    def close(self) -> None:
        self._closing.set()
        if self._supervisor is not None:
            self._supervisor.join(30)
            self._supervisor = None
        for link in self.links:
            link.close()
        for q in self._queues:
            q.put(None)
        for k, worker in enumerate(self._workers):
            if worker is not None:
                worker.join(30)
                self._workers[k] = None

    def relay(self, lock_id: str, payload: bytes) -> None:
        """Publish a signed command to the lock (QoS 1, acknowledged by the broker)."""
        self.mqtt.publish(Topics(lock_id).cmd, payload)

    def received(self, topic: str, payload: bytes) -> None:
        """Ingest one message now (its own transaction)."""
        self.process([(topic, payload)])

    def process(self, messages: list[tuple[str, bytes]], redelivered: list[bool] | None = None,
                hold: bool = False) -> list[bool]:
        """Ingest `messages` in one transaction, in order; refusals are counted, not raised.

        The locks named are read in one SELECT; events add their rows to one `IngestPass`, written before any
        other kind of message (an erasure must not precede the rows it erases) and before the commit.  A
        backup or outcome that is refused part-way is rolled back alone (its own savepoint).  `redelivered`:
        per message, whether the broker sent it before (MQTT DUP; `limen_cloud.evidence.ingest`).

        A pass that fails for a reason other than the database being busy or away (`transient`) is taken again
        message by message, in order, each in its own transaction; a message that fails alone is refused (logged,
        counted, acknowledged), so that one lock's message cannot hold back the whole fleet's.  A transient
        failure is raised (`Unfinished`, with how many messages were committed) for the caller to retry.

        Returns, per message, whether it starts past the head the cloud holds (its records were not taken: an
        earlier message is late or lost).  `hold`: the caller keeps such messages to take them again, so the lock
        is not answered with the head now."""
        dups = redelivered or [False] * len(messages)
        waiting = [False] * len(messages)
        try:
            self._commit(messages, dups, waiting, hold)
            return waiting
        except Exception as exc:
            if transient(exc):
                raise Unfinished(0) from exc
            waiting = [False] * len(messages)
            if len(messages) > 1:
                log.warning("a pass of %d messages failed (%s); taking them one by one", len(messages),
                            type(exc).__name__)
            else:
                self._refuse_failed(messages[0][0], exc)
                return waiting
        for k, (message, dup) in enumerate(zip(messages, dups, strict=True)):
            one = [False]
            try:
                self._commit([message], [dup], one, hold)
                waiting[k] = one[0]
            except Exception as exc:
                if transient(exc):
                    raise Unfinished(k) from exc
                self._refuse_failed(message[0], exc)
        return waiting

    def _refuse_failed(self, topic: str, exc: BaseException) -> None:
        log.error("a message on %s could not be stored (%s)", topic, type(exc).__name__, exc_info=exc)
        self._refuse(topic, Refusal.NOT_STORED, f"a message on {topic} could not be stored ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:120] if str(exc) else 'no detail'})")

    def _commit(self, messages: list[tuple[str, bytes]], redelivered: list[bool], waiting: list[bool],
                hold: bool = False) -> None:
        """One pass: one transaction, then the certificates and head answers it produced (none with `hold`), then
        `on_alarms`.  `waiting[k]` is set for a message that starts past the cloud's head."""
        now = datetime.now(UTC).replace(tzinfo=None)
        alarms: list[str] = []
        outbox: list[tuple[str, bytes]] = []  # certificates to publish once the pass is committed
        heads: dict[str, bytes] = {}  # lock id → the head the cloud holds, for locks asked to resend
        revocations: list[tuple[str, str, str]] = []  # (lock, replaced serial, new serial): the lock installed it
        try:
            self._pass(messages, redelivered, now, alarms, outbox, None if hold else heads, waiting, revocations)
        except Exception:  # not committed: the certificates issued in it are not sent (the lock asks again)
            for topic, _ in outbox:
                self.issued.pop(topic.split("/")[1], None)
            raise
        finally:
            for item in outbox:
                self._outbox.remove(item)
        for topic, payload in outbox:
            try:
                if self.ledger is not None:  # entered before the lock can use it (or it is not sent)
                    self.ledger.record(x509.load_pem_x509_certificate(payload))
                self.mqtt.publish(topic, payload)
            except Exception as exc:  # the broker (LinkError) or the ledger: asked again after LINK_ROTATION_RETRY_S
                log.warning("could not send a certificate on %s (%s)", topic, exc)
                self.issued.pop(topic.split("/")[1], None)
        for lock_id, payload in heads.items():
            try:
                self.mqtt.publish(Topics(lock_id).head, payload, HEAD_PUBLISH_TIMEOUT_S)
            except LinkError as exc:  # asked again at the lock's next message (at least every LINK_LOOP_PERIOD_S)
                log.warning("could not send %s the head the cloud holds (%s)", lock_id, exc)
        for lock_id, old, new in revocations:
            self._supersede(lock_id, old, new, now.replace(tzinfo=UTC))
        if alarms:
            log.warning("alarms raised: %s", ", ".join(alarms))
            if self.on_alarms is not None:
                self.on_alarms()

    def _pass(self, messages: list[tuple[str, bytes]], redelivered: list[bool], now: datetime, alarms: list[str],
              outbox: list[tuple[str, bytes]], heads: dict[str, bytes] | None = None,
              waiting: list[bool] | None = None, revocations: list[tuple[str, str, str]] | None = None) -> None:
        with self.sessions() as session, session.begin():
            write_lock(session)
            ids = {p[1] for p in (t.split("/") for t, _ in messages) if len(p) == 3}
            # held here (the identity map is weak): `session.get` below finds them without a query or a flush;
            # row-locked (PostgreSQL; SQLite's write lock is already held), so an owner's mark that resets a head
            # (`evidence.mark_replaced`) waits for the pass or the pass for it, never a lost update of the head
            held = list(session.scalars(select(Lock).where(Lock.lock_id.in_(ids)).order_by(Lock.lock_id)
                                        .with_for_update())) if ids else []
            batch = IngestPass(session)
            resend: set[str] = set()
            for k, ((topic, payload), dup) in enumerate(zip(messages, redelivered, strict=True)):
                late = [False]
                alarms += self._one(session, batch, topic, payload, now, outbox, dup, resend, late, revocations)
                if waiting is not None:
                    waiting[k] = late[0]
            batch.flush()
            for lock_id in resend:  # the head as the pass leaves it (a late message may have arrived after)
                lock = session.get(Lock, lock_id)
                if lock is not None and heads is not None:
                    heads[lock_id] = json.dumps({"v": 1, "lock": lock_id, "count": lock.head_count,
                                                 "hash": lock.head_hash}, sort_keys=True).encode("utf-8")
            del held

    def _work(self, q: queue.Queue[tuple[int, Delivery] | None]) -> None:
        held: dict[str, list[tuple[int, Delivery, float]]] = {}  # lock → its messages kept behind a late one
        while True:
            batch: list[tuple[int, Delivery]] = []
            try:
                first = q.get(timeout=0.1 if held else None)
                if first is None:
                    return
                batch.append(first)
            except queue.Empty:  # only kept messages' deadlines to look at
                pass
            while batch and len(batch) < BATCH:
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    q.put(None)
                    break
                batch.append(item)
            free: list[tuple[int, Delivery]] = []
            moved: set[str] = set()  # locks whose kept messages are worth taking again
            for item in batch:  # a lock with a message kept: its later ones queue behind it, in order
                lock_id = _lock_of(item[1].topic)
                if lock_id in held:  # tried with the kept ones (it may be the message they wait for)
                    held[lock_id].append((item[0], item[1], 0.0))
                    moved.add(lock_id)
                else:
                    free.append(item)
            if free:
                # one connection: the broker keeps a lock's order, so a message past the head means one was lost
                waiting = self._process_retrying([d for _, d in free], hold=self._shared)
                if waiting is None:
                    continue
                deadline = time.monotonic() + REORDER_WAIT_S
                for (link, d), late in zip(free, waiting, strict=True):
                    lock_id = _lock_of(d.topic)
                    if late and self._shared:  # kept, unacknowledged, until the lock's head moves
                        held.setdefault(lock_id, []).append((link, d, deadline))
                    else:  # on the connection it came on (its packet id means something only there)
                        moved.add(lock_id)
                        self.links[link].ack(d)
            now = time.monotonic()
            for lock_id in [i for i, items in held.items() if i in moved or items[0][2] <= now]:
                self._release(held, lock_id)

    def _release(self, held: dict[str, list[tuple[int, Delivery, float]]], lock_id: str) -> None:
        """Take `lock_id`'s kept messages again, in order, until no more fit: an events message is tried whenever
        its turn comes (the one it waits for may be behind it; the chain check takes it only in its place), any
        other kind only once nothing before it is kept.  One still starting past the head stays (waiting from now
        if it had just arrived) until its deadline, then is taken as it is (the lock is answered with the head
        and resends)."""
        items = held[lock_id]
        progress = True
        while progress and items:
            progress = False
            kept: list[tuple[int, Delivery, float]] = []
            for k, (link, d, deadline) in enumerate(items):
                if kept and not d.topic.endswith("/events"):  # an outcome or backup: after what came before it
                    kept.append((link, d, deadline))
                    continue
                expired = 0.0 < deadline <= time.monotonic()
                waiting = self._process_retrying([d], hold=not expired)
                if waiting is None:  # the database failed: everything stays kept, unacknowledged
                    kept += items[k:]
                    break
                if waiting[0] and not expired:
                    kept.append((link, d, deadline or time.monotonic() + REORDER_WAIT_S))
                    continue
                self.links[link].ack(d)
                progress = True
            items = kept
        if items:
            held[lock_id] = items
        else:
            del held[lock_id]

    def _process_retrying(self, batch: list[Delivery], hold: bool = False) -> list[bool] | None:
        """Ingest `batch`, retrying a failed transaction here (a later message must not overtake it: that would
        look like a gap in the lock's chain); after `INGEST_TRIES` it stays unacknowledged at the broker.  The
        messages a failed attempt committed one by one are not taken again.  Returns `process`'s waiting flags
        (False for those committed by a failed attempt), None if it gave up."""
        pending = batch
        done: list[bool] = []
        for attempt in range(INGEST_TRIES):
            try:
                messages = [(d.topic, d.payload) for d in pending]
                waiting = self.process(messages, [d.dup for d in pending], hold=True) if hold \
                    else self.process(messages, [d.dup for d in pending])
                return done + (waiting or [False] * len(pending))
            except Exception as exc:  # the database failed (busy, away)
                if isinstance(exc, Unfinished):
                    done += [False] * exc.done
                    pending = pending[exc.done:]
                log.warning("could not ingest %d message(s) (try %d of %d)", len(pending), attempt + 1,
                            INGEST_TRIES, exc_info=attempt == INGEST_TRIES - 1)
                time.sleep(min(0.2 * 2 ** attempt, 5.0))
        log.error("gave up on %d message(s); they stay at the broker until the cloud reconnects", len(batch))
        return None

    def _one(self, session: Session, batch: IngestPass, topic: str, payload: bytes, now: datetime,
             outbox: list[tuple[str, bytes]], redelivered: bool = False, resend: set[str] | None = None,
             late: list[bool] | None = None, revocations: list[tuple[str, str, str]] | None = None) -> list[str]:
        parts = topic.split("/")
        if len(parts) != 3 or parts[0] != "limen" or parts[2] not in ("events", "result", "backup", "csr"):
            return self._refuse(topic, Refusal.UNKNOWN_TOPIC, "unknown topic")
        if len(payload) > (T.LINK_MAX_BACKUP_BYTES if parts[2] == "backup" else MAX_EVENTS_BYTES):
            return self._refuse(topic, Refusal.OVERSIZED, f"oversized ({len(payload)} bytes)")
        lock_id = parts[1]
        lock = session.get(Lock, lock_id)
        if parts[2] in ("result", "backup", "csr") and lock is None:
            return self._refuse(topic, Refusal.UNKNOWN_LOCK, f"a {parts[2]} from a lock the cloud never saw")
        if parts[2] == "csr":
            return self._csr(lock_id, payload, topic, now, outbox)
        if parts[2] in ("backup", "result"):
            assert lock is not None
            batch.flush()  # the events before it are written first (an erasure deletes them)
            if parts[2] == "result":
                return self._result(session, lock, payload, topic, now)
            try:
                with session.begin_nested():  # a backup refused part-way leaves nothing
                    store_backup(session, lock, payload, now)
            except Refused as exc:
                return self._refuse(topic, Refusal.BACKUP, str(exc))
            return []
        try:
            message = parse(payload, lock_id)
        except BadMessage as exc:
            return self._refuse(topic, Refusal.MALFORMED, f"events from {lock_id!r}: {exc}")
        if lock is None:  # its evidence is kept from the first message; an owner claims it with its code
            lock = Lock(lock_id=lock_id, owner_id=None, name=lock_id, head_count=0, reported_count=0)
            session.add(lock)
            session.flush()
        before = lock.head_count
        result = ingest(session, lock, message, now, batch, redelivered)
        if revocations is not None and lock.head_count > before:  # records before..head were taken just now
            revocations += [(lock_id, *r) for r in _rotations(message["records"], before, lock.head_count)]
        if result.resend_from is not None and resend is not None:
            log.info("%s: records from %d are late or lost", lock_id, result.resend_from)
            resend.add(lock_id)
            if late is not None:
                late[0] = True
        return [f"{lock_id}:{a}" for a in result.alarms]

    def _result(self, session: Session, lock: Lock, payload: bytes, topic: str, now: datetime) -> list[str]:
        try:
            outcome = json.loads(payload.decode("utf-8"))
            if not isinstance(outcome, dict):
                raise ValueError("expected an object")
        except (UnicodeDecodeError, ValueError) as exc:
            return self._refuse(topic, Refusal.MALFORMED, f"malformed result ({exc})")
        pending = session.scalar(select(CommandLog).where(CommandLog.lock_id == lock.lock_id,
                                                          CommandLog.result.is_(None)).order_by(CommandLog.id).limit(1))
        if pending is not None:
            pending.result = json.dumps(outcome, sort_keys=True)
        data = outcome.get("data")
        receipt = data.get("receipt") if isinstance(data, dict) else None
        if outcome.get("executed") is True and outcome.get("action") in ("erase", "decommission") \
                and isinstance(receipt, str):
            try:
                with session.begin_nested():  # a receipt refused part-way erases nothing
                    erase_in_cloud(session, lock, receipt, self.receipt_key, now)
            except Refused as exc:
                return self._refuse(topic, Refusal.RECEIPT, str(exc))
            if pending is not None and outcome.get("action") == "erase":  # its args may name the person
                pending.payload = json.dumps({"redacted": "erasure"})
        return []

    def _csr(self, lock_id: str, payload: bytes, topic: str, now: datetime,
             outbox: list[tuple[str, bytes]]) -> list[str]:
        """Sign a known lock's rotation CSR (its own name only, rate-limited); the certificate goes out later."""
        if self.ca is None:
            return self._refuse(topic, Refusal.CSR, "no fleet CA configured: certificates are issued by hand")
        last = self.issued.get(lock_id)
        if last is not None and time.monotonic() - last < T.CLOUD_CERT_MIN_INTERVAL_S:
            return self._refuse(topic, Refusal.CSR, "a certificate was issued to this lock moments ago")
        try:
            cert = self.ca.issue(payload, now.replace(tzinfo=UTC))
        except BadRequest as exc:
            return self._refuse(topic, Refusal.CSR, f"CSR refused ({exc})")
        names = [n.value for n in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if names != [lock_id]:
            return self._refuse(topic, Refusal.CSR, "the CSR names another lock than the one that sent it")
        self.issued[lock_id] = time.monotonic()
        item = (Topics(lock_id).cert, pem(cert))
        outbox.append(item)
        self._outbox.append(item)
        log.info("issued certificate %x to %s", cert.serial_number, lock_id)
        return []

    def _supersede(self, lock_id: str, old: str, new: str, at: datetime) -> None:
        """The lock installed certificate `new` in place of `old` (its record, taken by the chain check): revoke
        `old` if the ledger gives both to that lock."""
        if self.ledger is None:
            log.warning("%s installed certificate %s: revoke the one it replaced, %s, by hand (no CA directory)",
                        lock_id, new, old)
            return
        try:
            issued_to, held_by = self.ledger.holder(int(new, 16)), self.ledger.holder(int(old, 16))
            if issued_to != lock_id:
                log.warning("%s reports installing certificate %s, which the fleet CA's ledger does not give it: %s "
                            "is not revoked", lock_id, new, old)
            elif held_by != lock_id:
                log.warning("%s says its certificate %s replaced %s, which the ledger gives %s: not revoked "
                            "(limen-cloud ca revoke it by hand if it was %s's)", lock_id, new, old,
                            held_by or "no lock", lock_id)
            elif old != new:
                self.ledger.revoke(int(old, 16), at)
                log.warning("revoked %s's certificate %s, superseded by %s: the broker refuses it from its next "
                            "handshake", lock_id, old, new)
        except Exception:  # the CA directory or the broker: tried again by the supervisor while the cloud runs
            log.exception("could not revoke %s's superseded certificate %s (tried again every %.0f s while the cloud "
                          "runs; or limen-cloud ca revoke it by hand)", lock_id, old, RECONNECT_S)
            with self._revocation_guard:
                self._unrevoked.append((lock_id, old, new, at))

    def _refuse(self, topic: str, kind: Refusal, reason: str) -> list[str]:
        self.refused.add(kind, reason)
        log.warning("refused a message on %r (%s): %s", topic[:200], kind.value, reason)
        return []


def _rotations(records: list[dict[str, object]], start: int, end: int) -> list[tuple[str, str]]:
    """(replaced serial, new serial) of the lock's "link certificate rotated" records among indexes start..end-1."""
    found: dict[int, tuple[str, str]] = {}  # by index: a record sent twice in one message counts once
    for record in records:
        index, data = record.get("index"), record.get("data")
        if isinstance(index, int) and start <= index < end and record.get("kind") == "config_change" \
                and record.get("subject") == "link" and record.get("reason") == CERT_ROTATED and isinstance(data, dict):
            old, new = data.get("old_serial"), data.get("serial")
            if isinstance(old, str) and isinstance(new, str) and SERIAL.fullmatch(old) and SERIAL.fullmatch(new):
                found[index] = (old, new)
    return list(found.values())
