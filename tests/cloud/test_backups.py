"""Backups, restore and erasure through the real path: lock → Mosquitto (TLS 1.3) → cloud (SQLite, PostgreSQL) → owner.

The cloud holds only ciphertext; a restore is relayed with its blob and checked by the lock; an erasure comes
back as one receipt whose lock part the lock signed and whose cloud part the cloud signed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from typer.testing import CliRunner

from limen import thresholds
from limen.audit.keys import public_b64
from limen.link import pki
from limen.link.backup import digest, restore_key, seal_backup, unwrap_key
from limen.link.commands import Action, SignedCommand
from limen.link.execute import seal_reply
from limen.link.forward import EventForwarder
from limen.link.mqtt import LockLink
from limen_cloud.api import create_app
from limen_cloud.backups import store_backup, verify_erasure
from limen_cloud.bridge import CloudBridge
from limen_cloud.cli import app as cli
from limen_cloud.db import sessions
from limen_cloud.models import Backup, CommandLog, Lock, Record
from tests.link.broker import CLOUD_ID, Broker, start_broker
from tests.link.test_backup import MAX_PIN, cheap_argon2, open_lock  # noqa: F401 - fixture
from tests.link.test_backup import Lock as LockRig

from .test_api import login
from .test_fleet import wait_for

LOCK_ID = "front-door"


@pytest.fixture  # one per test: persistent MQTT sessions must not carry a message into the next test
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from start_broker(tmp_path_factory.mktemp("broker"))


@dataclass
class Fleet:
    broker: Broker
    engine: Engine
    bridge: CloudBridge
    client: TestClient
    owner: dict[str, str]
    lock: LockRig
    link: LockLink

    def connect(self, lock: LockRig) -> LockLink:
        context = pki.client_context(self.broker.ca_file, *self.broker.client(lock.id))
        return LockLink(lock.id, context, self.broker.host, self.broker.port, lock.link).connect(timeout=5)

    def upload(self) -> dict[str, Any]:
        self.lock.backups.make(datetime.now(UTC))
        assert self.lock.backups.upload_pending(
            lambda blob: self.link.mqtt.publish(f"limen/{LOCK_ID}/backup", blob), datetime.now(UTC)) == 1
        return wait_for(lambda: (self.client.get(f"/api/locks/{LOCK_ID}/backups", headers=self.owner).json()
                                 or [None])[0])

    def send(self, signed: SignedCommand) -> dict[str, Any]:
        """Relay a signed command through the cloud and wait for the lock's outcome."""
        sent = self.client.post(f"/api/locks/{LOCK_ID}/commands", json={"payload": signed.to_bytes().decode()},
                                headers=self.owner)
        assert sent.status_code == 202, sent.text
        return self.result(sent.json()["id"])

    def result(self, command_id: int) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            with sessions(self.engine)() as s:
                row = s.get(CommandLog, command_id)
                return json.loads(row.result) if row is not None and row.result else None
        return wait_for(done)


