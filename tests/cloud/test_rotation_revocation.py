"""After a rotation the superseded certificate is revoked by the cloud itself (real Mosquitto, SQLite and
PostgreSQL): the lock's "link certificate rotated" record, forwarded with its trail, names a certificate the CA's
ledger gives that lock, so the cloud revokes the serial it replaced, writes the CA directory's list and CRL and
pushes the CRL to the broker (SIGHUP): the old key and certificate are refused from then on, the new one still gets
in.  A lock's word never revokes a certificate the ledger does not give that lock."""

from __future__ import annotations

import json
import logging
import shutil
import ssl
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from subprocess import Popen

import pytest
from cryptography import x509
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from limen.audit.chain import GENESIS, make_record
from limen.audit.event import Event, EventKind, MemoryAuditSink
from limen.db import open_db
from limen.errors import LinkError
from limen.link import pki
from limen.link.forward import EventForwarder
from limen.link.mqtt import LockLink, MqttLink
from limen_cloud.bridge import CloudBridge
from limen_cloud.cli import CaDirectory, _load, app
from limen_cloud.db import sessions
from limen_cloud.models import Lock
from tests.link.broker import CLOUD_ID, Broker, launch, prepare
from tests.link.conftest import LOCK_ID, build_rig

from .test_evidence import Trail


class ChainSink(MemoryAuditSink):
    """The lock's audit log as a chain its forwarder reads: every event the lock audits becomes a record."""

    def __init__(self) -> None:
        super().__init__()
        self.trail = Trail()

    def append(self, event: Event) -> int:
        items = self.trail.items
        items.append(make_record(event, len(items), items[-1]["hash"] if items else GENESIS, event.at.isoformat()))
        return super().append(event)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Broker, Popen[bytes]]]:
    (tmp_path / "broker").mkdir()
    broker = prepare(tmp_path / "broker")
    proc = launch(broker)
    try:
        yield broker, proc
    finally:
        proc.terminate()
        proc.wait(10)


def ca_directory(broker: Broker, d: Path) -> Path:
    """The broker's fleet CA as `limen-cloud ca init` keeps it (what `serve --ca-dir` reads)."""
    d.mkdir()
    pki.write_key(d / "ca.key", broker.ca.key)
    (d / "ca.pem").write_bytes(pki.pem(broker.ca.cert))
    (d / "revoked.json").write_text(json.dumps({str(k): v.isoformat() for k, v in broker.ca.revoked.items()}))
    (d / "crl.pem").write_bytes(broker.ca.crl(datetime.now(UTC)))
    return d


def provision(ca_dir: Path, d: Path, lock_id: str) -> pki.LinkFiles:
    """The lock makes its key and CSR; the operator signs it with `limen-cloud ca sign` (which enters the ledger)."""
    key = d / f"{lock_id}.key"
    (d / f"{lock_id}.csr").write_bytes(pki.make_csr(pki.new_key(key), lock_id))
    result = CliRunner().invoke(app, ["ca", "sign", str(ca_dir), str(d / f"{lock_id}.csr"), "--out",
                                      str(d / f"{lock_id}.pem")])
    assert result.exit_code == 0, result.output
    return pki.LinkFiles(ca_dir / "ca.pem", d / f"{lock_id}.pem", key)


