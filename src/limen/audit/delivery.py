"""Delivery of queued alarms, off the unlock path.

`Dispatcher.deliver_due()` makes one pass over every channel's due outbox rows
(used by `limen alerts deliver` and tests); `start()` runs one daemon worker
thread per channel (plus one that runs the time-based rules every `TICK_S`),
so that a slow or dead service delays only its own deliveries, never the lock
nor the other channels.  Each attempt is bounded by
`AUDIT_DELIVERY_TIMEOUT_S`; its outcome updates the outbox row and appends an
ALARM_DELIVERY record in the same transaction.  Failed rows are retried with
exponential backoff, forever.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass

from limen.audit import outbox
from limen.audit.channels import Channel, DeliveryFailed
from limen.audit.event import Event, EventKind
from limen.audit.log import AuditLog
from limen.clock import Clock, SystemClock
from limen.db import connect

log = logging.getLogger(__name__)

IDLE_POLL_S = 5.0   # a worker with nothing due re-checks at least this often (rows from other processes)
TICK_S = 5.0        # how often the time-based rules (door left open) run while workers are started


@dataclass(frozen=True)
class DeliveryResult:
    item: int
    alarm: int
    channel: str
    delivered: bool
    attempts: int
    error: str | None = None


class Dispatcher:
    """Delivers the outbox of `audit` through `channels` (see the module docstring)."""

    def __init__(self, audit: AuditLog, channels: dict[str, Channel], clock: Clock | None = None) -> None:
        self.audit, self.channels = audit, channels
        self._clock = clock or SystemClock()
        self._wake = {cid: threading.Event() for cid in channels}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ one pass
    def deliver_due(self) -> list[DeliveryResult]:
        """Try every due row of every channel once; return what happened."""
        results: list[DeliveryResult] = []
        for cid in self.channels:
            results += self._deliver_channel(cid)
        return results

    def pending_channels(self) -> list[str]:
        """Channel ids that have pending rows but are no longer configured (they wait, never dropped)."""
        conn = connect(self.audit.path)
        try:
            rows = conn.execute("SELECT DISTINCT channel FROM outbox WHERE status = 'pending'").fetchall()
        finally:
            conn.close()
        return sorted(r[0] for r in rows if r[0] not in self.channels)

    # ------------------------------------------------------------------ workers
    def start(self) -> Dispatcher:
        """Start one daemon worker per channel; wake them with `wake()` (the monitor does)."""
        monitor = self.audit.monitor
        if monitor is not None:
            monitor.on_enqueue(self.wake)
        for cid in self.channels:
            thread = threading.Thread(target=self._run, args=(cid,), name=f"limen-alerts-{cid}", daemon=True)
            thread.start()
            self._threads.append(thread)
        if monitor is not None:
            ticker = threading.Thread(target=self._tick, name="limen-alerts-tick", daemon=True)
            ticker.start()
            self._threads.append(ticker)
        return self

    def _tick(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self.audit.monitor.tick(self._clock.now())
            except Exception:
                log.exception("time-based anomaly rules failed")

    def wake(self) -> None:
        for event in self._wake.values():
            event.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def close(self) -> None:
        """Stop the workers and release channel hardware (the siren's pin)."""
        self.stop()
        for channel in self.channels.values():
            close = getattr(channel, "close", None)
            if callable(close):
                close()

    def _run(self, cid: str) -> None:
        while not self._stop.is_set():
            try:
                self._deliver_channel(cid)
                wait = self._until_next(cid)
            except Exception:  # the worker must outlive any store or channel failure; rows stay queued
                log.exception("alert delivery pass failed for %s", cid)
                wait = IDLE_POLL_S
            self._wake[cid].wait(wait)
            self._wake[cid].clear()

    def _until_next(self, cid: str) -> float:
        conn = connect(self.audit.path)
        try:
            nxt = outbox.next_due(conn, cid)
        finally:
            conn.close()
        if nxt is None:
            return IDLE_POLL_S
        return max(0.0, min(IDLE_POLL_S, nxt - self._clock.now().timestamp()))

    # ------------------------------------------------------------------ one channel
    def _deliver_channel(self, cid: str) -> list[DeliveryResult]:
        channel = self.channels[cid]
        conn = connect(self.audit.path)
        try:
            due = outbox.due(conn, cid, self._clock.now().timestamp())
        finally:
            conn.close()
        results = []
        for item in due:
            if self._stop.is_set() and self._threads:
                break
            try:
                channel.send(item.payload)
                error = None
            except DeliveryFailed as exc:
                error = str(exc)
            except Exception as exc:  # a channel bug must not kill the worker; retried like a failure
                error = f"unexpected {type(exc).__name__}"
            results.append(self._settle(item, error))
        return results

    def _settle(self, item: outbox.OutboxItem, error: str | None) -> DeliveryResult:
        attempts = [item.attempts + 1]
        now = self._clock.now()

        def update(conn: sqlite3.Connection, index: int) -> None:
            if error is None:
                outbox.mark_delivered(conn, item.id, now.isoformat())
            else:
                attempts[0] = outbox.mark_failed(conn, item.id, error, now.timestamp())

        event = Event(EventKind.ALARM_DELIVERY, at=now, actor="system", subject=str(item.alarm_index),
                      outcome="delivered" if error is None else "failed", reason=error, source=item.channel,
                      data={"alarm": item.alarm_index, "channel": item.channel, "attempt": item.attempts + 1})
        self.audit.append_with(event, update)
        return DeliveryResult(item.id, item.alarm_index, item.channel, error is None, attempts[0], error)
