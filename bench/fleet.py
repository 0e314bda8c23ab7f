"""N SIMULATED locks on one limen-cloud instance over a private Mosquitto (TLS 1.3, mutual X.509).

Each simulated lock is one MQTT 5 client with its own certificate from the fleet CA (key made
"on the lock", CSR signed), a chained audit trail in memory (the lock's own chain functions),
the real `EventForwarder` and a real `CommandVerifier`; it has no door and no AccessController.
The locks live in --procs worker processes (paho-mqtt polls with select(), which stops at file
descriptor 1024: at most MAX_LOCKS_PER_PROCESS clients per process); the cloud is the real
`CloudBridge` on SQLite in the main process, with the real `AlarmNotifier` posting every alarm to
a community webhook on this machine.  Times are `time.monotonic()` (one clock for all processes).

  event → owner alarm   a lock forwards an ALARM record; until the cloud has committed the owner's alarm
                        row; and until the signed webhook POST of that alarm arrived at the receiver.
                        Two shapes: a burst (every lock at the same instant, the worst case) and a
                        spread (the same alarms spread evenly over --spread-s seconds)
  command → lock        the cloud relays a signed unlock; until the lock has verified it (signature, counter)
  broker restart        the broker is stopped for --outage-s while every lock keeps recording; after it
                        returns, every record reaches the cloud exactly once (lost / duplicated counts)
  partition             SIMULATED by closing every lock's and the cloud's connection (clean TCP close, not
                        dropped packets) for --partition-s while the locks keep recording; then the same count

    python bench/fleet.py --locks 1000 --procs 4 --out bench/results/fleet-1000.json

Needs mosquitto (apt) and the cloud extra.  Median and p95, load average printed beside them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing as mp
import os
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
from sqlalchemy import create_engine, func, select, text  # noqa: E402
from tests.link.broker import CLOUD_ID, launch, prepare  # noqa: E402

from limen.audit.chain import GENESIS, make_record  # noqa: E402
from limen.audit.event import Event, EventKind  # noqa: E402
from limen.errors import CommandRefused, LinkError  # noqa: E402
from limen.link import pki  # noqa: E402
from limen.link.commands import Action, Command, CommandVerifier, DeviceRegistry, SignedCommand, sign  # noqa: E402
from limen.link.forward import EventForwarder  # noqa: E402
from limen.link.mqtt import MqttLink, Topics  # noqa: E402
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


class SimLock:
    def __init__(self, lock_id: str, where: dict[str, Any], phone: Ed25519PublicKey) -> None:
        self.id = lock_id
        self.guard = threading.Lock()
        self.conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("CREATE TABLE schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        self.trail = Trail()
        self.forwarder = EventForwarder(self.trail, self.conn, lock_id)
        devices = DeviceRegistry(self.conn)
        devices.pair("phone", phone, "owner", "owner", T0)
        self.verifier = CommandVerifier(devices, lock_id)
        self.verified: dict[int, float] = {}
        d = Path(where["dir"])
        self.mqtt = MqttLink(lock_id, pki.client_context(d / "ca.pem", d / f"{lock_id}.pem", d / f"{lock_id}.key"),
                             where["host"], where["port"], subscriptions=(Topics(lock_id).cmd,),
                             on_message=self.command)

    def command(self, topic: str, payload: bytes) -> None:
        with self.guard:
            try:
                cmd, _ = self.verifier.verify(SignedCommand.from_bytes(payload), datetime.now(UTC))
            except CommandRefused:
                return
        self.verified[cmd.counter] = time.monotonic()

    def forward(self) -> None:
        with self.guard:
            self.forwarder.forward(lambda p: self.mqtt.publish(Topics(self.id).events, p))


class TimedBridge(CloudBridge):
    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.done: dict[str, float] = {}

    def process(self, messages: list[tuple[str, bytes]]) -> None:
        super().process(messages)  # committed
        now = time.monotonic()
        for topic, _ in messages:
            self.done[topic.split("/")[1]] = now


class Webhook:
    """The community webhook's receiver on this machine: when each (rule, lock) alarm arrived."""

    def __init__(self) -> None:
        self.arrived: dict[tuple[str, str], float] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                outer.arrived.setdefault((body["rule"], body["lock_id"]), time.monotonic())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.request_queue_size = 256  # the default backlog of 5 refuses parallel POSTs
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alarms"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------ the simulated locks' processes

