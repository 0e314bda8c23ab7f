"""N SIMULATED locks on one limen-cloud instance over a private Mosquitto (TLS 1.3, mutual X.509).

Each simulated lock is one MQTT 5 client with its own certificate from the fleet CA (key made
"on the lock", CSR signed), a chained audit trail in memory (the lock's own chain functions),
the real `EventForwarder` and a real `CommandVerifier`; it has no door and no AccessController.
The cloud is the real `CloudBridge` on SQLite.  Measured, all in one process on this machine:

  event → owner alarm   a lock forwards an ALARM record; until the cloud has committed the owner's alarm row
                        (fan-out to phones — apprise, web push — is planned, not measured)
  command → lock        the cloud relays a signed unlock; until the lock has verified it (signature, counter)
  broker restart        the broker is stopped for --outage-s while every lock keeps recording; after it
                        returns, every record reaches the cloud exactly once (lost / duplicated counts)

    python bench/fleet.py --locks 200 --out bench/results/fleet.json

Needs mosquitto (apt) and the cloud extra.  Median and p95, load average printed beside them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sqlite3
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.link.broker: the same private broker

from bench.benchstats import pct  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
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

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MAX_LOCKS_PER_PROCESS = 300


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
    def __init__(self, lock_id: str, broker: Any, phone: Ed25519PrivateKey) -> None:
        self.id = lock_id
        self.guard = threading.Lock()
        self.conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("CREATE TABLE schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        self.trail = Trail()
        self.forwarder = EventForwarder(self.trail, self.conn, lock_id)
        devices = DeviceRegistry(self.conn)
        devices.pair("phone", phone.public_key(), "owner", "owner", T0)
        self.verifier = CommandVerifier(devices, lock_id)
        self.verified: dict[int, float] = {}
        cert, key = broker.client(lock_id)
        self.mqtt = MqttLink(lock_id, pki.client_context(broker.ca_file, cert, key), broker.host, broker.port,
                             subscriptions=(Topics(lock_id).cmd,), on_message=self.command)

    def command(self, topic: str, payload: bytes) -> None:
        with self.guard:
            try:
                cmd, _ = self.verifier.verify(SignedCommand.from_bytes(payload), datetime.now(UTC))
            except CommandRefused:
                return
        self.verified[cmd.counter] = time.perf_counter()

    def forward(self) -> None:
        with self.guard:
            self.forwarder.forward(lambda p: self.mqtt.publish(Topics(self.id).events, p))


class TimedBridge(CloudBridge):
    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.done: dict[str, float] = {}

    def process(self, messages: list[tuple[str, bytes]]) -> None:
        super().process(messages)  # committed
        now = time.perf_counter()
        for topic, _ in messages:
            self.done[topic.split("/")[1]] = now


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


def run(n: int, workers: int, outage_s: float, root: Path) -> dict[str, Any]:
    load = [round(os.getloadavg()[0], 1)]
    broker = prepare(root)
    procs = [launch(broker)]
    try:
        return _run(n, workers, outage_s, root, broker, procs, load)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


def _run(n: int, workers: int, outage_s: float, root: Path, broker: Any, procs: list[Any],
         load: list[float]) -> dict[str, Any]:
    engine = make_engine(f"sqlite:///{root / 'cloud.db'}")
    upgrade(engine)
    ids = [f"lock-{i:04d}" for i in range(n)]
    with sessions(engine)() as s, s.begin():
        owner = Owner(email="bench@example.org", password_hash="-", created_at=datetime(2026, 1, 1))
        s.add(owner)
        s.flush()
        s.add_all(Lock(lock_id=i, owner_id=owner.id, name=i, head_count=0, reported_count=0) for i in ids)
    phone = Ed25519PrivateKey.generate()
    bridge = TimedBridge(engine, pki.client_context(broker.ca_file, *broker.client(CLOUD_ID)), broker.host,
                         broker.port).connect()
    t = time.perf_counter()
    locks = [SimLock(i, broker, phone) for i in ids]
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda lk: lk.mqtt.connect(120), locks))
    connect_s = time.perf_counter() - t
    for lk in locks:
        for _ in range(5):
            lk.trail.add()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda lk: lk.forward(), locks))

    def held() -> int:
        with sessions(engine)() as s:
            return int(s.scalar(select(func.count()).select_from(Record)) or 0)

    wait(lambda: held() >= 5 * n, 60)  # the cloud has taken every earlier message

    # event → owner alarm
    started: dict[str, float] = {}

    def alarm(lk: SimLock) -> None:
        lk.trail.add(EventKind.ALARM, "door_forced")
        started[lk.id] = time.perf_counter()
        lk.forward()

    bridge.done.clear()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(alarm, locks))
    wait(lambda: len(bridge.done) >= n, 60)
    time.sleep(0.5)  # let the bridge finish the last commit before counting
    alarm_ms = [(bridge.done[i] - started[i]) * 1000 for i in ids if i in bridge.done]
    with sessions(engine)() as s:
        alarms = int(s.scalar(select(func.count()).select_from(Alarm)) or 0)

    # command → lock
    sent: dict[str, float] = {}

    def relay(lk: SimLock) -> None:
        cmd = Command(lk.id, Action.UNLOCK, 1, datetime.now(UTC) + timedelta(seconds=120), "phone")
        payload = sign(cmd, phone).to_bytes()
        sent[lk.id] = time.perf_counter()
        bridge.relay(lk.id, payload)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(relay, locks))
    wait(lambda: all(1 in lk.verified for lk in locks), 60)
    command_ms = [(lk.verified[1] - sent[lk.id]) * 1000 for lk in locks if 1 in lk.verified]

    # broker restart with records made during the outage
    procs[0].terminate()
    procs[0].wait(10)
    down = time.perf_counter()
    for lk in locks:
        for _ in range(3):
            lk.trail.add()
        with contextlib.suppress(LinkError):  # broker down: the cursor stays where the broker last acknowledged
            lk.forward()
    time.sleep(max(0.0, outage_s - (time.perf_counter() - down)))
    procs[0] = launch(broker)
    outage = time.perf_counter() - down
    bridge.connect(120)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda lk: lk.mqtt.connect(120), locks))
        list(pool.map(lambda lk: lk.forward(), locks))
    expected = sum(lk.trail.count() for lk in locks)
    wait(lambda: held() >= expected, 60)
    with sessions(engine)() as s:
        distinct = int(s.scalar(select(func.count()).select_from(select(Record.lock_id, Record.idx).distinct()
                                                                  .subquery())) or 0)
        pending = int(s.scalar(select(func.count()).select_from(Alarm)) or 0)
    for lk in locks:
        lk.mqtt.close()
    bridge.close()
    load.append(round(os.getloadavg()[0], 1))
    return {
        "simulated_locks": n, "workers": workers, "machine": {"cpus": os.cpu_count(), "load_1m_before_after": load},
        "connect_all_s": round(connect_s, 1),
        "event_to_owner_alarm": stats(alarm_ms), "owner_alarms_committed": alarms,
        "command_to_lock_verified": stats(command_ms),
        "broker_restart": {"outage_s": round(outage, 1), "records_expected": expected, "records_held": held(),
                           "lost": expected - held(), "duplicated": held() - distinct,
                           "alarms_after": pending - alarms},
        "bridge_refused": len(bridge.refused),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--locks", type=int, default=100)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--outage-s", type=float, default=10.0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.locks > MAX_LOCKS_PER_PROCESS:
        ap.error(f"--locks at most {MAX_LOCKS_PER_PROCESS}: paho-mqtt polls with select(), limited to 1024 file "
                 "descriptors per process (3 per client); more locks need several processes (not built yet)")
    logging.getLogger("limen_cloud").setLevel(logging.ERROR)  # one warning per alarm otherwise
    with tempfile.TemporaryDirectory(prefix="limen-fleet-") as tmp:
        result = run(args.locks, args.workers, args.outage_s, Path(tmp))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