def wait(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


REFUSALS: list[str] = []  # why each refused connection was refused, as the client was told


def connects(broker: Broker, cert: Path, key: Path) -> bool:
    try:
        MqttLink("lock-old", pki.client_context(broker.ca_file, cert, key), broker.host, broker.port).connect(5).close()
    except LinkError as exc:
        REFUSALS.append(str(exc))
        return False
    return True


def test_the_cloud_revokes_the_superseded_certificate_once_the_lock_installed_the_new_one(
        running: tuple[Broker, Popen[bytes]], engine: Engine, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "limen_cloud")
    broker, proc = running
    ca_dir = ca_directory(broker, tmp_path / "ca")
    pid = tmp_path / "mosquitto.pid"
    pid.write_text(str(proc.pid))
    audit = ChainSink()
    rig = build_rig(tmp_path, audit=audit)
    conn = open_db(tmp_path / "link.db")
    forwarder = EventForwarder(audit.trail, conn, LOCK_ID)
    (tmp_path / "lock").mkdir()
    files = provision(ca_dir, tmp_path / "lock", LOCK_ID)
    old_cert, old_key = tmp_path / "old.pem", tmp_path / "old.key"
    shutil.copy(files.cert, old_cert)
    shutil.copy(files.key, old_key)
    old = x509.load_pem_x509_certificate(files.cert.read_bytes())
    context = pki.client_context(files.ca, files.cert, files.key)
    bridge = CloudBridge(engine, pki.client_context(broker.ca_file, *broker.client(CLOUD_ID)), broker.host,
                         broker.port, ca=broker.ca, ledger=CaDirectory(ca_dir, broker.dir / "crl.pem", pid)
                         ).connect(5)
    link = LockLink(LOCK_ID, context, broker.host, broker.port, rig.link,
                    rotation=pki.Rotation(LOCK_ID, files, context)).connect(5)
    try:
        link.forward(forwarder)  # the cloud knows the lock from its trail
        assert wait(lambda: _head(engine) == audit.trail.count())
        assert link.rotate_if_due(datetime.now(UTC) + timedelta(days=70))  # (less than a third of 90 days left)
        assert wait(lambda: not files.pending_key.exists())  # issued, sent, installed
        new = x509.load_pem_x509_certificate(files.cert.read_bytes())
        assert new.serial_number != old.serial_number
        link.mqtt.maintain()  # the lock's next pass: reconnect with the new key …
        assert link.mqtt.connected
        assert connects(broker, old_cert, old_key)  # (not revoked yet: the lock has not said it installed it)
        link.forward(forwarder)  # … and forward its trail, with "link certificate rotated"
        assert wait(lambda: not connects(broker, old_cert, old_key), timeout=30)  # no one revoked it by hand
        link.mqtt.renew()
        link.mqtt.maintain()  # the rotated lock still gets in
        assert link.mqtt.connected
    finally:
        link.close()
        bridge.close()
        conn.close()
    assert {int(k) for k in json.loads((ca_dir / "revoked.json").read_text())} \
        == set(broker.ca.revoked) | {old.serial_number}
    crl = x509.load_pem_x509_crl((broker.dir / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(old.serial_number) is not None
    assert crl.get_revoked_certificate_by_serial_number(new.serial_number) is None
    ledger = json.loads((ca_dir / "issued.json").read_text())
    assert ledger == {f"{old.serial_number:x}": LOCK_ID, f"{new.serial_number:x}": LOCK_ID}
    said = [r.getMessage() for r in caplog.records]
    assert any(f"revoked {LOCK_ID}'s certificate {old.serial_number:x}, superseded by {new.serial_number:x}" in m
               for m in said)
    assert REFUSALS  # (paho reports "Unspecified error"; the TLS alert, certificate revoked, is only in its log)
    assert "certificate verify failed" in (broker.dir / "mosquitto.log").read_text()  # (Mosquitto says no more)


def _head(engine: Engine, lock_id: str = LOCK_ID) -> int | None:
    with sessions(engine)() as s:
        return s.scalar(select(Lock.head_count).where(Lock.lock_id == lock_id))


def _rotated(trail: Trail, old: int, new: int) -> None:
    i = len(trail.items)
    event = Event(EventKind.CONFIG_CHANGE, datetime.now(UTC), actor="cloud", subject="link",
                  reason="link certificate rotated", source="link",
                  data={"old_serial": f"{old:x}", "serial": f"{new:x}", "expires": "2030-01-01T00:00:00+00:00"})
    trail.items.append(make_record(event, i, trail.items[-1]["hash"] if trail.items else GENESIS, "t"))


class Ledger:
    """The CA's ledger in memory; revocations listed."""

    def __init__(self) -> None:
        self.holders: dict[int, str] = {}
        self.revoked: list[int] = []

    def record(self, cert: x509.Certificate) -> None:
        self.holders[cert.serial_number] = str(cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value)

    def holder(self, serial: int) -> str | None:
        return self.holders.get(serial)

    def revoke(self, serial: int, at: datetime) -> None:
        self.revoked.append(serial)


def test_a_locks_word_revokes_only_its_own_certificate_and_only_once(engine: Engine, tmp_path: Path) -> None:
    ca, ledger = pki.FleetCA.create("fleet", datetime.now(UTC)), Ledger()
    bridge = CloudBridge(engine, ssl.create_default_context(), "127.0.0.1", 1, ca=ca, ledger=ledger)
    trails = {name: Trail() for name in ("front", "back")}
    conns = {name: open_db(tmp_path / f"{name}.db") for name in trails}
    forwarders = {name: EventForwarder(trails[name], conns[name], name) for name in trails}

    def send(name: str) -> list[bytes]:
        out: list[bytes] = []
        forwarders[name].forward(out.append)
        bridge.process([(f"limen/{name}/events", p) for p in out])
        return out

    hand_made = {name: ca.issue(pki.make_csr(pki.new_key(), name), datetime.now(UTC)) for name in trails}
    for name in trails:
        ledger.record(hand_made[name])  # as `limen-cloud ca sign` enters it
        trails[name].add(2)
        send(name)
        bridge.issued.clear()
        bridge.received(f"limen/{name}/csr", pki.make_csr(pki.new_key(), name))  # (not sent: no broker here)
    issued = {name: next(s for s, h in ledger.holders.items() if h == name and s != hand_made[name].serial_number)
              for name in trails}
    back_old = hand_made["back"].serial_number
    _rotated(trails["front"], hand_made["front"].serial_number, 0x999)  # not a certificate it was issued
    _rotated(trails["front"], back_old, issued["front"])  # another lock's
    _rotated(trails["front"], 0xABCDEF, issued["front"])  # one the ledger does not hold
    _rotated(trails["front"], issued["back"], issued["front"])
    send("front")
    assert ledger.revoked == [] and _head(engine, "front") == 6
    _rotated(trails["back"], back_old, issued["back"])  # its own rotation: the old one is revoked …
    sent = send("back")
    for payload in sent:  # … once, however often the record comes
        bridge.process([("limen/back/events", payload)], [True])
    assert ledger.revoked == [back_old] and _head(engine, "back") == 3
    for c in conns.values():
        c.close()


def test_a_revocation_that_failed_is_tried_again(engine: Engine, tmp_path: Path) -> None:
    ca, ledger = pki.FleetCA.create("fleet", datetime.now(UTC)), Ledger()
    failures = [OSError("the CA directory is away")]

    def revoke(serial: int, at: datetime) -> None:
        if failures:
            raise failures.pop()
        ledger.revoked.append(serial)

    ledger.revoke = revoke  # type: ignore[method-assign]
    bridge = CloudBridge(engine, ssl.create_default_context(), "127.0.0.1", 1, ca=ca, ledger=ledger)
    trail, conn = Trail(), open_db(tmp_path / "front.db")
    forwarder = EventForwarder(trail, conn, "front")
    hand_made = ca.issue(pki.make_csr(pki.new_key(), "front"), datetime.now(UTC))
    ledger.record(hand_made)
    trail.add(1)
    out: list[bytes] = []
    forwarder.forward(out.append)
    bridge.process([("limen/front/events", p) for p in out])
    bridge.received("limen/front/csr", pki.make_csr(pki.new_key(), "front"))
    new = next(s for s in ledger.holders if s != hand_made.serial_number)
    _rotated(trail, hand_made.serial_number, new)
    out.clear()
    forwarder.forward(out.append)
    bridge.process([("limen/front/events", p) for p in out])
    assert ledger.revoked == [] and _head(engine, "front") == 2  # failed: the evidence is kept all the same
    bridge.retry_revocations()  # (the supervisor's next round)
    bridge.retry_revocations()
    assert ledger.revoked == [hand_made.serial_number]
    conn.close()


def test_certificates_signed_before_the_ledger_can_be_entered(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    assert CliRunner().invoke(app, ["ca", "init", str(ca_dir)]).exit_code == 0
    ours = CaDirectory(ca_dir)
    ca = _load(ca_dir)  # the CA as the directory holds it
    before = tmp_path / "front.pem"
    before.write_bytes(pki.pem(ca.issue(pki.make_csr(pki.new_key(), "front"), datetime.now(UTC))))
    foreign = tmp_path / "foreign.pem"
    other = pki.FleetCA.create("another CA", datetime.now(UTC))
    foreign.write_bytes(pki.pem(other.issue(pki.make_csr(pki.new_key(), "back"), datetime.now(UTC))))
    serial = x509.load_pem_x509_certificate(before.read_bytes()).serial_number
    assert ours.holder(serial) is None
    refused = CliRunner().invoke(app, ["ca", "enter", str(ca_dir), str(before), str(foreign)])
    assert refused.exit_code != 0 and ours.holder(serial) is None  # nothing entered
    assert CliRunner().invoke(app, ["ca", "enter", str(ca_dir), str(before)]).exit_code == 0
    assert ours.holder(serial) == "front"
