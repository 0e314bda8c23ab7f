"""Certificates rotate by themselves over the link (real Mosquitto + the cloud's CA), and a CRL push is obeyed."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from subprocess import Popen

import pytest
from sqlalchemy import Engine

from limen.audit.event import EventKind
from limen.errors import LinkError
from limen.link import pki
from limen.link.commands import Action
from limen.link.mqtt import LockLink, MqttLink, Topics
from limen_cloud.api import utcnow
from limen_cloud.bridge import CloudBridge
from limen_cloud.cli import push_crl
from limen_cloud.db import make_engine, sessions, upgrade
from limen_cloud.models import Lock

from .broker import CLOUD_ID, Broker, launch, prepare
from .conftest import LOCK_ID, LockRig


@dataclass
class Running:
    broker: Broker
    proc: Popen[bytes]


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    (tmp_path / "broker").mkdir()
    broker = prepare(tmp_path / "broker")
    proc = launch(broker)
    try:
        yield Running(broker, proc)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def cloud_db(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'cloud.db'}")
    upgrade(engine)
    with sessions(engine)() as s, s.begin():  # the lock has forwarded before: the cloud knows it
        s.add(Lock(lock_id=LOCK_ID, owner_id=None, name=LOCK_ID, head_count=0, reported_count=0, last_seen=utcnow()))
    yield engine
    engine.dispose()


def due_lock(broker: Broker) -> pki.LinkFiles:
    """A lock provisioned 25 days into a 30-day certificate: less than a third is left, rotation is due."""
    cert, key = broker.client(LOCK_ID, days=30, not_before=datetime.now(UTC) - timedelta(days=25))
    return pki.LinkFiles(broker.ca_file, cert, key)


def wait(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_due_certificate_rotates_over_the_link_and_the_old_one_can_be_revoked(
        running: Running, cloud_db: Engine, rig: LockRig, tmp_path: Path) -> None:
    broker = running.broker
    files = due_lock(broker)
    old_cert, old_key = tmp_path / "old.pem", tmp_path / "old.key"
    shutil.copy(files.cert, old_cert)
    shutil.copy(files.key, old_key)
    context = pki.client_context(files.ca, files.cert, files.key)
    rotation = pki.Rotation(LOCK_ID, files, context)
    old = rotation.current()
    assert rotation.due(datetime.now(UTC))
    ccert, ckey = broker.client(CLOUD_ID)
    bridge = CloudBridge(cloud_db, pki.client_context(broker.ca_file, ccert, ckey), broker.host, broker.port,
                         ca=broker.ca).connect(5)
    link = LockLink(LOCK_ID, context, broker.host, broker.port, rig.link, rotation=rotation).connect(5)
    rig.clock.at = rig.clock.at.now(rig.clock.at.tzinfo)
    try:
        time.sleep(0.3)
        assert link.rotate_if_due(datetime.now(UTC))
        assert not link.rotate_if_due(datetime.now(UTC))  # one request at a time
        assert wait(lambda: not files.pending_key.exists())
        new = rotation.current()
        assert new.serial_number != old.serial_number and new.public_key() != old.public_key()
        assert not rotation.due(datetime.now(UTC)) and pki.load_key(files.key).public_key() == new.public_key()
        link.mqtt.maintain()  # reconnects: the next handshake presents the new key
        assert link.mqtt.connected

        broker.ca.revoke(old, datetime.now(UTC))  # the old certificate is revoked and the CRL pushed
        pid = tmp_path / "mosquitto.pid"
        pid.write_text(str(running.proc.pid))
        push_crl(broker.ca.crl(datetime.now(UTC)), broker.dir / "crl.pem", pid)

        def old_refused() -> bool:  # Mosquitto reloads on SIGHUP in its own time (a fixed 0.5 s was a guess)
            try:
                MqttLink("lock-old", pki.client_context(files.ca, old_cert, old_key), broker.host, broker.port
                         ).connect(5).close()
            except LinkError:
                return True
            return False
        assert wait(old_refused, timeout=30)
        link.mqtt.renew()
        link.mqtt.maintain()  # the rotated lock still gets in after the reload
        assert link.mqtt.connected
        bridge.relay(LOCK_ID, rig.signed(Action.LOCK))
        assert wait(lambda: any(e.kind is EventKind.REMOTE_COMMAND and e.outcome == "executed"
                                for e in rig.sink.events))
    finally:
        link.close()
        bridge.close()
    reasons = [e.reason for e in rig.sink.events if e.kind is EventKind.CONFIG_CHANGE and e.subject == "link"]
    assert reasons == ["link certificate rotation requested", "link certificate rotated"]


def test_a_certificate_not_for_the_pending_key_or_not_from_the_fleet_ca_is_refused(
        running: Running, cloud_db: Engine, rig: LockRig) -> None:
    broker = running.broker
    files = due_lock(broker)
    context = pki.client_context(files.ca, files.cert, files.key)
    rotation = pki.Rotation(LOCK_ID, files, context)
    ccert, ckey = broker.client(CLOUD_ID)
    cloud = MqttLink(CLOUD_ID, pki.client_context(broker.ca_file, ccert, ckey), broker.host, broker.port).connect(5)
    link = LockLink(LOCK_ID, context, broker.host, broker.port, rig.link, rotation=rotation).connect(5)
    before = files.cert.read_bytes(), files.key.read_bytes()
    now = datetime.now(UTC)
    other_ca = pki.FleetCA.create("another CA", now)
    try:
        time.sleep(0.3)
        pending = rotation.request()
        other_key = pki.pem(broker.ca.issue(pki.make_csr(pki.new_key(), LOCK_ID), now))
        forged = pki.pem(other_ca.issue(pending, now))
        other_lock = pki.pem(broker.ca.issue(pki.make_csr(pki.load_key(files.pending_key), "back-door"), now))
        for payload in (other_key, forged, other_lock, b"not a certificate"):
            cloud.publish(Topics(LOCK_ID).cert, payload)
        assert wait(lambda: sum(e.reason == "link certificate refused" for e in rig.sink.events) == 4)
        assert link.mqtt.connected
    finally:
        link.close()
        cloud.close()
    assert (files.cert.read_bytes(), files.key.read_bytes()) == before and files.pending_key.exists()
    details = [e.data["detail"] for e in rig.sink.events if e.reason == "link certificate refused"]
    assert any("pending key" in d for d in details) and any("fleet CA" in d for d in details)
    assert any("another lock" in d for d in details)


def test_the_cloud_signs_only_a_known_locks_own_csr_and_not_twice_in_a_row(
        running: Running, cloud_db: Engine, tmp_path: Path) -> None:
    broker = running.broker
    ccert, ckey = broker.client(CLOUD_ID)
    bridge = CloudBridge(cloud_db, pki.client_context(broker.ca_file, ccert, ckey), broker.host, broker.port,
                         ca=broker.ca)
    key = pki.new_key()
    bridge.received(Topics(LOCK_ID).csr, pki.make_csr(key, "back-door"))
    bridge.received(Topics("unknown-lock").csr, pki.make_csr(key, "unknown-lock"))
    bridge.received(Topics(LOCK_ID).csr, b"garbage")
    assert len(bridge._outbox) == 0 and len(bridge.refused) == 3
    assert "another lock" in bridge.refused[0] and "never saw" in bridge.refused[1]
    bridge._outbox.clear()
    bridge.issued[LOCK_ID] = time.monotonic()
    bridge.received(Topics(LOCK_ID).csr, pki.make_csr(key, LOCK_ID))
    assert "moments ago" in bridge.refused[-1]
    without_ca = CloudBridge(cloud_db, pki.client_context(broker.ca_file, ccert, ckey), broker.host, broker.port)
    without_ca.received(Topics(LOCK_ID).csr, pki.make_csr(key, LOCK_ID))
    assert "no fleet CA" in without_ca.refused[-1]


def test_an_install_interrupted_between_certificate_and_key_is_completed_at_start(running: Running) -> None:
    files = due_lock(running.broker)
    rotation = pki.Rotation(LOCK_ID, files, pki.client_context(files.ca, files.cert, files.key))
    csr = rotation.request()
    assert not pki.finish_rotation(files)  # the certificate does not match the pending key yet
    files.cert.write_bytes(pki.pem(running.broker.ca.issue(csr, datetime.now(UTC))))  # "crash" here
    assert pki.finish_rotation(files) and not files.pending_key.exists()
    pki.client_context(files.ca, files.cert, files.key)  # certificate and key match again
