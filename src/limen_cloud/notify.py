"""Alarm fan-out to the owner's phone: every new alarm of a claimed lock goes to the owner's apprise channels.

Two threads carry the apprise path.  The **reader** (`_fetch`), woken by the bridge after each commit that raised
alarms (`wake()`), reads the undelivered alarms of claimed locks (one statement outside a transaction) and holds
them in memory by owner; the **sender** (`_send_due`) hands an owner's held alarms to a bounded pool
(`CLOUD_APPRISE_PARALLEL` owners at once, one job per owner at a time) the moment the owner may get a message, so
no database read lies between an owner's window closing and its message.  A job sends to every channel the owner
configured (`PUT /api/owners/me/alerts`) through the Apprise objects built for that channel set — built once and
kept (`CLOUD_APPRISE_CACHE_OWNERS`, least recently used dropped), rebuilt when the owner's list of URLs differs
from the one they were built from.  **Coalescing**: an owner's first alarm after a quiet spell goes at once,
alone; alarms that arrive within `CLOUD_APPRISE_COALESCE_S` of that owner's last message (counted from its start)
wait until the window closes and then go as ONE message per channel ("12 alarms at Front door, first: …", with
the alarm ids): at most one message per channel per window, so a burst of 1,000 alarms is a handful of
notifications, not 1,000.  Every alarm a message carried is marked delivered when every channel took it,
otherwise each keeps the error and its owner's alarms are retried (all together again) after
`CLOUD_ALARM_RETRY_S`; these records are written by one marker thread, one transaction for all the messages sent
meanwhile (1,000 owners' first alarms, `bench/apprise_owners.py`: 2.25-2.53 s instead of 2.84-3.15 s).  The owner
is free for its next message as soon as one ended (the write is not between two messages); the alarms a message
carried stay out of every later read and message until their record is written (nothing sent twice), and one
not written leaves its alarms due: the owner waits the retry delay, then they are sent again (at least once).
What the reader holds waits at most the owner's window (an owner whose message failed is not read for until its
retry; one whose message runs longer than the window is not read for until it ended).
`start()` runs the apprise reader and sender and the webhook/push loop on their own threads, so none waits for
another.  URLs hold tokens: they are never logged or returned by the API (only channel ids).

Beside apprise, each alarm goes to the owner's **community security webhook** (set on `/account`): a JSON POST
signed with HMAC-SHA256 under the secret the owner was shown once, `X-Limen-Signature: v1=<hex>` over
`<X-Limen-Timestamp>.<body>` (`verify_webhook` is the receiver's check).  Any answer but 2xx, a redirect or a
timeout is retried with exponential backoff (`CLOUD_WEBHOOK_BACKOFF_S` doubling to `…_MAX_S`), at most
`CLOUD_WEBHOOK_MAX_ATTEMPTS` times; only the status is kept (the receiver's answer is not).

No server-side request forgery: the webhook's host is resolved once per connection and the POST goes to that
checked address (TLS still verifies the name); the notifier keeps connections alive for the next POSTs to the
same destination (`ConnectionPool`: a burst's alarms go over a few connections, each still its own signed POST),
never past `CLOUD_WEBHOOK_KEEPALIVE_S` from the check; loopback, private, link-local, shared, reserved and multicast
addresses are refused unless the operator allow-listed them (`limen-cloud serve --webhook-allow CIDR`).
A refused destination, a refused connection and a timeout all leave the same text, "not reached", so an
owner cannot map the cloud's network with them.  Web push goes the same way (`post_pinned`: pywebpush only
encrypts and signs).  Each such POST ends by its timeout as a whole (a watchdog cuts a receiver that answers a
byte at a time: the notifier's one loop delivers every owner's alarms) and the answer's body is never kept (a
short one of known length is read and dropped, so that its connection can be kept).  A kept connection the
receiver closed while idle is replaced once, at once; delivery is at least once (that, or a timeout after the
receiver took the alarm, repeats it): receivers de-duplicate by `alarm_id`.

A destination removed or replaced (an apprise channel, the webhook, a browser) is told of that change itself:
the account alarm raised for it carries a snapshot of what it removed (`FormerDestination`, one row each), and
`deliver_former` sends that alarm there too, once (at least once), beside the destinations the account has when
it is sent — otherwise replacing the owner's only channel would tell the thief's alone, and removing every
destination would tell no one.  The snapshot (URL, secret, keys) is cleared once delivered or given up.

Apprise channels go through libraries that resolve names themselves (requests/urllib3, smtplib, paho).  They
run inside `egress_guard(allow)`: while it is active in the calling context, every name resolution
(`socket.getaddrinfo`, which those libraries call right before they connect, also for address literals and
redirects; NOT the target behind an HTTP(S)_PROXY from the environment, which the proxy resolves) keeps only
the addresses `destination_allowed` accepts, so the address connected to is the one checked at that moment —
a name re-pointed at 127.0.0.1 after it was saved (DNS rebinding) is refused.  The guard is a context variable:
apprise copies the caller's context into its worker threads; other threads of the process (the database, the
broker) are not affected.  Apprise's own timeouts are per read: `connection_deadline(APPRISE_DEADLINE_S)` cuts
every connection one message made, so a trickling channel holds only its owner's job, never the others'.  A kept
Apprise object makes its connections the same way, inside the guard and the deadline of the message being sent.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import heapq
import hmac
import http.client
import ipaddress
import itertools
import json
import logging
import os
import socket
import ssl
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import Engine, and_, or_, select, update

from limen import thresholds as T
from limen.audit.channels import DeliveryFailed, apprise_object, channel_id, message, send_apprise
from limen_cloud.db import sessions, write_lock

if TYPE_CHECKING:
    from py_vapid import Vapid02
from limen_cloud.models import Alarm, FormerDestination, Lock, Owner, PushSubscription

log = logging.getLogger(__name__)
RETRY_S = T.CLOUD_ALARM_RETRY_S
APPRISE_PASS = T.CLOUD_APPRISE_PASS
APPRISE_DEADLINE_S = T.CLOUD_APPRISE_DEADLINE_S  # (read at each send: tests shorten it)
WEBHOOK_PASS = T.CLOUD_WEBHOOK_PASS  # (module values: bench/fleet.py's tuning runs set them)
WEBHOOK_PARALLEL = T.CLOUD_WEBHOOK_PARALLEL
WEBHOOK_INFLIGHT = T.CLOUD_WEBHOOK_INFLIGHT
SEVERITY = {"audit_truncated": "critical", "audit_rewritten": "critical", "audit_chain_broken": "critical",
            "audit_gap": "warning", "audit_checkpoint_invalid": "critical", "audit_key_added": "warning",
            "audit_old_chain": "critical",  # the replaced lock's old chain is still sending: a stolen device?
            "lock_replaced": "warning",
            # a replacement mark refused (a forged or replayed statement): someone tries to reset the evidence head
            "lock_replace_refused": "critical",
            # the account's own alarms (ACCOUNT_ALARMS): a destination, the password or the authenticator changed, a
            # backup deleted — with a phished password and code, the one warning before the owner is locked out
            "alarm_destination_added": "critical", "alarm_destination_removed": "critical",
            "password_changed": "critical", "password_reset": "critical", "authenticator_enrolled": "critical",
            "backup_deleted": "critical"}


class AlarmNotifier:
    def __init__(self, engine: Engine, webhook_allow: Iterable[str] = (), *, vapid: Vapid02 | None = None,
                 vapid_contact: str = "", coalesce_s: float = T.CLOUD_APPRISE_COALESCE_S,
                 retry_s: float = RETRY_S) -> None:
        """`webhook_allow`: networks (CIDR) the community webhook, apprise channels and push services may reach
        although not public.  `vapid`: the cloud's VAPID key (web push is off without it); `vapid_contact`: the
        operator's mailto: or https: address put in every VAPID token (RFC 8292 `sub`).  `coalesce_s`: an
        owner's apprise coalescing window; `retry_s`: when an owner's failed apprise message is tried again."""
        self.sessions = sessions(engine)
        self.webhook_allow = parse_allow(webhook_allow)
        self.vapid, self.vapid_contact = vapid, vapid_contact or DEFAULT_VAPID_CONTACT
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(WEBHOOK_PARALLEL, thread_name_prefix="limen-cloud-webhook")
        self.webhook_connections = ConnectionPool()  # kept-alive connections to the owners' webhooks
        self._marker = ThreadPoolExecutor(1, thread_name_prefix="limen-cloud-webhook-mark")
        self._marking: set[int] = set()  # alarms POSTed whose outcome is not written yet (not taken again meanwhile)
        self.coalesce_s, self.retry_s = coalesce_s, retry_s
        self._apprise_wake = threading.Event()
        self._apprise_thread: threading.Thread | None = None
        self._apprise_pool = ThreadPoolExecutor(T.CLOUD_APPRISE_PARALLEL, thread_name_prefix="limen-cloud-apprise")
        self._engine = engine
        self._send_wake = threading.Event()
        self._send_thread: threading.Thread | None = None
        self._state = threading.Lock()
        self._busy: dict[int, float] = {}  # owner → when its running job began
        self._held: dict[int, tuple[tuple[str, ...], dict[int, _Pending]]] = {}  # owner → (URLs, alarms read)
        self._inflight: set[int] = set()  # alarms handed to a job whose outcome is not written yet
        self._outcomes: list[_Outcome] = []  # messages sent whose outcome the apprise marker has not written yet
        self._writing = False  # the apprise marker is writing (it takes the outcomes added meanwhile too)
        self._apprise_marker = ThreadPoolExecutor(1, thread_name_prefix="limen-cloud-apprise-mark")
        self._due: dict[int, float] = {}  # owner → monotonic time before which they get no new message
        self._retry: dict[int, float] = {}  # owner whose message failed → when it is tried again
        self._built: OrderedDict[int, _ChannelSet] = OrderedDict()  # owner → Apprise objects of their channels
        self._former_pool = ThreadPoolExecutor(WEBHOOK_PARALLEL, thread_name_prefix="limen-cloud-former")
        self._telling: set[int] = set()  # former destinations being sent to (not taken again meanwhile)

    def wake(self) -> None:
        self._wake.set()
        self._apprise_wake.set()

    def start(self) -> AlarmNotifier:
        self._thread = threading.Thread(target=self._run, name="limen-cloud-notify", daemon=True)
        self._thread.start()
        self._apprise_thread = threading.Thread(target=self._run_apprise, name="limen-cloud-apprise-loop",
                                                daemon=True)
        self._apprise_thread.start()
        self._send_thread = threading.Thread(target=self._run_sender, name="limen-cloud-apprise-send", daemon=True)
        self._send_thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.wake()
        self._send_wake.set()
        for thread in (self._thread, self._apprise_thread, self._send_thread):
            if thread is not None:
                thread.join(30)
        self._pool.shutdown(wait=True)  # POSTs in flight end (each by CLOUD_WEBHOOK_TIMEOUT_S) and hand their outcome
        self._apprise_pool.shutdown(wait=False)
        self._former_pool.shutdown(wait=False)
        self._marker.shutdown(wait=True)  # the outcomes of the POSTs made are written before the cloud stops
        self._apprise_marker.shutdown(wait=True)  # (and those of the apprise messages sent)
        self.webhook_connections.close()

    def deliver_pending(self, wait: bool = True) -> int:
        """Read the undelivered alarms (`_fetch`) and start one apprise job per owner free to be served (not
        being served, out of their coalescing or retry window).  `wait`: return how many alarms were delivered
        once the jobs ended and their outcomes were written; otherwise return at once how many alarms were
        handed to jobs."""
        self._fetch()
        jobs, _ = self._send_due()
        if not wait:
            return sum(n for n, _ in jobs)
        delivered = sum(job.result() for _, job in jobs)
        self._apprise_marker.submit(lambda: None).result()  # their outcomes are written (one marker, in order)
        return delivered

    def channel_set(self, owner_id: int, urls: tuple[str, ...]) -> _ChannelSet:
        """The Apprise objects for `owner_id`'s channels `urls`: kept from an earlier message when the owner's URLs
        are the same, built again (and the old ones dropped) when they changed."""
        with self._state:
            held = self._built.get(owner_id)
            if held is not None and held.urls == urls:
                self._built.move_to_end(owner_id)
                return held
        built = _ChannelSet.build(urls)  # (outside the lock: building takes milliseconds)
        with self._state:
            self._built[owner_id] = built
            self._built.move_to_end(owner_id)
            while len(self._built) > T.CLOUD_APPRISE_CACHE_OWNERS:
                self._built.popitem(last=False)
        return built

    def _fetch(self) -> int:
        """Read the undelivered alarms not yet held or in flight (owners waiting out a failure left out) and hold
        them by owner for their next message; how many were read.  One statement outside a transaction (no BEGIN,
        no ROLLBACK: the read is one round trip, it decides nothing by itself)."""
        now = time.monotonic()
        with self._state:
            for owner_id in [o for o, due in self._retry.items() if due <= now]:
                del self._retry[owner_id]
            for owner_id in [o for o, due in self._due.items() if due <= now and o not in self._held]:
                del self._due[owner_id]
            skip_owners = set(self._retry) | {o for o, since in self._busy.items() if now - since > self.coalesce_s}
            skip_ids = self._inflight | {i for _, alarms in self._held.values() for i in alarms}
        query = (select(Alarm.id, Alarm.lock_id, Alarm.rule, Alarm.detail, Alarm.raised_at, Lock.name, Owner.id,
                        Owner.alert_urls)
                 .join(Lock, Alarm.lock_id == Lock.lock_id).join(Owner, Lock.owner_id == Owner.id)
                 .where(Alarm.notified_at.is_(None), Owner.alert_urls.is_not(None)))
        if skip_owners:
            query = query.where(Owner.id.not_in(skip_owners))
        if skip_ids:
            query = query.where(Alarm.id.not_in(skip_ids))
        with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            rows = conn.execute(query.order_by(Alarm.id).limit(APPRISE_PASS)).all()
        with self._state:
            for alarm_id, lock_id, rule, detail, raised_at, lock_name, owner_id, urls in rows:
                if owner_id in self._retry or alarm_id in self._inflight:  # (a failure recorded meanwhile)
                    continue
                kept = self._held.get(owner_id)
                owner_urls = tuple(json.loads(urls or "[]"))  # the owner's channels as last read
                alarms = {} if kept is None else kept[1]
                alarms.setdefault(alarm_id, _Pending(alarm_id, lock_id, lock_name, rule, detail, raised_at))
                self._held[owner_id] = (owner_urls, alarms)
        if rows:
            self._send_wake.set()
        return len(rows)

    def _send_due(self) -> tuple[list[tuple[int, Future[int]]], float]:
        """Hand each owner's held alarms to a job when the owner is free: not being served, its window (from its
        last message) closed; ([(alarms, job)], seconds until the next held owner's window closes)."""
        now = time.monotonic()
        ready: list[tuple[int, tuple[str, ...], list[_Pending]]] = []
        next_s = self.retry_s
        with self._state:
            for owner_id, (urls, alarms) in list(self._held.items()):
                if owner_id in self._busy or owner_id in self._retry:
                    continue
                due = self._due.get(owner_id, 0.0)
                if due > now:
                    next_s = min(next_s, due - now)
                    continue
                del self._held[owner_id]
                self._due.pop(owner_id, None)
                self._busy[owner_id] = now
                self._inflight.update(alarms)
                ready.append((owner_id, urls, sorted(alarms.values(), key=lambda a: a.id)))
        jobs = [(len(alarms), self._apprise_pool.submit(self._deliver_owner, owner_id, urls, alarms))
                for owner_id, urls, alarms in ready]
        return jobs, max(0.0, next_s)

    def _deliver_owner(self, owner_id: int, urls: tuple[str, ...], alarms: list[_Pending]) -> int:
        """One message per channel for `alarms` (one owner's); how many the channels took.  The owner is free for
        its next message when this one ended (after its window); the alarms it carried stay out of the next
        messages until the apprise marker has written their outcome (`_write_outcomes`)."""
        error: str | None = "not sent"
        sent = time.monotonic()
        try:
            channels = self.channel_set(owner_id, urls)
            sent = time.monotonic()
            error = channels.send_guarded(alarms, self.webhook_allow)
            return len(alarms) if error is None else 0
        except Exception:
            log.exception("apprise delivery for one owner failed")
            return 0
        finally:  # (the outcome is handed over before the owner is free: its alarms stay in flight until written)
            with self._state:
                self._outcomes.append(_Outcome(owner_id, tuple(a.id for a in alarms), error, sent))
                start = not self._writing
                self._writing = True
                self._busy.pop(owner_id, None)
                if error is None:
                    self._due[owner_id] = sent + self.coalesce_s  # the window counts from the message
                else:  # retried after retry_s, all together (what was held meanwhile is read again then)
                    self._retry[owner_id] = time.monotonic() + self.retry_s
                    self._held.pop(owner_id, None)
            if start:
                self._apprise_marker.submit(self._write_outcomes)
            self._send_wake.set()
            if error is not None or time.monotonic() - sent > self.coalesce_s:  # left out of the reads meanwhile
                self._apprise_wake.set()

    def _write_outcomes(self) -> None:
        """The apprise marker: write every outcome handed over (one transaction for all that waited), then let
        their alarms be read again (a delivered one is marked, a failed one waits for its owner's retry).  An
        outcome not written leaves its alarms due: its owner waits `retry_s`, then they are sent again (at least
        once, as after a crash between the send and the write)."""
        while True:
            with self._state:
                batch, self._outcomes = self._outcomes, []
                if not batch:
                    self._writing = False
                    return
            written = False
            try:
                self._mark_apprise(batch)
                written = True
            except Exception:  # the database is away
                log.exception("could not record %d apprise outcome(s); they will be sent again", len(batch))
            finally:
                with self._state:  # (the retry first: an alarm let go here is not read again before it)
                    if not written:
                        retry = time.monotonic() + self.retry_s
                        for o in batch:
                            self._retry[o.owner_id] = retry
                            self._held.pop(o.owner_id, None)
                    for o in batch:
                        self._inflight.difference_update(o.alarm_ids)
                if not written:
                    self._apprise_wake.set()  # (the reader's wait follows the retries)

    def _mark_apprise(self, batch: list[_Outcome]) -> None:
        """One statement for every alarm the channels took, one per distinct error for the others."""
        taken = [i for o in batch if o.error is None for i in o.alarm_ids]
        failed: dict[str, list[int]] = {}
        for o in batch:
            if o.error is not None:
                failed.setdefault(o.error[:200], []).extend(o.alarm_ids)
        with self.sessions() as session, session.begin():
            write_lock(session)
            if taken:  # (an erased one is simply gone)
                session.execute(update(Alarm).where(Alarm.id.in_(taken), Alarm.notified_at.is_(None)).values(
                    notified_at=datetime.now(UTC).replace(tzinfo=None), delivery_error=None))
            for error, ids in failed.items():
                session.execute(update(Alarm).where(Alarm.id.in_(ids), Alarm.notified_at.is_(None)).values(
                    delivery_error=error))

    def _run_apprise(self) -> None:
        """The reader: woken by the bridge after each commit that raised alarms (and when an outcome was written
        or an owner's retry is due), it reads what is new and holds it for the sender."""
        apprise_object("json://localhost/")  # apprise and its plugins loaded now, not by the first alarm (≈ 0.2 s)
        while not self._stop.is_set():
            self._apprise_wake.clear()
            try:
                read = self._fetch()
            except Exception:  # the database is away: retry later, never die
                log.exception("apprise read failed")
                read = 0
            if read >= APPRISE_PASS:  # a full pass: more are waiting, go on at once
                continue
            with self._state:
                now = time.monotonic()
                next_s = min([due - now for due in self._retry.values()] + [self.retry_s])
            self._apprise_wake.wait(max(0.01, next_s))

    def _run_sender(self) -> None:
        """The sender: hands each owner's held alarms to a job as soon as the owner's window closes (woken when
        alarms are read and when a message ended), so the read is not between the window and the message."""
        while not self._stop.is_set():
            self._send_wake.clear()
            try:
                _, next_s = self._send_due()
            except Exception:  # never die
                log.exception("apprise hand-over failed")
                next_s = self.retry_s
            self._send_wake.wait(max(0.001, next_s))

    def deliver_webhooks(self, now: datetime | None = None, wait: bool = True) -> int:
        """POST pending alarms to their owner's community webhook (those due); return how many were taken.

        The POSTs happen outside any transaction (a slow receiver must not hold the database); the outcome is
        written after.  One notifier per database (several replicas would need SELECT … FOR UPDATE SKIP LOCKED).
        `wait=False` (the notifier's loop): the pass's POSTs are handed to the pool and the call returns at once,
        so the next pass reads the alarms recorded meanwhile while this one's are still being POSTed (at most
        `WEBHOOK_INFLIGHT` alarms POSTed or being recorded at a time); when a pass's last POST has ended its
        outcome is written on the marker thread (its alarms are left out of the next passes until then: a burst's
        POSTs need not wait for SQLite's write lock, which the bridge holds while it ingests).  An outcome that
        could not be written leaves its alarms due: POSTed again (at least once, as after a crash between the
        POST and the write).
        """
        now = now or datetime.now(UTC).replace(tzinfo=None)
        with self._state:
            posting = set(self._marking)
        room = WEBHOOK_PASS if wait else min(WEBHOOK_PASS, WEBHOOK_INFLIGHT - len(posting))
        if room <= 0:
            return 0
        pending = [Alarm.id.not_in(posting)] if posting else []
        with self.sessions() as session:  # (columns, not ORM objects: a burst's passes are 200 alarms each)
            due = [(a.id, a.webhook_url, a.webhook_secret, webhook_body(a, now)) for a in session.execute(
                select(Alarm.id, Alarm.lock_id, Alarm.rule, Alarm.detail, Alarm.raised_at, Owner.webhook_url,
                       Owner.webhook_secret)
                .join(Lock, Alarm.lock_id == Lock.lock_id).join(Owner, Lock.owner_id == Owner.id)
                .where(Alarm.webhook_at.is_(None), Alarm.webhook_attempts < T.CLOUD_WEBHOOK_MAX_ATTEMPTS,
                       Owner.webhook_url.is_not(None), Owner.webhook_secret.is_not(None),
                       or_(Alarm.webhook_next_at.is_(None), Alarm.webhook_next_at <= now), *pending)
                .order_by(Alarm.id).limit(room)).all()]
        if not due:
            return 0
        if wait:
            errors = list(self._pool.map(self._post, due))  # slow receivers
            delivered = [d[0] for d, error in zip(due, errors, strict=True) if error is None]
            failed = {d[0]: error for d, error in zip(due, errors, strict=True) if error is not None}
            return self._mark_webhooks(now, delivered, failed)
        ids = {d[0] for d in due}
        with self._state:
            self._marking |= ids
        self._post_pass(now, due, ids)
        return len(due)

    def _post(self, due: tuple[int, Any, Any, bytes]) -> str | None:
        return post_webhook(str(due[1]), str(due[2]), due[3], self.webhook_allow, pool=self.webhook_connections)

    def _post_pass(self, now: datetime, due: list[tuple[int, Any, Any, bytes]], ids: set[int]) -> None:
        """Hand a pass's POSTs to the pool; the last one to end hands the pass's outcome to the marker."""
        outcome: dict[int, str | None] = {}
        guard = threading.Lock()

        def ended(alarm_id: int, job: Future[str | None]) -> None:  # on the pool's thread that ran the POST
            try:
                error = job.result()
            except Exception as exc:  # a POST that raised failed, as one that was not answered
                log.warning("community webhook POST of alarm %d failed (%s)", alarm_id, type(exc).__name__)
                error = f"error: {type(exc).__name__}"
            with guard:
                outcome[alarm_id] = error
                last = len(outcome) == len(due)
            if last:
                delivered = [i for i, e in outcome.items() if e is None]
                failed = {i: e for i, e in outcome.items() if e is not None}
                self._marker.submit(self._mark_later, now, delivered, failed, ids)

        for d in due:
            self._pool.submit(self._post, d).add_done_callback(functools.partial(ended, d[0]))

    def _mark_later(self, now: datetime, delivered: list[int], failed: dict[int, str], ids: set[int]) -> None:
        try:
            self._mark_webhooks(now, delivered, failed)
        except Exception:  # the database is away: the alarms stay due and are POSTed again
            log.exception("could not record %d webhook outcome(s); they will be sent again", len(ids))
        finally:
            with self._state:
                self._marking -= ids
            self._wake.set()  # room for the next pass (and a failed POST's alarms are due again later)

    def _mark_webhooks(self, now: datetime, delivered: list[int], failed: dict[int, str]) -> int:
        """Write one pass's outcome: delivered alarms taken, failed ones' attempts and next try; how many taken."""
        taken = 0
        with self.sessions() as session, session.begin():
            write_lock(session)
            if delivered:  # one statement for all the alarms taken (an erased one is simply gone)
                done = session.execute(update(Alarm).where(Alarm.id.in_(delivered)).values(
                    webhook_attempts=Alarm.webhook_attempts + 1, webhook_at=now, webhook_error=None,
                    webhook_next_at=None).execution_options(synchronize_session=False))
                taken = int(getattr(done, "rowcount", 0) or 0)
            for alarm in session.scalars(select(Alarm).where(Alarm.id.in_(list(failed)))) if failed else []:
                error = failed[alarm.id]
                alarm.webhook_attempts += 1
                alarm.webhook_error = error[:200]
                alarm.webhook_next_at = now + timedelta(seconds=backoff_s(alarm.webhook_attempts))
                if alarm.webhook_attempts >= T.CLOUD_WEBHOOK_MAX_ATTEMPTS:
                    alarm.webhook_error = f"gave up after {alarm.webhook_attempts} attempts: {error}"[:200]
                    log.warning("community webhook gave up on alarm %d (%s)", alarm.id, error)
        return taken

    def deliver_push(self, now: datetime | None = None) -> int:
        """Push each browser subscription the owner's unacknowledged alarms after its cursor, in order (those
        due); return how many (subscription, alarm) pairs the push services took.

        Sent outside any transaction, one subscription per pool thread, stopping at its first failure: a 404 or
        410 removes the subscription (the browser dropped it), anything else keeps the cursor there and retries
        with the webhook's backoff; after `CLOUD_WEBHOOK_MAX_ATTEMPTS` failures that alarm is skipped for it.
        """
        if self.vapid is None:
            return 0
        now = now or datetime.now(UTC).replace(tzinfo=None)
        with self.sessions() as session:
            rows = session.execute(
                select(PushSubscription.id, PushSubscription.endpoint, PushSubscription.p256dh, PushSubscription.auth,
                       Alarm.id, Alarm.rule, Alarm.raised_at, Lock.name)
                .join(Lock, Lock.owner_id == PushSubscription.owner_id)
                .join(Alarm, and_(Alarm.lock_id == Lock.lock_id, Alarm.id > PushSubscription.cursor))
                .where(or_(Alarm.acknowledged_at.is_(None), Alarm.rule.in_(ACCOUNT_ALARMS),
                           Alarm.rule.startswith("lock:")),
                       or_(PushSubscription.next_at.is_(None), PushSubscription.next_at <= now))
                .order_by(PushSubscription.id, Alarm.id).limit(PUSH_PASS)).all()
        if not rows:
            return 0
        jobs: dict[int, tuple[dict[str, Any], list[tuple[int, bytes]]]] = {}
        for sub_id, endpoint, p256dh, auth, alarm_id, rule, raised_at, lock_name in rows:
            jobs.setdefault(sub_id, ({"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}, []))[1].append(
                (alarm_id, push_payload(alarm_id, lock_name, rule, raised_at)))
        vapid, contact, allow = self.vapid, self.vapid_contact, self.webhook_allow

        def run(job: tuple[dict[str, Any], list[tuple[int, bytes]]]) -> tuple[int, int | None, str | None]:
            """(pushed, the alarm it stopped at, why) for one subscription."""
            info, alarms = job
            for n, (alarm_id, data) in enumerate(alarms):
                error = send_push(info, data, vapid, contact, allow)
                if error is not None:
                    return n, alarm_id, error
            return len(alarms), None, None

        outcomes = list(self._pool.map(run, jobs.values()))
        pushed = 0
        with self.sessions() as session, session.begin():
            write_lock(session)
            for (sub_id, (_, alarms)), (done, stopped_at, error) in zip(jobs.items(), outcomes, strict=True):
                sub = session.get(PushSubscription, sub_id)
                if sub is None:  # removed meanwhile
                    continue
                pushed += done
                if done:
                    sub.cursor, sub.last_ok_at = max(sub.cursor, alarms[done - 1][0]), now
                if error is None:
                    sub.attempts, sub.next_at, sub.last_error = 0, None, None
                elif error == PUSH_GONE:
                    log.info("web push subscription %d removed: the push service no longer knows it", sub_id)
                    session.delete(sub)
                else:
                    sub.attempts += 1
                    sub.last_error = error[:200]
                    sub.next_at = now + timedelta(seconds=backoff_s(sub.attempts))
                    if sub.attempts >= T.CLOUD_WEBHOOK_MAX_ATTEMPTS and stopped_at is not None:
                        sub.cursor, sub.attempts, sub.next_at = stopped_at, 0, None
                        sub.last_error = f"gave up alarm {stopped_at}: {error}"[:200]
                        log.warning("web push gave up alarm %d for subscription %d (%s)", stopped_at, sub_id, error)
        return pushed

    def deliver_former(self, now: datetime | None = None, wait: bool = True) -> int:
        """Send each account alarm to the destinations its change removed or replaced (`FormerDestination`, those
        due), beside the owner's current ones (the other paths): replacing the owner's only channel or webhook,
        or removing every destination, is heard where the owner would have heard it.  One job per destination
        on the notifier's own pool (a destination that trickles holds only its job, never the webhook and push
        loop), outside any transaction, its outcome written after: delivered, or given up after
        `CLOUD_WEBHOOK_MAX_ATTEMPTS` tries with the webhook's backoff (a browser gone at once), and then its
        snapshot is cleared (it held tokens, a secret or keys).  An outcome not written leaves it due (at least
        once).  `wait`: how many took their alarm; otherwise at once how many were handed to jobs."""
        now = now or datetime.now(UTC).replace(tzinfo=None)
        with self._state:
            telling = set(self._telling)
        query = (select(FormerDestination.id, FormerDestination.kind, FormerDestination.target, Alarm.id,
                        Alarm.lock_id, Lock.name, Alarm.rule, Alarm.detail, Alarm.raised_at)
                 .join(Alarm, FormerDestination.alarm_id == Alarm.id).join(Lock, Alarm.lock_id == Lock.lock_id)
                 .where(FormerDestination.target.is_not(None),
                        or_(FormerDestination.next_at.is_(None), FormerDestination.next_at <= now)))
        if telling:
            query = query.where(FormerDestination.id.not_in(telling))
        with self.sessions() as session:
            rows = session.execute(query.order_by(FormerDestination.id).limit(WEBHOOK_PASS)).all()
        if not rows:
            return 0
        with self._state:
            self._telling |= {row[0] for row in rows}
        jobs = [self._former_pool.submit(self._tell_former, row[0], row[1], str(row[2]), _Pending(*row[3:]), now)
                for row in rows]
        return sum(job.result() for job in jobs) if wait else len(jobs)

    def _tell_former(self, former_id: int, kind: str, target: str, alarm: _Pending, now: datetime) -> bool:
        """Send `alarm` to one former destination and write the outcome; whether it took it."""
        try:
            try:
                error = self._send_former(kind, json.loads(target), alarm, now)
            except Exception as exc:  # (a snapshot that cannot be used is given up below, like a failure)
                log.exception("former destination %d: sending alarm %d failed", former_id, alarm.id)
                error = f"failed ({type(exc).__name__})"
            self._mark_former(former_id, error, now)
            return error is None
        except Exception:  # the database is away: it stays due and is sent again
            log.exception("could not record the outcome of former destination %d; it will be sent again", former_id)
            return False
        finally:
            with self._state:
                self._telling.discard(former_id)

    def _send_former(self, kind: str, target: dict[str, Any], alarm: _Pending, now: datetime) -> str | None:
        """None when the destination took `alarm`, else a short reason (`PUSH_GONE`, `FORMER_UNUSABLE`: final)."""
        if kind == "apprise":
            channels = _ChannelSet.build((str(target["url"]),))  # (built for this once: it is no channel any more)
            return channels.send_guarded([alarm], self.webhook_allow)
        if kind == "webhook":
            return post_webhook(str(target["url"]), str(target["secret"]), webhook_body(alarm, now),
                                self.webhook_allow, pool=self.webhook_connections)
        if kind == "push" and self.vapid is not None:
            info = {"endpoint": str(target["endpoint"]),
                    "keys": {"p256dh": str(target["p256dh"]), "auth": str(target["auth"])}}
            return send_push(info, push_payload(alarm.id, alarm.lock_name, alarm.rule, alarm.raised_at), self.vapid,
                             self.vapid_contact, self.webhook_allow)
        return FORMER_UNUSABLE  # web push is off on this cloud now (or an unknown kind)

    def _mark_former(self, former_id: int, error: str | None, now: datetime) -> None:
        with self.sessions() as session, session.begin():
            write_lock(session)
            former = session.get(FormerDestination, former_id)
            if former is None:  # its alarm was erased meanwhile
                return
            former.attempts += 1
            if error is None:
                former.sent_at, former.target, former.next_at, former.error = now, None, None, None
                log.info("former destination %d (%s) told of alarm %d", former.id, former.kind, former.alarm_id)
            elif error in (PUSH_GONE, FORMER_UNUSABLE) or former.attempts >= T.CLOUD_WEBHOOK_MAX_ATTEMPTS:
                former.target, former.next_at = None, None
                former.error = f"gave up after {former.attempts} attempt(s): {error}"[:200]
                log.warning("former destination %d (%s) not told of alarm %d: %s", former.id, former.kind,
                            former.alarm_id, former.error)
            else:
                former.error = error[:200]
                former.next_at = now + timedelta(seconds=backoff_s(former.attempts))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before the passes: a wake set while they run is not lost
            try:
                full = self.deliver_webhooks(wait=False) == WEBHOOK_PASS
                full = self.deliver_push() == PUSH_PASS or full
                self.deliver_former(wait=False)
            except Exception:  # the database is away: retry later, never die
                log.exception("alarm delivery pass failed")
                full = False
            if full:  # a full pass went out: more may be waiting, go on at once (no room: a pass's end wakes us)
                continue
            self.webhook_connections.sweep()
            self._wake.wait(min(RETRY_S, T.CLOUD_WEBHOOK_BACKOFF_S))


@dataclass(frozen=True)
class _Pending:
    """One undelivered alarm, as read for its owner's message."""

    id: int
    lock_id: str
    lock_name: str
    rule: str
    detail: str
    raised_at: datetime


@dataclass(frozen=True)
class _Outcome:
    """One apprise message sent, waiting for its record: the alarms it carried, None or why it failed, when."""

    owner_id: int
    alarm_ids: tuple[int, ...]
    error: str | None
    sent: float


@dataclass(frozen=True)
class _ChannelSet:
    """The Apprise objects built for one owner's channel URLs (by channel id; a reason for an unusable URL)."""

    urls: tuple[str, ...]
    channels: tuple[tuple[str, Any], ...]

    @staticmethod
    def build(urls: tuple[str, ...]) -> _ChannelSet:
        channels: list[tuple[str, Any]] = []
        for url in urls:
            problem = channel_scheme_problem(url)  # one saved before the allow-list existed is not sent to
            if problem is not None:
                channels.append((channel_id(url), problem))
                continue
            try:
                channels.append((channel_id(url), apprise_object(url)))
            except DeliveryFailed as exc:
                channels.append((channel_id(url), str(exc)))
        return _ChannelSet(urls, tuple(channels))

    def send(self, title: str, body: str, severity: str) -> str | None:
        """One message to every channel; None when all took it, else the failures by channel id."""
        errors = []
        for cid, built in self.channels:
            if isinstance(built, str):
                errors.append(f"{cid}: {built}")
                continue
            try:
                send_apprise(built, title, body, severity, T.AUDIT_DELIVERY_TIMEOUT_S)
            except DeliveryFailed as exc:
                errors.append(f"{cid}: {exc}")
        return "; ".join(errors) or None

    def send_guarded(self, alarms: list[_Pending], allow: tuple[Network, ...]) -> str | None:
        """`send` the message `compose` makes of `alarms`, the address apprise connects to checked against `allow`
        and every channel cut off by APPRISE_DEADLINE_S; None when all took it, else the failures."""
        title, body, severity = compose(alarms)
        with egress_guard(allow), connection_deadline(APPRISE_DEADLINE_S) as cut:
            error = self.send(title, body, severity)
        if cut.expired:
            error = f"cut off after {APPRISE_DEADLINE_S:.0f} s" + (f" ({error})" if error else "")
        return error


def compose(alarms: list[_Pending]) -> tuple[str, str, str]:
    """(title, body, severity) of one apprise message: one alarm as the lock words it; several as
    "12 alarms at Front door, first: <rule>" (or "at 3 locks"), the first one's detail and every alarm id."""
    first = alarms[0]
    severities = {SEVERITY.get(a.rule, "warning") for a in alarms}
    severity = next((s for s in ("critical", "warning") if s in severities), "warning")
    if len(alarms) == 1:
        title, body = message({"severity": severity, "device_id": first.lock_id, "rule": first.rule,
                               "reason": first.detail, "alarm_id": first.id,
                               "at": first.raised_at.isoformat() + "Z"})
        return title, body, severity
    names = {a.lock_name for a in alarms}
    place = first.lock_name if len(names) == 1 else f"{len(names)} locks"
    title = f"[{severity.upper()}] {len(alarms)} alarms at {place}, first: {first.rule}"
    body = (f"first: {first.lock_id}: {first.rule}: {first.detail} at {first.raised_at.isoformat()}Z\n"
            f"ids: {id_ranges([a.id for a in alarms])}")
    return title, body, severity


def id_ranges(ids: list[int]) -> str:
    """`[3, 4, 5, 9]` → "3-5,9" (a coalesced message names every alarm it carries, compactly)."""
    out: list[str] = []
    for i in sorted(ids):
        if out and out[-1].rsplit("-", 1)[-1] == str(i - 1):
            out[-1] = f"{out[-1].split('-')[0]}-{i}"
        else:
            out.append(str(i))
    return ",".join(out)


# ------------------------------------------------------------------ former destinations (removed or replaced)

FORMER_UNUSABLE = "cannot be reached from this cloud now"  # (a browser's farewell while web push is off)


def former_apprise(url: str) -> FormerDestination:
    """A removed apprise channel, to be told of the change (`AlarmNotifier.deliver_former`)."""
    return FormerDestination(kind="apprise", what=f"apprise channel {channel_id(url)}"[:200],
                             target=json.dumps({"url": url}))


def former_webhook(url: str, secret: str) -> FormerDestination:
    """A removed or replaced community webhook, told with the secret its receiver holds (the old one)."""
    return FormerDestination(kind="webhook", what=f"community webhook to {urlsplit(url).hostname}"[:200],
                             target=json.dumps({"url": url, "secret": secret}))


def former_push(sub: PushSubscription) -> FormerDestination:
    """A removed browser (its push subscription, as it was)."""
    what = f"web push browser {sub.id} via {urlsplit(sub.endpoint).hostname}"
    return FormerDestination(kind="push", what=what[:200],
                             target=json.dumps({"endpoint": sub.endpoint, "p256dh": sub.p256dh, "auth": sub.auth}))


# ------------------------------------------------------------------ web push (RFC 8030, 8291, 8292)

PUSH_PASS = T.CLOUD_PUSH_PASS
# the account's own alarms (limen_cloud.pages, backups): pushed even once acknowledged — the session that changed
# the account (a thief's, with the password) can acknowledge them before the next push pass
ACCOUNT_ALARMS = ("alarm_destination_added", "alarm_destination_removed", "password_changed", "password_reset",
                  "authenticator_enrolled", "backup_deleted", "lock_replace_refused",
                  "remote_unknown_source")  # (a session thief relaying from its own address could acknowledge it)
# Pushed even once acknowledged, with ACCOUNT_ALARMS: every alarm the lock raised itself ("lock:duress", "lock:tamper",
# …) — a coercer can make the owner acknowledge it in the app as well as on the lock, and the other browsers of the
# account (a partner's phone) must still hear of it.
PUSH_GONE = "gone"  # the push service answered 404 or 410: the subscription is dead
VAPID_EXP_S = T.CLOUD_VAPID_TOKEN_S
DEFAULT_VAPID_CONTACT = "mailto:limen-cloud@localhost"  # set --vapid-contact: some push services want a real one


def load_or_create_vapid(path: Path) -> Vapid02:
    """The cloud's VAPID key pair (P-256) from `path` (PEM, PKCS#8), made there 0600 at the first start.

    Like the receipt key, it is a file next to the database and never logged; only its public half leaves
    (`vapid_public_key`), to the browsers that subscribe.  Replacing it invalidates every subscription."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from py_vapid import Vapid02

    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"{path} is not a P-256 private key (the VAPID key)")
    return Vapid02(private_key=key)


def vapid_public_key(vapid: Vapid02) -> str:
    """The browsers' `applicationServerKey`: the uncompressed P-256 point, base64url without padding."""
    from cryptography.hazmat.primitives import serialization

    raw = vapid.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def push_payload(alarm_id: int, lock_name: str, rule: str, raised_at: datetime) -> bytes:
    """What a browser receives (encrypted to it, RFC 8291): the lock's name, the alarm's kind and time, no detail
    (no person, no biometric data), and the alarm id (the notification's tag: a repeat replaces it)."""
    return json.dumps({"v": 1, "alarm_id": alarm_id, "lock": lock_name, "kind": rule,
                       "severity": SEVERITY.get(rule, "warning"), "at": raised_at.isoformat() + "Z"},
                      sort_keys=True, separators=(",", ":")).encode("utf-8")


def send_push(info: dict[str, Any], data: bytes, vapid: Vapid02, contact: str,
              allow: tuple[Network, ...] = ()) -> str | None:
    """Encrypt `data` to the subscription (aes128gcm) and POST it with a VAPID token for the endpoint's origin;
    None when the push service took it (2xx), `PUSH_GONE` for 404/410, else a short reason (never its answer).

    The endpoint came from a browser, i.e. from whoever holds the owner's session: the POST goes to its name's
    address checked once and pinned (public or allow-listed; no proxy from the environment), redirects are not
    followed, the whole exchange is cut off after `CLOUD_PUSH_TIMEOUT_S` (a service answering a byte at a time
    must not hold the notifier) and the answer's body is never read."""
    from pywebpush import WebPusher

    parts = urlsplit(str(info.get("endpoint", "")))
    claims = {"sub": contact, "aud": f"{parts.scheme}://{parts.netloc}",
              "exp": int(time.time()) + VAPID_EXP_S}
    headers = {**vapid.sign(claims), "Urgency": "high"}
    try:
        response = WebPusher(info, requests_session=_PushPoster(allow)).send(  # type: ignore[arg-type]
            data, headers, ttl=T.CLOUD_PUSH_TTL_S, timeout=T.CLOUD_PUSH_TIMEOUT_S)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        log.info("web push not reached (%s)", type(exc).__name__)
        return NOT_REACHED
    status = int(getattr(response, "status_code", 0))
    if 200 <= status < 300:
        return None
    return PUSH_GONE if status in (404, 410) else f"HTTP {status}"


@dataclass(frozen=True)
class _Answer:
    """What pywebpush reads of an answer: its status (its body and headers are never read)."""

    status_code: int
    text: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class _PushPoster:
    """The `requests_session` pywebpush posts through: `post_pinned`, bounded by `CLOUD_PUSH_TIMEOUT_S`."""

    def __init__(self, allow: tuple[Network, ...]) -> None:
        self.allow = allow

    def post(self, url: str, *, data: bytes = b"", headers: Any = None, timeout: Any = None, **_: Any) -> _Answer:
        status = post_pinned(url, bytes(data), {str(k): str(v) for k, v in dict(headers or {}).items()},
                             self.allow, T.CLOUD_PUSH_TIMEOUT_S)
        if status is None:
            raise OSError("push service not reached")
        return _Answer(status)


# ------------------------------------------------------------------ the community security webhook

def backoff_s(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones: doubling from the first, capped."""
    return float(min(T.CLOUD_WEBHOOK_BACKOFF_S * 2 ** max(0, attempts - 1), T.CLOUD_WEBHOOK_BACKOFF_MAX_S))


class AlarmFields(Protocol):
    """What an alarm's webhook body is made of (an `Alarm`, a row of those columns, or a `_Pending`)."""

    @property
    def id(self) -> int: ...
    @property
    def lock_id(self) -> str: ...
    @property
    def rule(self) -> str: ...
    @property
    def detail(self) -> str: ...
    @property
    def raised_at(self) -> datetime: ...


def webhook_body(alarm: AlarmFields, now: datetime) -> bytes:
    """The JSON an alarm is POSTed as (no URL, no owner identity; the lock by its id)."""
    return json.dumps({"v": 1, "alarm_id": alarm.id, "lock_id": alarm.lock_id, "rule": alarm.rule,
                       "severity": SEVERITY.get(alarm.rule, "warning"), "detail": alarm.detail,
                       "raised_at": alarm.raised_at.isoformat() + "Z", "sent_at": now.isoformat() + "Z"},
                      sort_keys=True, separators=(",", ":")).encode("utf-8")


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    return "v1=" + hmac.new(bytes.fromhex(secret), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_webhook(secret: str, timestamp: str, body: bytes, signature: str, now: float,
                   tolerance_s: float = 300.0) -> bool:
    """The receiver's check: the signature matches (constant time) and the timestamp is within `tolerance_s`."""
    try:
        fresh = abs(now - int(timestamp)) <= tolerance_s
        expected = webhook_signature(secret, timestamp, body)
    except ValueError:
        return False
    return fresh and hmac.compare_digest(expected.encode(), signature.encode())


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
NOT_REACHED = "not reached"  # every failure before an HTTP answer: refused destination, connection, timeout


def parse_allow(items: Iterable[str]) -> tuple[Network, ...]:
    """The operator's allow-list (CIDR strings); ValueError names a bad entry."""
    nets: list[Network] = []
    for item in items:
        try:
            nets.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"not a network: {item!r} (use CIDR, e.g. 10.0.0.0/8)") from exc
    return tuple(nets)


def destination_allowed(address: str, allow: tuple[Network, ...] = ()) -> bool:
    """True for a public unicast address, or one inside the operator's allow-list."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in net for net in allow):
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in net for net in _IPV6_REFUSED):
            return False
        embedded = _embedded_ipv4(ip)  # 6to4, NAT64, IPv4-compatible: judged by the IPv4 address they carry
        if embedded is not None:
            return destination_allowed(str(embedded), allow)
    return ip.is_global and not ip.is_multicast


# IPv6 blocks this Python's `is_global` calls global although they are not public destinations
_IPV6_REFUSED = tuple(ipaddress.IPv6Network(n) for n in ("fec0::/10", "64:ff9b:1::/48"))
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def resolve_checked(host: str, port: int, allow: tuple[Network, ...] = ()) -> str | None:
    """Resolve `host` once; the first address allowed as a destination, or None."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    for info in infos:
        address = str(info[4][0])
        if destination_allowed(address, allow):
            return address
    return None


# Alarm channels are an allow-list of apprise schemes that deliver to a person (a phone, a mailbox, a chat), not a
# deny list: apprise also speaks to syslog servers, media centres and set-top boxes (rsyslog://, syslog://, kodi://,
# enigma2://, bark://…), which name any host and reach no one.
# Schemes whose host part is any server the owner names: that server must be public (or operator-allowed).
HOST_SCHEMES = frozenset({"json", "jsons", "xml", "xmls", "form", "forms", "ntfy", "ntfys", "gotify", "gotifys",
                          "mailto", "mailtos", "ncloud", "nclouds", "matrix", "matrixs", "mmost", "mmosts",
                          "rocket", "rockets", "signal", "signals"})
# Schemes that go to one fixed public service (Pushover, Telegram, Discord, Slack, Pushbullet, Twilio SMS, Join,
# WhatsApp, Threema).
SERVICE_SCHEMES = frozenset({"pover", "tgram", "discord", "slack", "pbul", "twilio", "join", "whatsapp", "threema"})
CHANNEL_SCHEMES = HOST_SCHEMES | SERVICE_SCHEMES


def channel_scheme_problem(url: str) -> str | None:
    """Why `url` cannot be an alarm channel because of its scheme (naming the allowed ones); None when it can."""
    if url.count("://") != 1 or any(c.isspace() for c in url):  # apprise reads "a://…, b://…" as two channels
        return "one alarm channel per URL: this one holds several (or spaces)"
    scheme = urlsplit(url).scheme.lower()
    if scheme in CHANNEL_SCHEMES:
        return None
    return (f"alarm channels must reach a person; {scheme or 'no'}:// is not one of the allowed schemes "
            f"({', '.join(sorted(CHANNEL_SCHEMES))})")


def channel_destination_allowed(url: str, allow: tuple[Network, ...] = ()) -> bool:
    """False when an apprise URL's scheme is not an allowed alarm channel (`CHANNEL_SCHEMES`), or when it names
    a server (`HOST_SCHEMES`) that is, or resolves to, a non-public address outside the allow-list (checked when
    the owner saves it; checked again at each connection by `egress_guard` when it is sent)."""
    if channel_scheme_problem(url) is not None:
        return False
    parts = urlsplit(url)
    if parts.scheme.lower() not in HOST_SCHEMES or not parts.hostname:
        return True
    try:
        port = parts.port or 443
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        return False
    return bool(infos) and all(destination_allowed(str(info[4][0]), allow) for info in infos)


# ------------------------------------------------------------------ the guard on every outgoing connection

_resolve = socket.getaddrinfo  # the real resolver (tests replace it to play a rebinding DNS server)
_egress: ContextVar[tuple[Network, ...] | None] = ContextVar("limen_cloud_egress", default=None)


class DestinationRefused(socket.gaierror):
    """Every address the name resolved to is internal and not allow-listed (raised where resolution would fail)."""


def _guarded_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    infos = _resolve(host, port, *args, **kwargs)
    allow = _egress.get()
    if allow is None:  # outside a guard: the process's own connections (database, broker) as before
        return infos
    kept = [info for info in infos if destination_allowed(str(info[4][0]), allow)]
    if not kept:
        log.info("outgoing connection refused: destination not public and not allow-listed")
        raise DestinationRefused(socket.EAI_NONAME, "destination refused (not public, not allow-listed)")
    return kept


@contextmanager
def egress_guard(allow: tuple[Network, ...] = ()) -> Iterator[None]:
    """Within this block (and the threads that inherit its context), connections go only to public addresses
    or the operator's allow-list, checked at the resolution each connection uses."""
    token = _egress.set(allow)
    try:
        yield
    finally:
        _egress.reset(token)


class _Deadline:
    """The connections made in one `connection_deadline` block (by file descriptor and peer), cut together."""

    def __init__(self) -> None:
        self.expired = False
        self._lock = threading.Lock()
        self._made: list[tuple[int, Any]] = []

    def made(self, sock: socket.socket, address: Any) -> None:
        with self._lock:
            if self.expired:
                raise TimeoutError("deadline passed")
            self._made.append((sock.fileno(), address))

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            made = list(self._made)
        for fd, address in made:  # TLS wrapping moved each socket to a new object on the same descriptor
            with contextlib.suppress(OSError, ValueError):
                sock = socket.socket(fileno=fd)
                try:
                    if isinstance(address, tuple) and sock.getpeername()[:2] == address[:2]:  # still that one
                        sock.shutdown(socket.SHUT_RDWR)  # wakes a recv/send blocked in another thread
                finally:
                    sock.detach()


_deadline: ContextVar[_Deadline | None] = ContextVar("limen_cloud_deadline", default=None)


@contextmanager
def connection_deadline(seconds: float) -> Iterator[_Deadline]:
    """Within this block (and the threads that inherit its context), every connection made is shut down when
    `seconds` have passed, and later ones are refused: libraries whose timeouts are per read (apprise's
    requests, smtplib) cannot be held open by a server that answers a byte at a time."""
    cut = _Deadline()
    token = _deadline.set(cut)
    timer = threading.Timer(seconds, cut.expire)
    timer.daemon = True
    timer.start()
    try:
        yield cut
    finally:
        timer.cancel()
        _deadline.reset(token)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """Inside `egress_guard`, every connect and every datagram goes to an address literal it allows (a socket
    given a name resolves it in C, past `_guarded_getaddrinfo`: apprise's rsyslog:// did); inside
    `connection_deadline`, each connection is recorded to be cut."""
    if event not in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        return
    allow = _egress.get()
    if allow is not None and (event != "socket.sendmsg" or args[1] is not None) \
            and not (isinstance(args[1], tuple) and args[1] and isinstance(args[1][0], str)
                     and destination_allowed(args[1][0], allow)):
        log.info("outgoing connection refused: destination not public and not allow-listed")
        raise DestinationRefused(socket.EAI_NONAME, "destination refused (not public, not allow-listed)")
    if event == "socket.connect":
        cut = _deadline.get()
        if cut is not None:
            cut.made(args[0], args[1])


# Installed once, when the cloud imports this module: outside a guard it only passes the call on.
if getattr(socket.getaddrinfo, "__name__", "") != "_guarded_getaddrinfo":
    socket.getaddrinfo = _guarded_getaddrinfo
    sys.addaudithook(_audit)  # (outside a `connection_deadline` it only looks at one context variable)


class _Watchdog:
    """One thread that cuts the connections whose deadline passed (`arm`), instead of a timer thread per POST:
    a burst's POSTs each paid a thread's start (≈ 0.3 ms of the cloud's interpreter) for a watchdog that fires
    only for a trickling receiver."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []  # (when, token); a disarmed token is skipped when it comes up
        self._armed: dict[int, Callable[[int], None]] = {}
        self._next = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float, expire: Callable[[int], None]) -> int:
        """Call `expire(token)` after `seconds` unless `disarm(token)` came first; the token."""
        with self._cond:
            token = next(self._next)
            self._armed[token] = expire
            heapq.heappush(self._heap, (time.monotonic() + seconds, token))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="limen-cloud-watchdog", daemon=True)
                self._thread.start()
            if self._heap[0][1] == token:  # due before the one the thread waits for (else it need not wake)
                self._cond.notify()
        return token

    def disarm(self, token: int) -> None:
        with self._cond:
            self._armed.pop(token, None)

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    while self._heap and self._heap[0][1] not in self._armed:
                        heapq.heappop(self._heap)
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        token = heapq.heappop(self._heap)[1]
                        expire = self._armed.pop(token)
                        break
                    self._cond.wait(self._heap[0][0] - now if self._heap else None)
            with contextlib.suppress(Exception):  # (a failed cut must not stop the watchdog)
                expire(token)


_WATCHDOG = _Watchdog()


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to an address already checked; `expire(token)` (the watchdog, for the exchange armed with `token`) cuts
    the connection at once.  `born`: when it was connected (a kept connection is not used past
    `CLOUD_WEBHOOK_KEEPALIVE_S`: its name is resolved and checked again then)."""

    def __init__(self, address: str, port: int, timeout: float) -> None:
        super().__init__(address, port, timeout=timeout)
        self._raw: socket.socket | None = None
        self._expired = threading.Event()
        self._cut = threading.Lock()
        self._token: int | None = None
        self.born = self.idle_since = time.monotonic()

    def _open(self) -> socket.socket:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        # http.client sends the head and the body in two writes: on a kept connection Nagle would hold the body
        # for the receiver's delayed ACK (40 ms a POST, measured); urllib3 sets the same
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._raw = raw
        if self._expired.is_set():  # the watchdog fired while this connected
            raw.close()
            raise TimeoutError("deadline passed")
        return raw

    def connect(self) -> None:
        self.sock = self._open()

    @property
    def expired(self) -> bool:
        return self._expired.is_set()

    def arm(self, seconds: float) -> None:
        """The next exchange ends by `seconds` from now (cut by the watchdog)."""
        with self._cut:
            self._token = _WATCHDOG.arm(seconds, self.expire)

    def disarm(self) -> None:
        """The exchange ended: the watchdog no longer cuts it (also when it is about to fire now)."""
        with self._cut:
            if self._token is not None:
                _WATCHDOG.disarm(self._token)
            self._token = None

    def expire(self, token: int | None = None) -> None:
        with self._cut:
            if token is not None and token != self._token:  # an exchange that ended already
                return
            self._expired.set()
            if self._raw is not None:
                with contextlib.suppress(OSError):
                    self._raw.shutdown(socket.SHUT_RDWR)  # wakes a recv/send blocked in another thread


class _PinnedHTTPS(_PinnedHTTP):
    """HTTPS to an address already checked, verifying the certificate for the name in the URL."""

    def __init__(self, address: str, port: int, name: str, timeout: float, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(address, port, timeout)
        self._name, self._tls = name, tls or ssl.create_default_context()

    def connect(self) -> None:
        self.sock = self._tls.wrap_socket(self._open(), server_hostname=self._name)


_PoolKey = tuple[str, str, int, tuple["Network", ...], "ssl.SSLContext | None"]


class ConnectionPool:
    """Kept-alive connections to community webhooks, idle ones by destination (scheme, name, port, allow-list,
    trust store): a burst's POSTs to one receiver reuse a few connections instead of one each (a TCP and TLS
    handshake, a name resolution and a receiver thread per alarm before).

    A kept connection goes to the address that was checked when it was made (no DNS rebinding: the name is not
    resolved again for it), and is used for `CLOUD_WEBHOOK_KEEPALIVE_S` at most from its making, so a name
    re-pointed is followed (and checked) within that time; idle ones are closed after
    `CLOUD_WEBHOOK_IDLE_S`; at most `CLOUD_WEBHOOK_POOL_PER_HOST` idle per destination and
    `CLOUD_WEBHOOK_POOL_MAX` in all are kept (the longest idle closed first).  Only a connection whose answer
    was read whole and short (`CLOUD_WEBHOOK_KEEP_BODY_BYTES`, known length, no `Connection: close`) within its
    deadline goes back; any other is closed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: OrderedDict[_PoolKey, list[_PinnedHTTP]] = OrderedDict()
        self.made = 0  # connections opened (tests, bench)

    def opened(self) -> None:
        with self._lock:
            self.made += 1

    def take(self, key: _PoolKey) -> _PinnedHTTP | None:
        """An idle connection to `key` still young enough, or None."""
        now = time.monotonic()
        stale: list[_PinnedHTTP] = []
        found = None
        with self._lock:
            held = self._idle.get(key, [])
            while held:
                conn = held.pop()  # the most recently used: the least likely to have been closed by the receiver
                if _fresh(conn, now):
                    found = conn
                    break
                stale.append(conn)
            if not held:
                self._idle.pop(key, None)
        for conn in stale:
            conn.close()
        return found

    def give(self, key: _PoolKey, conn: _PinnedHTTP) -> None:
        """Keep `conn` (an exchange ended cleanly on it) for the next POST to `key`."""
        conn.idle_since = time.monotonic()
        drop: list[_PinnedHTTP] = []
        with self._lock:
            held = self._idle.setdefault(key, [])
            self._idle.move_to_end(key)
            if len(held) >= T.CLOUD_WEBHOOK_POOL_PER_HOST:
                drop.append(held.pop(0))
            held.append(conn)
            while sum(len(v) for v in self._idle.values()) > T.CLOUD_WEBHOOK_POOL_MAX:
                oldest = next(iter(self._idle))
                drop.append(self._idle[oldest].pop(0))
                if not self._idle[oldest]:
                    del self._idle[oldest]
        for old in drop:
            old.close()

    def sweep(self) -> None:
        """Close the idle connections past their time (the notifier's loop calls it)."""
        now = time.monotonic()
        drop: list[_PinnedHTTP] = []
        with self._lock:
            for key in list(self._idle):
                keep = [c for c in self._idle[key] if _fresh(c, now)]
                drop += [c for c in self._idle[key] if not _fresh(c, now)]
                if keep:
                    self._idle[key] = keep
                else:
                    del self._idle[key]
        for conn in drop:
            conn.close()

    def close(self) -> None:
        with self._lock:
            held = [c for v in self._idle.values() for c in v]
            self._idle.clear()
        for conn in held:
            conn.close()


def _fresh(conn: _PinnedHTTP, now: float) -> bool:
    return now - conn.born < T.CLOUD_WEBHOOK_KEEPALIVE_S and now - conn.idle_since < T.CLOUD_WEBHOOK_IDLE_S


def _reusable(answer: http.client.HTTPResponse) -> bool:
    """Whether the connection can carry another POST once this answer's (short, known-length) body is read."""
    length = answer.length
    return not answer.will_close and not answer.chunked and length is not None \
        and length <= T.CLOUD_WEBHOOK_KEEP_BODY_BYTES


# the connection a kept one turned out to be closed by the receiver while idle: tried once more on a new one
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


def post_pinned(url: str, body: bytes, headers: dict[str, str], allow: tuple[Network, ...], deadline_s: float,
                tls: ssl.SSLContext | None = None, pool: ConnectionPool | None = None) -> int | None:
    """POST `body` to `url` at its name's address, checked once (public or allow-listed) and connected to as
    checked; the answer's status, or None when not reached.  The whole exchange (connection, TLS, request,
    the answer's head) ends by `deadline_s`; redirects are not followed.  Without `pool` the connection is closed
    and the answer's body is not read; with it, a short answer's body is read (and dropped) so the connection
    can be kept for the next POST to the same destination (`ConnectionPool`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    host_header = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port:
        host_header += f":{parts.port}"
    key: _PoolKey = (parts.scheme, parts.hostname, port, allow, tls)
    ends = time.monotonic() + deadline_s
    conn = pool.take(key) if pool is not None else None
    while True:
        reused = conn is not None
        if conn is None:
            address = resolve_checked(parts.hostname, port, allow)
            if address is None:
                log.info("destination refused (not public, not allow-listed) or not resolved")
                return None
            conn = (_PinnedHTTPS(address, port, parts.hostname, deadline_s, tls) if parts.scheme == "https"
                    else _PinnedHTTP(address, port, deadline_s))
            if pool is not None:
                pool.opened()
        conn.arm(max(0.0, ends - time.monotonic()))
        keep = False
        try:
            conn.request("POST", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), body=body,
                         headers={**headers, "Host": host_header})
            answer = conn.getresponse()
            status = answer.status
            if conn.expired:  # cut off while its head came in: an answer ended by us is no answer
                raise TimeoutError("deadline passed")
            if pool is not None and _reusable(answer):
                answer.read()  # (at most CLOUD_WEBHOOK_KEEP_BODY_BYTES, dropped)
                keep = not conn.expired
            return status
        except _STALE as exc:
            if reused and not conn.expired and time.monotonic() < ends:  # closed while idle: once more, new
                log.debug("kept connection closed by the receiver (%s); a new one", type(exc).__name__)
                conn.disarm()
                conn.close()
                conn = None
                continue
            log.info("%s not reached (%s)", parts.scheme, type(exc).__name__)
            return None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            log.info("%s not reached (%s)", parts.scheme, type(exc).__name__)
            return None
        finally:
            if conn is not None:
                conn.disarm()
                if keep and pool is not None:
                    pool.give(key, conn)
                else:
                    conn.close()


def post_webhook(url: str, secret: str, body: bytes, allow: tuple[Network, ...] = (),
                 tls: ssl.SSLContext | None = None, pool: ConnectionPool | None = None) -> str | None:
    """POST `body` signed; None when the receiver answered 2xx, else a short reason (never its answer).

    Redirects are failures (the signed body goes only where the owner said).  `tls`: the trust store for
    https:// (the system's by default).  The whole POST ends by `CLOUD_WEBHOOK_TIMEOUT_S` (`post_pinned`).
    `pool`: kept-alive connections to reuse (the notifier's; see `ConnectionPool`).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "not an http(s) address"
    try:
        parts.port  # noqa: B018  (a port out of range raises here)
    except ValueError:
        return "not an http(s) address"
    timestamp = str(int(time.time()))
    status = post_pinned(url, body, {
        "Content-Type": "application/json", "User-Agent": "limen-cloud", "X-Limen-Timestamp": timestamp,
        "X-Limen-Signature": webhook_signature(secret, timestamp, body)}, allow, T.CLOUD_WEBHOOK_TIMEOUT_S, tls,
        pool)
    if status is None:
        return NOT_REACHED
    return None if 200 <= status < 300 else f"HTTP {status}"
