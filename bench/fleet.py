"""N SIMULATED locks on one limen-cloud instance over a private Mosquitto (TLS 1.3, mutual X.509).

Each simulated lock is one MQTT 5 client with its own certificate from the fleet CA (key made
"on the lock", CSR signed), a chained audit trail in memory (the lock's own chain functions),
the real `EventForwarder` and a real `CommandVerifier`; it has no door and no AccessController.
The locks live in --procs worker processes (paho-mqtt polls with select(), which stops at file
descriptor 1024: at most MAX_LOCKS_PER_PROCESS clients per process); the cloud is the real
`CloudBridge` (CLOUD_INGEST_WORKERS workers) on SQLite or PostgreSQL in the main process, with the real
`AlarmNotifier` posting every alarm to the owner's community webhook and (--apprise) to an apprise json://
channel of the owner.  The receiver of both is the owner's side: its own process (not the cloud's GIL).
Every MQTT connection (locks and cloud) goes through a TCP proxy process in front of the broker (the
broker uses the persistence `limen-cloud broker-config` writes).  Times are `time.monotonic()` (one clock
for all processes on Linux).

  event → owner alarm   a lock forwards an ALARM record; until the cloud has committed the owner's alarm
                        row ("recorded"); until the signed webhook POST of that alarm arrived at the owner's
                        receiver ("delivered": the figure reported against the issue's ≤ 1 s); with --apprise
                        also until the owner's apprise channel got it.  Two shapes: a burst (every lock at the
                        same instant, the worst case) and a spread (the same alarms over --spread-s seconds)
  command → lock        the cloud relays a signed unlock; until the lock has verified it (signature, counter)
  broker restart        the broker is stopped (SIGTERM) while the locks are forwarding, stays down --outage-s
                        while every lock keeps recording; after it returns (locks reconnect, the cloud
                        reconnects by itself) every record reaches the cloud exactly once (lost / duplicated)
  partition             the proxy stops forwarding for --partition-s without closing anything (bytes wait,
                        nothing answers, new connections hang: what a network dropping packets looks like to
                        TCP); both ends find out by MQTT keep-alive; the locks keep recording and forwarding
                        attempts; at the heal the proxy resets the connections both ends had given up; then
                        the same exactly-once count

  stages                each alarm is also stamped where it is: at the broker (PUBACK), at the cloud, taken by an
                        ingest pass, recorded, picked by the notifier's webhook pass, POSTed, picked by the owner's
                        apprise job (`--times PATH` writes every lock's stamps); `cpu_s_by_party`: CPU time and
                        run-queue wait (/proc/…/schedstat) of each party during the phase — the cloud's threads by
                        name, the lock processes, proxy, receiver, Mosquitto, every PostgreSQL process on the machine

    python bench/fleet.py --locks 1000 --procs 4 --partition-s 600 --out bench/results/fleet-1000.json

Needs mosquitto (apt) and the cloud extra.  Median and p95, load average printed beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing as mp
import os
import re
import sqlite3
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.link.broker: the same private broker

from bench.benchstats import pct  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey  # noqa: E402
from sqlalchemy import create_engine, event, func, select, text  # noqa: E402
from tests.link.broker import CLOUD_ID, launch, prepare  # noqa: E402

from limen import thresholds as T  # noqa: E402
from limen.audit.chain import GENESIS, make_record  # noqa: E402
from limen.audit.event import Event, EventKind  # noqa: E402
from limen.errors import CommandRefused, LinkError  # noqa: E402
from limen.link import pki  # noqa: E402
from limen.link.commands import Action, Command, CommandVerifier, DeviceRegistry, SignedCommand, sign  # noqa: E402
from limen.link.execute import Outcome  # noqa: E402
from limen.link.forward import EventForwarder  # noqa: E402
from limen.link.mqtt import LockLink  # noqa: E402
from limen_cloud import bridge as bridge_module  # noqa: E402
from limen_cloud import notify  # noqa: E402
from limen_cloud.bridge import CloudBridge  # noqa: E402
from limen_cloud.db import make_engine, sessions, upgrade  # noqa: E402
from limen_cloud.models import Alarm, Lock, Owner, Record  # noqa: E402
from limen_cloud.notify import AlarmNotifier  # noqa: E402

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MAX_LOCKS_PER_PROCESS = 300  # 3 descriptors per client under select()'s 1024


class Trail:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, kind: EventKind = EventKind.UNLOCK_ATTEMPT, reason: str = "granted") -> None:
        i = len(self.items)
        prev = self.items[-1]["hash"] if self.items else GENESIS
        event = Event(kind, T0 + timedelta(seconds=i), actor="system", reason=reason, source="bench",
                      data={"text": "simulated alarm"} if kind is EventKind.ALARM else {"method": "pin"})
        self.items.append(make_record(event, i, prev, (T0 + timedelta(seconds=i)).isoformat()))

    def count(self) -> int:
        return len(self.items)

    def records(self, start: int = 0, kinds: tuple[str, ...] = ()) -> Any:
        yield from (dict(r) for r in self.items[start:])

    def checkpoints(self) -> list[dict[str, Any]]:
        return []

    def public_keys(self) -> dict[str, Any]:
        return {}


class SimCommands:
    """What `LockLink` runs a command with on a real lock (`limen.link.execute.LinkCommands`), minus the door: the
    signed command verified (signature, counter, expiry, lock id), the moment noted; the outcome goes back on
    `limen/<id>/result` as on a real lock."""

    def __init__(self, verifier: CommandVerifier) -> None:
        self.verifier = verifier
        self.verified: dict[int, float] = {}
        self.audit: list[Event] = []  # `LockLink` audits link events here (none in the bench's phases)

    def handle(self, payload: bytes, at: datetime) -> Outcome:
        try:
            cmd, _ = self.verifier.verify(SignedCommand.from_bytes(payload), at)
        except CommandRefused as exc:
            return Outcome(False, None, str(exc)[:80])
        self.verified[cmd.counter] = time.monotonic()
        return Outcome(True, cmd.action.value, "done", cmd.counter, cmd.device)


class CountingForwarder(EventForwarder):
    """The real forwarder; counts the rewinds the cloud's head answers caused."""

    rewinds = 0

    def rewind(self, cloud_count: int) -> bool:
        moved = super().rewind(cloud_count)
        self.rewinds += moved
        return moved