@pytest.fixture
def fleet(broker: Broker, engine: Engine, tmp_path: Path) -> Iterator[Fleet]:
    lock = open_lock(tmp_path / "front", LOCK_ID, Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
    at = datetime.now(UTC)
    lock.rt.access().add_user("Max", lock.owner, at, pin=MAX_PIN)
    bridge = CloudBridge(engine, pki.client_context(broker.ca_file, *broker.client(CLOUD_ID)), broker.host,
                         broker.port, receipt_key=Ed25519PrivateKey.generate()).connect(timeout=5)
    client = TestClient(create_app(engine, bridge.relay, bridge.receipt_key.public_key(), open_signup=True))
    context = pki.client_context(broker.ca_file, *broker.client(LOCK_ID))
    link = LockLink(LOCK_ID, context, broker.host, broker.port, lock.link).connect(timeout=5)
    fleet = Fleet(broker, engine, bridge, client, login(client, "olga@example.org"), lock, link)
    try:
        forwarder = EventForwarder(lock.rt.audit, lock.rt.connection(), LOCK_ID)
        code = forwarder.new_claim_code()
        fleet.link.forward(forwarder)

        def seen() -> bool:
            with sessions(engine)() as s:
                row = s.get(Lock, LOCK_ID)
                return row is not None and row.claim_hash is not None
        wait_for(seen)
        claim = {"lock_id": LOCK_ID, "name": "Front", "claim_code": code}
        assert client.post("/api/locks", json=claim, headers=fleet.owner).status_code == 201
        yield fleet
    finally:
        fleet.link.close()
        bridge.close()
        lock.close()


ALL_TABLES = ("owners", "locks", "records", "alarms", "commands", "backups", "erasures")


def stored_bytes(engine: Engine, tables: tuple[str, ...] = ALL_TABLES) -> bytes:
    """Every value the cloud's database holds, as bytes (what someone with the database would read)."""
    out = bytearray()
    with engine.connect() as conn:
        for table in tables:
            for row in conn.execute(text(f"SELECT * FROM {table}")):  # noqa: S608 - fixed names
                for value in row:
                    out += value if isinstance(value, bytes) else str(value).encode()
                    out += b"\n"
    return bytes(out)


def test_the_cloud_stores_ciphertext_only_and_relays_a_restore_to_a_replacement_lock(
        fleet: Fleet, tmp_path: Path) -> None:
    listed = fleet.upload()
    assert listed["counter"] == 1 and listed["size"] > 0
    pin_hash = bytes(fleet.lock.rt.conn.execute(
        "SELECT secret FROM access_credentials WHERE cred_type = 'pin' ORDER BY cred_index DESC").fetchone()[0])
    held = stored_bytes(fleet.engine)
    for needle in (pin_hash, pin_hash.hex().encode(), base64.b64encode(pin_hash)):
        assert needle not in held
    for needle in (b"Max", b"Olga", fleet.lock.owner.encode(), b"access_credentials"):
        assert needle not in stored_bytes(fleet.engine, ("backups",))  # (the forwarded audit trail names people)
    blob = fleet.client.get(f"/api/locks/{LOCK_ID}/backups/{listed['id']}", headers=fleet.owner).content
    assert digest(blob) == listed["sha256"]

    fleet.lock.rt.store.zeroize()  # the lock is smashed; a replacement takes its id and certificate name
    fleet.link.close()
    fleet.lock.close()
    new = open_lock(tmp_path / "replacement", LOCK_ID, fleet.lock.phone, fleet.lock.phone_x)
    fleet.link = fleet.connect(new)
    try:
        _, content_key = unwrap_key(blob, fleet.lock.phone_x)  # on the owner's phone
        key = seal_reply(restore_key(new.rt.settings.keys_dir).public_key(), content_key)
        pinned = public_b64(fleet.lock.rt.audit.key.public)  # the old lock's audit key, as the phone pinned it
        signed = new.command(Action.RESTORE, backup=listed["sha256"], key=key, from_lock_key=pinned)

        forged = SignedCommand(signed.body, Ed25519PrivateKey.generate().sign(b"limen-command-v1\0" + signed.body))
        outcomes = [_restore(fleet, listed["id"], forged), _restore(fleet, listed["id"], signed),
                    _restore(fleet, listed["id"], signed)]
        assert [(o["executed"], o["reason"]) for o in outcomes] == [
            (False, "bad_signature"), (True, "done"), (False, "replayed")]
        assert new.users() == ["Max", "Olga"] and new.keypad(MAX_PIN)
        other = new.command(Action.RESTORE, backup="0" * 64, key=key)
        refused = fleet.client.post(f"/api/locks/{LOCK_ID}/restore", headers=fleet.owner,
                                    json={"backup_id": listed["id"], "payload": other.to_bytes().decode()})
        assert refused.status_code == 422  # the cloud relays a restore only with the blob it names
    finally:
        new.close()
        fleet.lock = new  # closed again by the fixture: a no-op on the replacement's connections


def _restore(fleet: Fleet, backup_id: int, signed: SignedCommand) -> dict[str, Any]:
    sent = fleet.client.post(f"/api/locks/{LOCK_ID}/restore", headers=fleet.owner,
                             json={"backup_id": backup_id, "payload": signed.to_bytes().decode()})
    assert sent.status_code == 202, sent.text
    return fleet.result(sent.json()["id"])


def test_an_unsigned_or_malformed_restore_is_refused_by_the_cloud_before_it_is_relayed(fleet: Fleet) -> None:
    listed = fleet.upload()
    signed = fleet.lock.command(Action.RESTORE, backup=listed["sha256"], key="sealed-key")
    no_key = fleet.lock.command(Action.RESTORE, backup=listed["sha256"])
    wire = json.loads(signed.to_bytes())
    cases = {
        "no signature": SignedCommand(signed.body, None).to_bytes().decode(),
        "not a signed command (malformed": "{not json",
        "not a signed command (malformed: unknown": json.dumps({**wire, "body": '{"v": 9}'}),
        "not an Ed25519 signature (3 bytes": SignedCommand(signed.body, b"abc").to_bytes().decode(),
        "carries an attachment": signed.attach(b"x").to_bytes().decode(),
        "not unlock": fleet.lock.command(Action.UNLOCK).to_bytes().decode(),
        "names another lock": fleet.lock.command(Action.RESTORE, lock="back-door", backup=listed["sha256"],
                                                 key="k").to_bytes().decode(),
        "naming this backup's SHA-256": fleet.lock.command(Action.RESTORE, backup="0" * 64,
                                                           key="k").to_bytes().decode(),
        "no content key": no_key.to_bytes().decode(),
    }
    for reason, payload in cases.items():
        answer = fleet.client.post(f"/api/locks/{LOCK_ID}/restore", headers=fleet.owner,
                                   json={"backup_id": listed["id"], "payload": payload})
        assert answer.status_code == 422 and reason in answer.json()["detail"], (reason, answer.text)
    with sessions(fleet.engine)() as s:
        assert s.scalars(select(CommandLog)).all() == []  # nothing relayed, nothing logged as sent
    assert fleet.lock.users() == ["Max", "Olga"]
    relayed = _restore(fleet, listed["id"], signed)  # the well-formed one goes to the lock, which judges the key
    assert not relayed["executed"] and "not sealed to this lock's restore key" in relayed["reason"]


def test_a_backup_of_another_lock_is_refused_by_the_cloud(fleet: Fleet) -> None:
    fleet.lock.backups.make(datetime.now(UTC))
    path = fleet.lock.backups.pending_uploads()[0][1]
    with sessions(fleet.engine)() as s, s.begin():
        s.add(Lock(lock_id="back-door", owner_id=None, name="back-door", head_count=0, reported_count=0))
    before = len(fleet.bridge.refused)
    fleet.bridge.received("limen/back-door/backup", path.read_bytes())
    fleet.bridge.received("limen/front-door/backup", b"LIMENBAK" + b"\x02" + b"\x00" * 10)
    fleet.bridge.received("limen/front-door/backup", b"\0" * (thresholds.LINK_MAX_BACKUP_BYTES + 1))
    fleet.bridge.received("limen/nobody/backup", path.read_bytes())
    assert fleet.bridge.refused[before:] == ["a backup of lock 'front-door' sent by 'back-door'", "truncated",
                                             f"oversized ({thresholds.LINK_MAX_BACKUP_BYTES + 1} bytes)",
                                             "a backup from a lock the cloud never saw"]
    with sessions(fleet.engine)() as s:
        assert s.scalars(select(Backup)).all() == []
    recipients = fleet.lock.backups.recipients()
    first = seal_backup(b"one", LOCK_ID, 5, datetime.now(UTC), recipients, fleet.lock.rt.audit.key)
    second = seal_backup(b"two", LOCK_ID, 5, datetime.now(UTC), recipients, fleet.lock.rt.audit.key)  # other contents
    fleet.bridge.received(f"limen/{LOCK_ID}/backup", first)
    fleet.bridge.received(f"limen/{LOCK_ID}/backup", first)  # a redelivery: idempotent
    fleet.bridge.received(f"limen/{LOCK_ID}/backup", second)
    assert fleet.bridge.refused[-1] == "a different backup with counter 5 is already held"
    with sessions(fleet.engine)() as s:
        assert [b.sha256 for b in s.scalars(select(Backup))] == [digest(first)]
        with pytest.raises(Exception, match="another lock|sent by"):
            store_backup(s, s.get(Lock, "back-door"), path.read_bytes(), datetime.now(UTC))  # type: ignore[arg-type]


def test_delete_me_and_decommission_erase_lock_and_cloud_with_one_signed_receipt(fleet: Fleet, tmp_path: Path) -> None:
    max_id = fleet.lock.rt.access().user("Max").user_id
    fleet.lock.rt.controller.keypad(MAX_PIN)  # Max's own audit records, forwarded
    fleet.link.forward(EventForwarder(fleet.lock.rt.audit, fleet.lock.rt.connection(), LOCK_ID))
    fleet.upload()
    export = fleet.client.get(f"/api/locks/{LOCK_ID}/people/{max_id}", headers=fleet.owner).json()
    assert export["records"] and export["backups"]["count"] == 1

    outcome = fleet.send(fleet.lock.command(Action.ERASE, user="Max", scope="person"))
    assert outcome["executed"], outcome
    receipts = wait_for(lambda: fleet.client.get("/api/erasures", headers=fleet.owner).json())
    cloud_key = fleet.bridge.receipt_key.public_key()
    erased = verify_erasure(receipts[0]["receipt"], fleet.lock.rt.audit.key.public, cloud_key)
    assert erased["user"] == max_id and erased["scope"] == "person"
    assert erased["lock"]["person"] == 1 and erased["lock"]["local_backups"] == 1
    assert erased["cloud"]["records_redacted"] >= 1 and erased["cloud"]["backups"] == 1
    assert outcome["data"]["fresh_backup"] == "2"  # made on the lock without Max; the cloud keeps it
    fleet.lock.backups.upload_pending(lambda blob: fleet.link.mqtt.publish(f"limen/{LOCK_ID}/backup", blob),
                                      datetime.now(UTC))
    assert wait_for(lambda: [b["counter"] for b in fleet.client.get(f"/api/locks/{LOCK_ID}/backups",
                                                                    headers=fleet.owner).json()]) == [2]
    with sessions(fleet.engine)() as s:
        payloads = "".join(s.scalars(select(CommandLog.payload)).all()).encode()
    for needle in (max_id.encode(), b"Max"):  # records redacted, backups gone, the erase command's args too
        assert needle not in stored_bytes(fleet.engine, ("records", "backups")) and needle not in payloads
    assert fleet.client.get(f"/api/locks/{LOCK_ID}/people/{max_id}", headers=fleet.owner).json()["records"] == []
    forged = json.loads(receipts[0]["receipt"])
    forged["cloud"]["erased"]["backups"] = 0
    with pytest.raises(Exception, match="signature"):
        verify_erasure(json.dumps(forged), fleet.lock.rt.audit.key.public, fleet.bridge.receipt_key.public_key())
    with pytest.raises(Exception, match="signature"):
        verify_erasure(receipts[0]["receipt"], fleet.lock.rt.audit.key.public,
                       Ed25519PrivateKey.generate().public_key())
    keys = ["--lock-key", public_b64(fleet.lock.rt.audit.key.public),
            "--cloud-key", fleet.client.get("/api/receipt-key").json()["public_key"]]
    (tmp_path / "entry.json").write_text(json.dumps(receipts[0]))  # as GET /api/erasures gave it
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    checked = CliRunner().invoke(cli, ["verify-erasure", str(tmp_path / "entry.json"), *keys])
    assert checked.exit_code == 0 and json.loads(checked.stdout) == erased, checked.output
    refused = CliRunner().invoke(cli, ["verify-erasure", str(tmp_path / "forged.json"), *keys])
    assert refused.exit_code == 1 and "signature does not verify" in refused.stderr

    decommission = fleet.lock.command(Action.DECOMMISSION).to_bytes().decode()
    assert fleet.client.post(f"/api/locks/{LOCK_ID}/commands", json={"payload": decommission},
                             headers=fleet.owner).status_code == 202  # its log goes with the lock: wait for the receipt
    receipts = wait_for(lambda: [r for r in fleet.client.get("/api/erasures", headers=fleet.owner).json()
                                 if r["scope"] == "lock"])
    erased = verify_erasure(receipts[0]["receipt"], fleet.lock.rt.audit.key.public,
                            fleet.bridge.receipt_key.public_key())
    assert erased["lock"]["people"] == 1 and erased["cloud"]["lock"] == 1 and erased["cloud"]["records"] >= 1
    with sessions(fleet.engine)() as s:
        assert s.get(Lock, LOCK_ID) is None
        assert s.scalars(select(Record).where(Record.lock_id == LOCK_ID)).all() == []
    assert fleet.client.get("/api/locks", headers=fleet.owner).json() == []