def lock_process(pipe: Connection, ids: list[str], where: dict[str, Any], phone_raw: bytes, workers: int) -> None:
    """Runs in a worker process: the simulated locks of `ids`, driven by the main process over `pipe`."""
    logging.basicConfig(level=logging.ERROR)
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
    if op == "record":  # arg records each, then try to forward (fails quietly while offline)
        def record(lk: SimLock) -> None:
            for _ in range(arg):
                lk.trail.add()
            with contextlib.suppress(LinkError):
                lk.forward()
        list(pool.map(record, locks))
        return None
    if op == "alarm":  # arg = (reason, t0, spread_s): lock k raises its alarm at t0 + spread_s * k / n
        reason, t0, spread_s = arg
        started: dict[str, float] = {}

        def alarm(item: tuple[int, SimLock]) -> None:
            k, lk = item
            time.sleep(max(0.0, t0 + spread_s * k / len(locks) - time.monotonic()))
            lk.trail.add(EventKind.ALARM, reason)
            started[lk.id] = time.monotonic()
            lk.forward()
        list(pool.map(alarm, enumerate(locks)))
        return started
    if op == "verified":
        return {lk.id: lk.verified[arg] for lk in locks if arg in lk.verified}
    if op == "close":
        for lk in locks:
            lk.mqtt.close()
        return None
    if op == "reconnect":
        def again(lk: SimLock) -> None:
            lk.mqtt.connect(120)
            lk.forward()
        list(pool.map(again, locks))
        return None
    if op == "count":
        return sum(lk.trail.count() for lk in locks)
    raise ValueError(op)


class Fleet:
    """The worker processes, each with up to MAX_LOCKS_PER_PROCESS simulated locks."""

    def __init__(self, ids: list[str], procs: int, where: dict[str, Any], phone: bytes, workers: int) -> None:
        ctx = mp.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs = []
        for k in range(procs):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=lock_process, args=(theirs, ids[k::procs], where, phone, workers), daemon=True)
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
    broker = prepare(root)
    procs = [launch(broker)]
    try:
        return _run(args, root, broker, procs, load)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


def _run(args: argparse.Namespace, root: Path, broker: Any, procs: list[Any], load: list[float]) -> dict[str, Any]:
    n = args.locks
    engine = make_engine(args.db or f"sqlite:///{root / 'cloud.db'}", schema=args.schema)
    upgrade(engine)
    ids = [f"lock-{i:04d}" for i in range(n)]
    hook = Webhook()
    with sessions(engine)() as s, s.begin():
        owner = Owner(email="bench@example.org", password_hash="-", created_at=datetime(2026, 1, 1),
                      webhook_url=hook.url, webhook_secret="00" * 32)
        s.add(owner)
        s.flush()
        s.add_all(Lock(lock_id=i, owner_id=owner.id, name=i, head_count=0, reported_count=0) for i in ids)
    phone = Ed25519PrivateKey.generate()
    for i in ids:  # keys made "on the lock", CSR signed by the fleet CA
        broker.client(i)
    notifier = AlarmNotifier(engine, ("127.0.0.0/8",)).start()  # the bench receiver is local
    bridge = TimedBridge(engine, pki.client_context(broker.ca_file, *broker.client(CLOUD_ID)), broker.host,
                         broker.port, on_alarms=notifier.wake).connect()
    where = {"dir": str(broker.dir), "host": broker.host, "port": broker.port}
    fleet = Fleet(ids, args.procs, where, phone.public_key().public_bytes_raw(), args.workers)
    try:
        return _phases(args, n, ids, engine, broker, procs, load, hook, notifier, bridge, fleet, phone)
    finally:
        fleet.stop()
        bridge.close()
        notifier.stop()
        hook.close()


