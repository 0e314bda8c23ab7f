"""The whole slice over a real Mosquitto: owner → cloud → lock → door, evidence back, a cut-back alarmed."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from limen.audit import open_audit
from limen.clock import FixedClock
from limen.config import load_settings
from limen.db import open_db
from limen.link import pki
from limen.link.commands import Action, Command, sign
from limen.link.forward import EventForwarder
from limen.link.mqtt import LockLink, MqttLink, Topics
from limen_cloud.api import create_app
from limen_cloud.bridge import CloudBridge
from limen_cloud.db import sessions
from limen_cloud.models import Alarm, Lock, Owner, Record
from tests.link.broker import CLOUD_ID, Broker, start_broker
from tests.link.conftest import LOCK_ID, build_rig

from .test_api import login
from .test_evidence import Trail


@pytest.fixture  # one per test: persistent MQTT sessions must not carry a message into the next test
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from start_broker(tmp_path_factory.mktemp("broker"))


def wait_for(probe: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_owner_cloud_lock_door_and_evidence(broker: Broker, engine: Engine, tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "data")
    audit = open_audit(settings)
    rig = build_rig(tmp_path, audit=audit, clock=FixedClock(datetime.now(UTC)))
    forwarder = EventForwarder(audit, rig.devices.conn, LOCK_ID)
    bridge = CloudBridge(engine, pki.client_context(broker.ca_file, *broker.client(CLOUD_ID)), broker.host,
                         broker.port).connect(timeout=5)
    lock = LockLink(LOCK_ID, pki.client_context(broker.ca_file, *broker.client(LOCK_ID)), broker.host, broker.port,
                    rig.link).connect(timeout=5)
    client = TestClient(create_app(engine, bridge.relay, open_signup=True))
    try:
        olga = login(client, "olga@example.org")
        code = forwarder.new_claim_code()  # shown on the lock (limen link claim-code)
        assert lock.forward(forwarder) > 0
        claim = {"lock_id": LOCK_ID, "name": "Front", "claim_code": code}

        def seen() -> bool:
            with sessions(engine)() as s:
                lock_row = s.get(Lock, LOCK_ID)
                return lock_row is not None and lock_row.claim_hash is not None

        wait_for(seen)  # the lock's first message reached the cloud
        assert client.post("/api/locks", json=claim, headers=olga).status_code == 201
        early = sqlite3.connect(":memory:")
        with sqlite3.connect(tmp_path / "data" / "audit.db") as live:
            live.backup(early)  # an intruder keeps a copy of audit.db from before the commands

        def command(counter: int, key: Ed25519PrivateKey) -> str:
            cmd = Command(LOCK_ID, Action.UNLOCK, counter, datetime.now(UTC) + timedelta(seconds=60), "phone")
            return sign(cmd, key).to_bytes().decode()

        for payload in (command(1, rig.phone), command(2, Ed25519PrivateKey.generate()), command(1, rig.phone)):
            assert client.post(f"/api/locks/{LOCK_ID}/commands", json={"payload": payload},
                               headers=olga).status_code == 202
        results = wait_for(lambda: [c["result"] for c in client.get(f"/api/locks/{LOCK_ID}/commands",
                                                                     headers=olga).json()
                                    if c["result"]][::-1][:3] if all(
            c["result"] for c in client.get(f"/api/locks/{LOCK_ID}/commands", headers=olga).json()) else None)
        assert [(r["executed"], r["reason"]) for r in results] == [(True, "granted"), (False, "bad_signature"),
                                                                   (False, "replayed")]
        rig.settle()
        assert not rig.door.is_locked

        sent = lock.forward(forwarder)
        assert sent >= 3
        events = wait_for(lambda: [e for e in client.get("/api/events?limit=500", headers=olga).json()
                                   if e["kind"] == "remote_command"])
        assert sorted(e["reason"] for e in events) == ["bad_signature", "replayed"]
        forged_alarm = wait_for(lambda: client.get("/api/alarms", headers=olga).json())  # the lock's anomaly rule
        assert [a["rule"] for a in forged_alarm] == ["lock:remote_unknown_source"]
        client.post(f"/api/alarms/{forged_alarm[0]['id']}/ack", headers=olga)

        with sqlite3.connect(tmp_path / "data" / "audit.db") as live:
            early.backup(live)  # … and puts it back: the local trail is rolled back, its own chain still verifies
        lock.forward(forwarder)
        alarms = wait_for(lambda: client.get("/api/alarms", headers=olga).json())
        assert [a["rule"] for a in alarms] == ["audit_truncated"]
        assert bridge.refused == []
    finally:
        lock.close()
        bridge.close()
        audit.close()
        rig.devices.conn.close()


def test_the_bridge_refuses_what_it_cannot_place(broker: Broker, engine: Engine) -> None:
    bridge = CloudBridge(engine, pki.client_context(broker.ca_file, *broker.client(CLOUD_ID)), broker.host,
                         broker.port)
    bridge.received("limen/never-seen/result", b'{"executed":true}')
    bridge.received("limen/x/events", b'{"v":1,"lock":"y","records":[],"head":{"count":0}}')
    bridge.received("limen/x/other", b"{}")
    bridge.received("elsewhere", b"{}")
    bridge.received("limen/x/events", b"x" * (2 << 20))
    assert bridge.refused == ["a result from a lock the cloud never saw",
                              "events from 'x': the message names another lock than the one that sent it",
                              "unknown topic",
                              "unknown topic", "oversized (2097152 bytes)"]


def test_what_locks_send_while_the_cloud_is_away_waits_at_the_broker(broker: Broker, engine: Engine,
                                                                      tmp_path: Path) -> None:

    with sessions(engine)() as s, s.begin():
        owner = Owner(email="olga@example.org", password_hash="-", created_at=datetime(2026, 1, 1))
        s.add(owner)
        s.flush()
        s.add(Lock(lock_id=LOCK_ID, owner_id=owner.id, name="Front", head_count=0, reported_count=0))
    cloud_ctx = pki.client_context(broker.ca_file, *broker.client(CLOUD_ID))
    CloudBridge(engine, cloud_ctx, broker.host, broker.port).connect(timeout=5).close()  # its session stays
    trail, conn = Trail(), open_db(tmp_path / "limen.db")
    lock = MqttLink(LOCK_ID, pki.client_context(broker.ca_file, *broker.client(LOCK_ID)), broker.host,
                    broker.port).connect(timeout=5)
    try:
        trail.add(450)
        EventForwarder(trail, conn, LOCK_ID).forward(lambda p: lock.publish(Topics(LOCK_ID).events, p))
        bridge = CloudBridge(engine, cloud_ctx, broker.host, broker.port).connect(timeout=5)

        def held() -> int:
            with sessions(engine)() as s:
                return int(s.scalar(select(func.count()).select_from(Record)) or 0)

        wait_for(lambda: held() == 450)
        bridge.close()
        with sessions(engine)() as s:
            assert s.scalars(select(Alarm.rule)).all() == []
    finally:
        lock.close()
        conn.close()