class SimLock:
    """One simulated lock on the real lock's link: `LockLink` (persistent session; `limen/<id>/cmd` and
    `limen/<id>/head` subscribed; a head answer rewinds the forwarder at the next `forward`, as on a real lock)."""

    def __init__(self, lock_id: str, where: dict[str, Any], phone: Ed25519PublicKey) -> None:
        self.id = lock_id
        self.guard = threading.Lock()  # commands (paho's thread), as the service's lock on a real lock
        self.sending = threading.Lock()  # one forward at a time (the real lock's link loop is one thread)
        self.conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("CREATE TABLE schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        self.trail = Trail()
        self.forwarder = CountingForwarder(self.trail, self.conn, lock_id)
        devices = DeviceRegistry(self.conn)
        devices.pair("phone", phone, "owner", "owner", T0)
        self.commands = SimCommands(CommandVerifier(devices, lock_id))
        self.verified = self.commands.verified
        d = Path(where["dir"])
        self.link = LockLink(lock_id, pki.client_context(d / "ca.pem", d / f"{lock_id}.pem", d / f"{lock_id}.key"),
                             where["host"], where["port"], self.commands, guard=self.guard)  # type: ignore[arg-type]
        self.mqtt = self.link.mqtt
        self.publish_timeout = 10.0
        # the bench's threads serve many locks each: a publish waits at most `publish_timeout` (a real lock has a
        # thread of its own and waits the link's default); everything else is `LockLink.forward` as it is
        link_publish = self.mqtt.publish
        self.mqtt.publish = lambda topic, payload, timeout=10.0, *, retain=False: link_publish(  # type: ignore
            topic, payload, min(timeout, self.publish_timeout), retain=retain)

    def forward(self, timeout: float = 10.0) -> None:
        with self.sending:
            self.publish_timeout = timeout
            self.link.forward(self.forwarder)


class TimedBridge(CloudBridge):
    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.done: dict[str, float] = {}
        self.arrived: dict[str, float] = {}  # lock → when its first message since `clear` reached the cloud
        self.taken: dict[str, float] = {}  # lock → when a worker began the pass with its first message
        self.unacked = 0  # messages delivered to the cloud and not yet acknowledged (the broker's in-flight window)
        self.max_unacked = 0
        self.passes: list[int] = []  # messages per ingest pass
        self._count = threading.Lock()
        self.by_link = [0] * len(self.links)  # messages each connection received
        for link in self.links:
            link.ack = self._counted(link.ack)  # type: ignore[method-assign]

    def _counted(self, link_ack: Any) -> Any:
        def ack(delivery: Any) -> None:
            with self._count:
                self.unacked -= 1
            link_ack(delivery)
        return ack

    def _deliver(self, delivery: Any, link: int = 0) -> None:
        self.arrived.setdefault(delivery.topic.split("/")[1], time.monotonic())
        with self._count:
            self.by_link[link] += 1
            self.unacked += 1
            self.max_unacked = max(self.max_unacked, self.unacked)
        super()._deliver(delivery, link)

    def process(self, messages: list[tuple[str, bytes]], redelivered: list[bool] | None = None,
                hold: bool = False) -> list[bool]:
        now = time.monotonic()
        self.passes.append(len(messages))
        for topic, _ in messages:
            self.taken.setdefault(topic.split("/")[1], now)
        waiting = super().process(messages, redelivered, hold)  # committed
        now = time.monotonic()
        for (topic, _), late in zip(messages, waiting, strict=True):
            if not late:
                self.done[topic.split("/")[1]] = now
        return waiting


class TimedNotifier(AlarmNotifier):
    """The real notifier; notes when each (rule, lock) alarm was picked by a webhook pass, its POST began and got
    its 2xx, and when an apprise job took it."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.pass_started = 0.0
        self.webhook_picked: dict[tuple[str, str], float] = {}
        self.webhook_posted: dict[tuple[str, str], float] = {}  # the POST began
        self.webhook_answered: dict[tuple[str, str], float] = {}  # its 2xx came back
        self.apprise_picked: dict[tuple[str, str], float] = {}

    def clear(self) -> None:
        for d in (self.webhook_picked, self.webhook_posted, self.webhook_answered, self.apprise_picked):
            d.clear()

    def deliver_webhooks(self, now: datetime | None = None, wait: bool = True) -> int:
        self.pass_started = time.monotonic()  # (passes run one after the other on the notifier's thread)
        return super().deliver_webhooks(now, wait)

    def post(self, post_webhook: Any) -> Any:
        def timed(url: str, secret: str, body: bytes, *args: Any, **kw: Any) -> str | None:
            started = time.monotonic()
            fields = json.loads(body)
            key = (fields["rule"], fields["lock_id"])
            self.webhook_picked.setdefault(key, self.pass_started)
            self.webhook_posted.setdefault(key, started)
            error: str | None = post_webhook(url, secret, body, *args, **kw)
            if error is None:
                self.webhook_answered.setdefault(key, time.monotonic())
            return error
        return timed

    def _deliver_owner(self, owner_id: int, urls: tuple[str, ...], alarms: list[Any]) -> int:
        now = time.monotonic()
        for a in alarms:
            self.apprise_picked.setdefault((a.rule, a.lock_id), now)
        return super()._deliver_owner(owner_id, urls, alarms)


def _schedstat(path: str) -> tuple[int, int]:
    """(ns on a CPU, ns waiting in the run queue) of one task; (0, 0) if it is gone."""
    try:
        run, wait, _ = Path(path).read_text().split()
    except (OSError, ValueError):
        return 0, 0
    return int(run), int(wait)


class CpuMeter:
    """CPU time and run-queue wait (the scheduler's /proc/…/schedstat, every thread) of each party during a phase:
    the cloud's threads by name, the lock processes, the proxy, the owner's receiver, Mosquitto and every
    PostgreSQL process on the machine (other users' too)."""

    def __init__(self, parties: dict[str, list[int]]) -> None:
        self.parties = parties

    def snapshot(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(party, task) → (run ns, wait ns)."""
        out: dict[tuple[str, str], tuple[int, int]] = {}
        for name, pids in list(self.parties.items()) + [("postgresql", self._postgres())]:
            for pid in pids:
                with contextlib.suppress(OSError):
                    for task in os.listdir(f"/proc/{pid}/task"):
                        out[(name, f"{pid}/{task}")] = _schedstat(f"/proc/{pid}/task/{task}/schedstat")
        names = {t.native_id: re.sub(r"[-_]?[0-9]+$", "", t.name) for t in threading.enumerate()}
        for task in os.listdir("/proc/self/task"):
            name = "cloud:" + names.get(int(task), "other")
            out[(name, task)] = _schedstat(f"/proc/self/task/{task}/schedstat")
        return out

    @staticmethod
    def _postgres() -> list[int]:
        pids = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                with contextlib.suppress(OSError):
                    if (d / "comm").read_text().strip() == "postgres":
                        pids.append(int(d.name))
        return pids

    def since(self, before: dict[tuple[str, str], tuple[int, int]]) -> dict[str, dict[str, float]]:
        """Per party: CPU seconds and seconds waiting for a CPU since `before` (tasks born since count whole)."""
        out: dict[str, list[int]] = {}
        for (name, task), (run, wait) in self.snapshot().items():
            run0, wait0 = before.get((name, task), (0, 0))
            acc = out.setdefault(name, [0, 0])
            acc[0] += run - run0
            acc[1] += wait - wait0
        return {name: {"cpu_s": round(run / 1e9, 3), "runqueue_wait_s": round(wait / 1e9, 3)}
                for name, (run, wait) in sorted(out.items()) if run > 0}


LOCK_RE = re.compile(rb"lock-[0-9]{4}")
RULE_RE = re.compile(rb"lock:[a-z]+")
IDS_RE = re.compile(rb"ids: ([0-9,-]+)")  # a coalesced apprise message names every alarm id it carries


def receiver_process(pipe: Connection) -> None:
    """The owner's side, in its own process: when each (rule, lock) alarm reached the community webhook
    (`/alarms`, the cloud's signed JSON) and the owner's apprise json:// channel (`/apprise`)."""
    arrived: dict[str, dict[Any, float]] = {"webhook": {}, "apprise": {}, "apprise_ids": {}, "apprise_messages": {}}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a receiver behind any web server has

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            now = time.monotonic()
            if self.path.startswith("/alarms"):
                body = json.loads(raw)
                arrived["webhook"].setdefault((body["rule"], body["lock_id"]), now)
            else:  # apprise's json: title and message name the lock and the rule (or, coalesced, the alarm ids)
                arrived["apprise_messages"][len(arrived["apprise_messages"])] = now
                lock, rule, ids = LOCK_RE.search(raw), RULE_RE.search(raw), IDS_RE.search(raw)
                for part in (ids.group(1).split(b",") if ids else []):
                    first, _, last = part.partition(b"-")
                    for alarm_id in range(int(first), int(last or first) + 1):
                        arrived["apprise_ids"].setdefault(alarm_id, now)
                if lock and rule and not ids:
                    arrived["apprise"].setdefault((rule.group().decode(), lock.group().decode()), now)
            self.send_response(204 if self.path.startswith("/alarms") else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    ThreadingHTTPServer.request_queue_size = 1024  # the default backlog of 5 refuses parallel POSTs
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pipe.send(server.server_address[1])
    while True:
        op = pipe.recv()
        if op == "stop":
            server.shutdown()
            pipe.send(None)
            return
        pipe.send({k: dict(v) for k, v in arrived.items()})


class Receiver:
    def __init__(self) -> None:
        self.pipe, theirs = mp.get_context("spawn").Pipe()
        self.proc = mp.get_context("spawn").Process(target=receiver_process, args=(theirs,), daemon=True)
        self.proc.start()
        port = self.pipe.recv()
        self.webhook_url = f"http://127.0.0.1:{port}/alarms"
        self.apprise_url = f"json://127.0.0.1:{port}/apprise"
        self.keys: dict[int, tuple[str, str]] = {}  # alarm id → (rule, lock), for coalesced apprise messages

    def arrived(self, engine: Any = None) -> dict[str, dict[Any, float]]:
        """Arrival times by channel and (rule, lock); with `engine`, coalesced apprise messages' alarm ids are
        mapped to their (rule, lock) too."""
        self.pipe.send("get")
        got: dict[str, dict[Any, float]] = self.pipe.recv()
        unknown = [i for i in got["apprise_ids"] if i not in self.keys]
        if engine is not None and unknown:  # (each id looked up once: this polls during the measurement)
            with sessions(engine)() as s:
                self.keys.update((i, (rule, lock_id)) for i, rule, lock_id in s.execute(
                    select(Alarm.id, Alarm.rule, Alarm.lock_id).where(Alarm.id.in_(unknown))))
        for alarm_id, at in got["apprise_ids"].items():
            if alarm_id in self.keys:
                got["apprise"].setdefault(self.keys[alarm_id], at)
        return got

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self.pipe.send("stop")
            self.pipe.recv()
        self.proc.join(10)


# ------------------------------------------------------------------ the network between locks, cloud and broker

def proxy_process(pipe: Connection, upstream_port: int) -> None:
    """A TCP proxy on a free port in front of the broker.  "cut": nothing is forwarded any more (bytes wait in
    the socket buffers, new connections are accepted but not connected on: a TLS handshake hangs), nothing is
    closed.  "heal": every connection open at or made during the cut is reset (both ends gave it up by their
    MQTT keep-alive long before: 30 s), forwarding resumes for new ones."""

    async def main() -> None:
        flowing = asyncio.Event()
        flowing.set()
        epoch = [0]
        pairs: set[tuple[int, asyncio.StreamWriter, asyncio.StreamWriter | None]] = set()
        stats = {"connections": 0, "reset_at_heal": 0}
        loop = asyncio.get_running_loop()

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, born: int) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while True:
                    await flowing.wait()
                    data = await reader.read(65536)
                    await flowing.wait()  # read just before a cut: held, like everything else
                    if not data:
                        break
                    writer.write(data)
                    await writer.drain()
            writer.close()

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            stats["connections"] += 1
            born = epoch[0]
            await flowing.wait()
            if born != epoch[0]:  # made during a cut: reset at the heal
                writer.transport.abort()
                return
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
            except OSError:  # the broker is down: the client sees the connection closed
                writer.close()
                return
            pair = (born, writer, up_writer)
            pairs.add(pair)
            try:
                await asyncio.gather(pump(reader, up_writer, born), pump(up_reader, writer, born))
            finally:
                pairs.discard(pair)

        def command(op: str) -> Any:
            if op == "cut":
                epoch[0] += 1
                flowing.clear()
            elif op == "heal":
                epoch[0] += 1
                for born, a, b in list(pairs):
                    if born < epoch[0]:
                        stats["reset_at_heal"] += 1
                        a.transport.abort()
                        if b is not None:
                            b.transport.abort()
                        pairs.discard((born, a, b))
                flowing.set()
            return dict(stats, open=len(pairs))

        server = await asyncio.start_server(accept, "127.0.0.1", 0, backlog=2048)
        pipe.send(server.sockets[0].getsockname()[1])
        while True:
            op = await loop.run_in_executor(None, pipe.recv)
            if op == "stop":
                server.close()
                pipe.send(None)
                return
            pipe.send(command(op))

    asyncio.run(main())


class Proxy:
    def __init__(self, upstream_port: int) -> None:
        self.pipe, theirs = mp.get_context("spawn").Pipe()
        self.proc = mp.get_context("spawn").Process(target=proxy_process, args=(theirs, upstream_port), daemon=True)
        self.proc.start()
        self.port: int = self.pipe.recv()

    def do(self, op: str) -> Any:
        self.pipe.send(op)
        return self.pipe.recv()

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self.do("stop")
        self.proc.join(10)


# ------------------------------------------------------------------ the simulated locks' processes

def lock_process(pipe: Connection, ids: list[str], where: dict[str, Any], phone_raw: bytes, workers: int,
                 nice: int = 0) -> None:
    """Runs in a worker process: the simulated locks of `ids`, driven by the main process over `pipe`."""
    logging.basicConfig(level=logging.ERROR)
    os.nice(nice)  # (--locks-nice: the simulated devices yield the CPU to the cloud, as other machines would)
    phone = Ed25519PublicKey.from_public_bytes(phone_raw)
    locks = [SimLock(i, where, phone) for i in ids]
    with ThreadPoolExecutor(workers) as pool:
        while True:
            op, arg = pipe.recv()
            if op == "stop":
                pipe.send(None)
                return
            pipe.send(_lock_op(pool, locks, op, arg))


def _lock_op(pool: ThreadPoolExecutor, locks: list[SimLock], op: str, arg: Any) -> Any:
    if op == "connect":
        list(pool.map(lambda lk: lk.mqtt.connect(120), locks))
        return sum(lk.mqtt.connected for lk in locks)
    if op == "record":  # arg = (n, timeout): n records each, then try to forward (fails quietly while offline)
        n_records, timeout = arg

        def record(lk: SimLock) -> None:
            for _ in range(n_records):
                lk.trail.add()
            if lk.mqtt.connected:  # once keep-alive found the link dead, the lock waits for its reconnect
                with contextlib.suppress(LinkError):
                    lk.forward(timeout)
        list(pool.map(record, locks))
        return None
    if op == "alarm":  # arg = (reason, t0, spread_s): lock k raises its alarm at t0 + spread_s * k / n
        reason, t0, spread_s = arg
        started: dict[str, tuple[float, float]] = {}  # lock → (recorded and forwarded, the broker's PUBACK)

        def alarm(item: tuple[int, SimLock]) -> None:
            k, lk = item
            time.sleep(max(0.0, t0 + spread_s * k / len(locks) - time.monotonic()))
            lk.trail.add(EventKind.ALARM, reason)
            at = time.monotonic()
            lk.forward()
            started[lk.id] = (at, time.monotonic())
        list(pool.map(alarm, enumerate(locks)))
        return started
    if op == "verified":
        return {lk.id: lk.verified[arg] for lk in locks if arg in lk.verified}
    if op == "close":
        for lk in locks:
            lk.mqtt.close()
        return None
    if op == "reconnect":  # what the lock's link loop does (maintain, forward), until it got through
        def again(lk: SimLock) -> None:
            deadline = time.monotonic() + 300
            while True:
                try:
                    if not lk.mqtt.connected:
                        lk.mqtt.connect(30)
                    lk.forward()
                    return
                except LinkError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1.0)
        list(pool.map(again, locks))
        return None
    if op == "tick":  # one pass of each lock's link loop (every LINK_LOOP_PERIOD_S): forward, rewound if asked
        def tick(lk: SimLock) -> None:
            if lk.mqtt.connected:
                with contextlib.suppress(LinkError):
                    lk.forward(arg)
        list(pool.map(tick, locks))
        return None
    if op == "count":
        return sum(lk.trail.count() for lk in locks)
    if op == "rewinds":  # (locks rewound, rewinds) since the start
        return (sum(lk.forwarder.rewinds > 0 for lk in locks), sum(lk.forwarder.rewinds for lk in locks))
    raise ValueError(op)


class Fleet:
    """The worker processes, each with up to MAX_LOCKS_PER_PROCESS simulated locks."""

    def __init__(self, ids: list[str], procs: int, where: dict[str, Any], phone: bytes, workers: int,
                 nice: int = 0) -> None:
        ctx = mp.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs = []
        for k in range(procs):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=lock_process, args=(theirs, ids[k::procs], where, phone, workers, nice),
                               daemon=True)
            proc.start()
            self.pipes.append(mine)
            self.procs.append(proc)

    def all(self, op: str, arg: Any = None) -> list[Any]:
        for pipe in self.pipes:
            pipe.send((op, arg))
        return [pipe.recv() for pipe in self.pipes]

    def merged(self, op: str, arg: Any = None) -> dict[str, float]:
        out: dict[str, float] = {}
        for part in self.all(op, arg):
            out.update(part)
        return out

    def stop(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self.all("stop")
        for proc in self.procs:
            proc.join(30)


# ------------------------------------------------------------------ the run

def stats(ms: list[float]) -> dict[str, Any]:
    return {"n": len(ms), "median_ms": round(pct(ms, 50), 1), "p95_ms": round(pct(ms, 95), 1),
            "max_ms": round(max(ms), 1) if ms else None}


def wait(probe: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return True
        time.sleep(0.05)
    return False


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    load = [round(os.getloadavg()[0], 1)]
    broker = prepare(root, persistence=True)  # as limen-cloud broker-config writes it
    procs = [launch(broker)]
    proxy = Proxy(broker.port)
    try:
        return _run(args, root, broker, procs, load, proxy)
    finally:
        proxy.close()
        for proc in procs:
            proc.terminate()
            proc.wait(10)


def _run(args: argparse.Namespace, root: Path, broker: Any, procs: list[Any], load: list[float],
         proxy: Proxy) -> dict[str, Any]:
    n = args.locks
    engine = make_engine(args.db or f"sqlite:///{root / 'cloud.db'}", schema=args.schema)
    upgrade(engine)
    args.db_events = {"connect": 0, "checkout": 0}  # new database connections and pool checkouts, per phase
    for name in args.db_events:
        event.listen(engine, name, lambda *_, name=name: args.db_events.__setitem__(name, args.db_events[name] + 1))
    ids = [f"lock-{i:04d}" for i in range(n)]
    receiver = Receiver()
    with sessions(engine)() as s, s.begin():
        owner = Owner(email="bench@example.org", password_hash="-", created_at=datetime(2026, 1, 1),
                      webhook_url=receiver.webhook_url, webhook_secret="00" * 32,
                      alert_urls=json.dumps([receiver.apprise_url]) if args.apprise else None)
        s.add(owner)
        s.flush()
        s.add_all(Lock(lock_id=i, owner_id=owner.id, name=i, head_count=0, reported_count=0) for i in ids)
    phone = Ed25519PrivateKey.generate()
    for i in ids:  # keys made "on the lock", CSR signed by the fleet CA
        broker.client(i)
    bridge_module.BATCH = args.ingest_batch or bridge_module.BATCH  # (tuning runs)
    if args.receive_maximum is not None:  # (tuning runs: 0 = name none, the broker's own 20)
        bridge_module.RECEIVE_MAXIMUM = args.receive_maximum
    notify.WEBHOOK_PASS = args.webhook_pass or notify.WEBHOOK_PASS  # (tuning runs: the notifier's module values)
    notify.WEBHOOK_PARALLEL = args.webhook_parallel or notify.WEBHOOK_PARALLEL
    notifier = TimedNotifier(engine, ("127.0.0.0/8",),  # the bench receiver is local
                             coalesce_s=T.CLOUD_APPRISE_COALESCE_S if args.apprise_coalesce_s is None
                             else args.apprise_coalesce_s)
    notify.post_webhook = notifier.post(notify.post_webhook)  # type: ignore[assignment]
    notifier.start()
    args.notifier = notifier
    bridge = TimedBridge(engine, pki.client_context(broker.ca_file, *broker.client(CLOUD_ID)), broker.host,
                         broker.port if args.cloud_direct else proxy.port, on_alarms=notifier.wake,
                         workers=args.bridge_workers,
                         connections=args.bridge_connections)
    bridge.connect()
    where = {"dir": str(broker.dir), "host": broker.host, "port": proxy.port}
    fleet = Fleet(ids, args.procs, where, phone.public_key().public_bytes_raw(), args.workers, args.locks_nice)
    args.cpu = CpuMeter({"locks": [p.pid for p in fleet.procs if p.pid], "proxy": [proxy.proc.pid or 0],
                         "receiver": [receiver.proc.pid or 0], "mosquitto": [procs[0].pid]})
    try:
        return _phases(args, n, ids, engine, broker, procs, load, receiver, bridge, fleet, phone, proxy)
    finally:
        fleet.stop()
        bridge.close()
        notifier.stop()
        receiver.close()


def _phases(args: argparse.Namespace, n: int, ids: list[str], engine: Any, broker: Any, procs: list[Any],
            load: list[float], receiver: Receiver, bridge: TimedBridge, fleet: Fleet,
            phone: Ed25519PrivateKey, proxy: Proxy) -> dict[str, Any]:
    t = time.monotonic()
    connected = sum(fleet.all("connect"))
    connect_s = time.monotonic() - t
    fleet.all("record", (5, 10.0))

    def held() -> int:
        with sessions(engine)() as s:
            return int(s.scalar(select(func.count()).select_from(Record)) or 0)

    wait(lambda: held() >= 5 * n, 120)  # the cloud has taken every earlier message

    def alarms(reason: str, spread_s: float) -> dict[str, Any]:
        bridge.done.clear()
        bridge.arrived.clear()
        bridge.taken.clear()
        bridge.passes.clear()
        bridge.max_unacked = 0
        bridge.by_link = [0] * len(bridge.links)
        rule = f"lock:{reason}"
        args.notifier.clear()
        db_before = dict(args.db_events)
        cpu_before = args.cpu.snapshot()
        cpu = time.process_time()
        made = getattr(getattr(args.notifier, "webhook_connections", None), "made", 0)
        started_min = time.monotonic()
        both: dict[str, Any] = fleet.merged("alarm", (reason, time.monotonic() + 1.0, spread_s))
        started = {i: v[0] for i, v in both.items()}
        acked = {i: v[1] for i, v in both.items()}
        wait(lambda: len(bridge.done) >= n, 120)
        channels = ("webhook", "apprise") if args.apprise else ("webhook",)
        wait(lambda: all(sum(k[0] == rule for k in receiver.arrived(engine)[c]) >= n for c in channels), 300)
        arrived = receiver.arrived(engine)
        raised_over = (max(started.values()) - min(started.values())) * 1000 if started else 0.0
        out: dict[str, Any] = {"spread_s": spread_s, "raised_over_ms": round(raised_over, 1),  # first to last alarm
                               "alarm_at_broker": stats(  # the lock got the broker's PUBACK
            [(acked[i] - started[i]) * 1000 for i in ids if i in acked]),
            "alarm_at_cloud": stats(  # the broker delivered it to the cloud (a bridge connection's on_message)
            [(bridge.arrived[i] - started[i]) * 1000 for i in ids if i in bridge.arrived and i in started]),
            "alarm_taken": stats(  # an ingest worker began the pass that carries it
            [(bridge.taken[i] - started[i]) * 1000 for i in ids if i in bridge.taken and i in started]),
            "alarm_recorded": stats(
            [(bridge.done[i] - started[i]) * 1000 for i in ids if i in bridge.done and i in started])}
        cpu_by_party = args.cpu.since(cpu_before)
        note: TimedNotifier = args.notifier
        if args.times is not None:  # every lock's stages, ms from the phase's first alarm
            first = min(started.values())
            stages: tuple[dict[Any, float], ...] = (
                started, acked, bridge.arrived, bridge.taken, bridge.done, note.webhook_picked, note.webhook_posted,
                arrived["webhook"], note.apprise_picked, arrived.get("apprise", {}))
            Path(f"{args.times}-{reason}.json").write_text(json.dumps({
                "columns": ["raised", "at_broker", "at_cloud", "taken", "recorded", "webhook_picked",
                            "webhook_posted", "delivered_webhook", "apprise_picked", "delivered_apprise"],
                "locks": {i: [None if at is None else round((at - first) * 1000, 1) for at in (
                    (d.get(i) if k < 5 else d.get((rule, i))) for k, d in enumerate(stages))] for i in ids}}))
        for stage, at in (("webhook_picked", note.webhook_picked), ("webhook_posted", note.webhook_posted),
                          ("webhook_answered", note.webhook_answered)) + (
                         (("apprise_picked", note.apprise_picked),) if args.apprise else ()):
            out[stage] = stats([(at[(rule, i)] - started[i]) * 1000 for i in ids if (rule, i) in at and i in started])
        for c in channels:
            out[f"delivered_{c}"] = stats([(arrived[c][(rule, i)] - started[i]) * 1000 for i in ids
                                           if (rule, i) in arrived[c] and i in started])
        if args.apprise:  # notifications the owner's phone got for these n alarms (coalesced)
            out["apprise_messages"] = sum(t >= started_min for t in arrived["apprise_messages"].values())
        out["cloud_process_cpu_s"] = round(time.process_time() - cpu, 2)
        out["db_connections_made"] = args.db_events["connect"] - db_before["connect"]
        out["db_checkouts"] = args.db_events["checkout"] - db_before["checkout"]
        out["cpu_s_by_party"] = cpu_by_party  # from the alarms' start until the last one reached the owner
        kept = getattr(args.notifier, "webhook_connections", None)  # (None: a notifier without kept connections)
        out["webhook_connections_made"] = None if kept is None else kept.made - made
        out["ingest_passes"] = len(bridge.passes)
        out["max_unacked_at_cloud"] = bridge.max_unacked  # the broker's in-flight window to the cloud, all in use?
        out["messages_by_connection"] = list(bridge.by_link)
        out["load_1m"] = round(os.getloadavg()[0], 1)
        return out

    burst = alarms("burst", 0.0)
    spread = alarms("spread", args.spread_s)
    with sessions(engine)() as s:
        raised = int(s.scalar(select(func.count()).select_from(Alarm)) or 0)

    sent: dict[str, float] = {}

    def relay(lock_id: str) -> None:
        cmd = Command(lock_id, Action.UNLOCK, 1, datetime.now(UTC) + timedelta(seconds=300), "phone")
        payload = sign(cmd, phone).to_bytes()
        sent[lock_id] = time.monotonic()
        bridge.relay(lock_id, payload)

    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(relay, ids))
    wait(lambda: len(fleet.merged("verified", 1)) >= n, 120)
    verified = fleet.merged("verified", 1)
    command_ms = [(verified[i] - sent[i]) * 1000 for i in ids if i in verified]
    command = dict(stats(command_ms), load_1m=round(os.getloadavg()[0], 1))
    head = {"simulated_locks": n, "processes": args.procs, "workers_per_process": args.workers,
            "locks_nice": args.locks_nice,
            "switch_interval_s": sys.getswitchinterval(), "cloud_through_proxy": not args.cloud_direct,
            "bridge_workers": len(bridge._queues),
            "bridge_connections": len(bridge.links), "ingest_batch": bridge_module.BATCH,
            "receive_maximum": bridge.links[0].receive_maximum,
            "notifier": {"webhook_pass": notify.WEBHOOK_PASS, "webhook_parallel": notify.WEBHOOK_PARALLEL,
                         "apprise_coalesce_s": args.notifier.coalesce_s,
                         "apprise_parallel": T.CLOUD_APPRISE_PARALLEL},
            "connected": connected, "connect_all_s": round(connect_s, 1),
            "event_to_owner_alarm_burst": burst, "event_to_owner_alarm_spread": spread,
            "owner_alarms_committed": raised, "command_to_lock_verified": command}
    if args.skip_faults:  # tuning runs
        return dict(head, machine={"cpus": os.cpu_count(), "load_1m_before_after": load + [
            round(os.getloadavg()[0], 1)]})

    def exactly_once(label: str, down_s: float, extra: dict[str, Any]) -> dict[str, Any]:
        expected = sum(fleet.all("count"))
        rewound_before = [sum(x) for x in zip(*fleet.all("rewinds"), strict=True)]
        deadline, ticks = time.monotonic() + 300, 0
        # the locks' link loops go on: a head answer from the cloud (records the broker took but lost) is acted
        # on at the lock's next pass, every LINK_LOOP_PERIOD_S
        while not wait(lambda: held() >= expected, T.LINK_LOOP_PERIOD_S) and time.monotonic() < deadline:
            fleet.all("tick", 10.0)
            ticks += 1
        rewound = [sum(x) - b for x, b in zip(zip(*fleet.all("rewinds"), strict=True), rewound_before, strict=True)]
        with sessions(engine)() as s:
            distinct = int(s.scalar(select(func.count()).select_from(
                select(Record.lock_id, Record.idx).distinct().subquery())) or 0)
            now_alarms = int(s.scalar(select(func.count()).select_from(Alarm)) or 0)
            rules = {str(rule): int(k) for rule, k in s.execute(select(Alarm.rule, func.count()).where(~Alarm.rule.in_(
                ["lock:burst", "lock:spread"])).group_by(Alarm.rule)).all()}
        return {label: round(down_s, 1), **extra, "records_expected": expected, "records_held": held(),
                "lost": expected - held(), "duplicated": held() - distinct, "alarms_after": now_alarms - raised,
                "link_loop_passes_after_reconnect": ticks, "locks_rewound_by_cloud_head": rewound[0],
                "alarms_after_by_rule": rules}

    # broker restart while the locks are forwarding, records made during the outage
    busy = threading.Thread(target=fleet.all, args=("record", (3, 10.0)))
    busy.start()
    time.sleep(0.3)
    procs[0].terminate()
    procs[0].wait(10)
    down = time.monotonic()
    busy.join()
    fleet.all("record", (3, 2.0))
    time.sleep(max(0.0, args.outage_s - (time.monotonic() - down)))
    procs[0] = launch(broker)
    outage = time.monotonic() - down
    fleet.all("reconnect")  # the cloud reconnects by itself (CloudBridge's supervisor)
    restart = exactly_once("outage_s", outage, {"cloud_reconnected": wait(lambda: bridge.connected, 60)})

    # a partition: the proxy stops forwarding (nothing closed) while the locks keep recording and forwarding
    proxy.do("cut")
    cut = time.monotonic()
    rounds = 0
    noticed: list[float] = []

    def watch() -> None:
        if wait(lambda: not bridge.connected, args.partition_s):
            noticed.append(round(time.monotonic() - cut, 1))
    threading.Thread(target=watch, daemon=True).start()
    while time.monotonic() - cut < args.partition_s:
        fleet.all("record", (1, 2.0))
        rounds += 1
        time.sleep(max(0.0, min(5.0, args.partition_s - (time.monotonic() - cut))))
    cloud_noticed = noticed[0] if noticed else None
    at_heal = proxy.do("heal")
    partition_s = time.monotonic() - cut
    fleet.all("reconnect")
    partition = exactly_once("partition_s", partition_s, {
        "kind": "proxy stops forwarding (no close); connections reset at the heal", "recording_rounds": rounds,
        "cloud_noticed_after_s": cloud_noticed, "proxy_at_heal": at_heal,
        "cloud_reconnected": wait(lambda: bridge.connected, 60)})
    load.append(round(os.getloadavg()[0], 1))
    return {
        **head, "machine": {"cpus": os.cpu_count(), "load_1m_before_after": load},
        "broker_restart": restart, "partition": partition,
        "bridge_refused": bridge.refused.total,
        "webhook_failed_attempts": _failed_posts(engine),
    }


def _failed_posts(engine: Any) -> int:
    """Webhook POSTs that did not get a 2xx (each retried later): attempts beyond the first of each alarm."""
    with sessions(engine)() as s:
        return int(s.scalar(select(func.sum(Alarm.webhook_attempts) - func.count())) or 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--locks", type=int, default=100)
    ap.add_argument("--procs", type=int, default=0, help="lock processes (default: enough for the locks)")
    ap.add_argument("--workers", type=int, default=16, help="threads per lock process")
    ap.add_argument("--spread-s", type=float, default=10.0)
    ap.add_argument("--outage-s", type=float, default=10.0)
    ap.add_argument("--partition-s", type=float, default=600.0)
    ap.add_argument("--bridge-workers", type=int, help="default: the bridge's (WORKERS on PostgreSQL, 1 on SQLite)")
    ap.add_argument("--bridge-connections", type=int, help="the cloud's MQTT connections (default: "
                    "CLOUD_BRIDGE_CONNECTIONS)")
    ap.add_argument("--cloud-direct", action="store_true", help="tuning (with --skip-faults): the cloud connects to "
                    "the broker itself, not through the proxy process the locks use")
    ap.add_argument("--switch-interval", type=float, help="tuning: sys.setswitchinterval for the cloud's process "
                    "(the interpreter lock's hand-over; default CLOUD_SWITCH_INTERVAL_S, as limen-cloud serve)")
    ap.add_argument("--ingest-batch", type=int, help="tuning: the bridge's messages per pass at most")
    ap.add_argument("--receive-maximum", type=int, help="tuning: the cloud's MQTT Receive Maximum (0: none named, "
                    "Mosquitto's max_inflight_messages, 20)")
    ap.add_argument("--webhook-pass", type=int, help="tuning: the notifier's alarms per webhook pass")
    ap.add_argument("--webhook-parallel", type=int, help="tuning: the notifier's POSTs at a time")
    ap.add_argument("--locks-nice", type=int, default=0, help="the lock processes' niceness (the 1,000 simulated "
                    "devices share this machine's CPU with the cloud; in the field they are other machines)")
    ap.add_argument("--skip-faults", action="store_true", help="tuning: stop after the alarm and command phases")
    ap.add_argument("--apprise", action="store_true", help="the owner also has an apprise json:// channel")
    ap.add_argument("--apprise-coalesce-s", type=float, help="tuning: the owner's apprise coalescing window "
                    "(default CLOUD_APPRISE_COALESCE_S)")
    ap.add_argument("--db", help="the cloud's database URL (default: a SQLite file); postgresql+psycopg://…")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--times", help="also write every lock's stage times to TIMES-burst.json and TIMES-spread.json")
    args = ap.parse_args()
    args.schema = None
    sys.setswitchinterval(args.switch_interval or T.CLOUD_SWITCH_INTERVAL_S)  # as `limen-cloud serve` sets it
    args.procs = args.procs or -(-args.locks // 250)
    if -(-args.locks // args.procs) > MAX_LOCKS_PER_PROCESS:
        ap.error(f"at most {MAX_LOCKS_PER_PROCESS} locks per process (paho-mqtt's select()): raise --procs")
    logging.getLogger("limen_cloud").setLevel(logging.ERROR)  # one warning per alarm otherwise
    admin = None
    if args.db and args.db.startswith("postgresql"):  # a schema of its own, dropped after the run
        args.schema = f"limen_fleet_{os.getpid()}"
        admin = create_engine(args.db)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{args.schema}"'))
    try:
        with tempfile.TemporaryDirectory(prefix="limen-fleet-") as tmp:
            result = run(args, Path(tmp))
    finally:
        if admin is not None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{args.schema}" CASCADE'))
    result["database"] = "postgresql" if admin is not None else "sqlite"
    report = json.dumps(result, indent=2)
    print(report)
    if args.out:
        args.out.write_text(report + "\n")


if __name__ == "__main__":
    main()