def _phases(args: argparse.Namespace, n: int, ids: list[str], engine: Any, broker: Any, procs: list[Any],
            load: list[float], hook: Webhook, notifier: AlarmNotifier, bridge: TimedBridge, fleet: Fleet,
            phone: Ed25519PrivateKey) -> dict[str, Any]:
    t = time.monotonic()
    connected = sum(fleet.all("connect"))
    connect_s = time.monotonic() - t
    fleet.all("record", 5)

    def held() -> int:
        with sessions(engine)() as s:
            return int(s.scalar(select(func.count()).select_from(Record)) or 0)

    wait(lambda: held() >= 5 * n, 120)  # the cloud has taken every earlier message

    def alarms(reason: str, spread_s: float) -> dict[str, Any]:
        bridge.done.clear()
        started = fleet.merged("alarm", (reason, time.monotonic() + 1.0, spread_s))
        wait(lambda: len(bridge.done) >= n, 120)
        wait(lambda: sum(k[0] == f"lock:{reason}" for k in hook.arrived) >= n, 180)
        committed = [(bridge.done[i] - started[i]) * 1000 for i in ids if i in bridge.done and i in started]
        posted = [(hook.arrived[(f"lock:{reason}", i)] - started[i]) * 1000 for i in ids
                  if (f"lock:{reason}", i) in hook.arrived and i in started]
        return {"spread_s": spread_s, "alarm_committed": stats(committed), "webhook_received": stats(posted),
                "load_1m": round(os.getloadavg()[0], 1)}

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

    def exactly_once(label: str, down_s: float) -> dict[str, Any]:
        expected = sum(fleet.all("count"))
        wait(lambda: held() >= expected, 180)
        with sessions(engine)() as s:
            distinct = int(s.scalar(select(func.count()).select_from(
                select(Record.lock_id, Record.idx).distinct().subquery())) or 0)
            now_alarms = int(s.scalar(select(func.count()).select_from(Alarm)) or 0)
        return {label: round(down_s, 1), "records_expected": expected, "records_held": held(),
                "lost": expected - held(), "duplicated": held() - distinct, "alarms_after": now_alarms - raised}

    # broker restart with records made during the outage
    procs[0].terminate()
    procs[0].wait(10)
    down = time.monotonic()
    fleet.all("record", 3)
    time.sleep(max(0.0, args.outage_s - (time.monotonic() - down)))
    procs[0] = launch(broker)
    outage = time.monotonic() - down
    bridge.connect(120)
    fleet.all("reconnect")
    restart = exactly_once("outage_s", outage)

    # a partition (simulated: every connection closed) while the locks keep recording
    fleet.all("close")
    bridge.mqtt.close()
    cut = time.monotonic()
    for _ in range(max(1, int(args.partition_s // 5))):
        fleet.all("record", 1)
        time.sleep(max(0.0, min(5.0, args.partition_s - (time.monotonic() - cut))))
    partition_s = time.monotonic() - cut
    bridge.connect(120)
    fleet.all("reconnect")
    partition = exactly_once("partition_s", partition_s)
    load.append(round(os.getloadavg()[0], 1))
    return {
        "simulated_locks": n, "processes": args.procs, "workers_per_process": args.workers,
        "machine": {"cpus": os.cpu_count(), "load_1m_before_after": load},
        "connected": connected, "connect_all_s": round(connect_s, 1),
        "event_to_owner_alarm_burst": burst, "event_to_owner_alarm_spread": spread, "owner_alarms_committed": raised,
        "command_to_lock_verified": stats(command_ms),
        "broker_restart": restart, "partition_simulated": partition,
        "bridge_refused": len(bridge.refused),
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
    ap.add_argument("--partition-s", type=float, default=60.0)
    ap.add_argument("--db", help="the cloud's database URL (default: a SQLite file); postgresql+psycopg://…")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    args.schema = None
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
