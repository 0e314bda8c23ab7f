"""The owner-signed statement a replacement mark needs (`limen_cloud.statements`), on SQLite and PostgreSQL.

Every statement that does not authorise replacing this lock now — unsigned, from a device not paired on it
(another device, another owner's, one unpaired or erased), signed by another key, for another lock, another
head, expired, too long, replayed — is refused with its reason and leaves the head, the records and the
archives as they were; through the API it is a 403 and an owner alarm.  A valid one archives the chain, which
still verifies, with the statement re-verified from the archive alone.  The restore onto the replacement lock
is owner-signed too: the lock refuses an unsigned one and one from a device paired only on the old lock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from limen.audit.chain import make_record
from limen.audit.event import Event, EventKind
from limen.config import load_settings
from limen.link.commands import SignedCommand
from limen.link.execute import erasure_receipt
from limen.link.forward import EventForwarder
from limen.runtime import open_runtime
from limen_cloud.api import create_app
from limen_cloud.backups import erase_in_cloud
from limen_cloud.cli import app as cloud_cli
from limen_cloud.db import sessions
from limen_cloud.evidence import ingest, mark_replaced, parse, verify_archive
from limen_cloud.models import Alarm, ArchivedChain, Lock, Owner, Record
from limen_cloud.statements import StatementRefusal, StatementRefused, paired_devices, recheck
from tests.cli.test_access_cli import OWNER_PIN, limen

from .test_api import PASSWORD, login
from .test_evidence import LOCK, Trail
from .test_pages import own_lock
from .test_replacement import DEVICE, NOW, PHONE, Lock2, Rig, pair, signed_for, statement

MALLORY_PHONE = Ed25519PrivateKey.generate()


@pytest.fixture
def rig(engine: Engine, tmp_path: Path) -> Iterator[Rig]:
    r = Rig(engine, tmp_path)
    yield r
    r.close()


def _sign_body(body: dict[str, Any], key: Ed25519PrivateKey = PHONE) -> str:
    """A statement with any body, signed as the phone would (for bodies the signing tool does not make)."""
    raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return SignedCommand(raw, key.sign(b"limen-owner-statement-v1\0" + raw)).to_bytes().decode()


def _other_lock(rig: Rig, lock_id: str, owner_email: str, device: str, key: Ed25519PrivateKey) -> tuple[int, str]:
    """Another lock in the same cloud (another owner's, or Olga's own second one) with `key` paired as
    `device`: its chain held by the cloud.  Returns (head count, head hash)."""
    trail = Trail()
    pair(trail, device, key)
    trail.add(3)
    with rig.sessions() as s, s.begin():
        owner = s.scalar(select(Owner).where(Owner.email == owner_email))
        if owner is None:
            owner = Owner(email=owner_email, password_hash="x", created_at=datetime(2026, 1, 1))
            s.add(owner)
            s.flush()
        s.add(Lock(lock_id=lock_id, owner_id=owner.id, name=lock_id, head_count=0, reported_count=0))
        s.flush()
        lock = s.get(Lock, lock_id)
        assert lock is not None
        ingest(s, lock, {"v": 1, "lock": lock_id, "records": trail.items, "start": 0,
                         "head": {"count": 4, "hash": trail.items[-1]["hash"]}}, NOW)
    return 4, str(trail.items[-1]["hash"])


Case = Callable[[Rig, Lock2, Lock], str]

CASES: dict[str, tuple[Case, StatementRefusal]] = {
    "not a statement": (lambda r, old, lk: "{not json", StatementRefusal.MALFORMED),
    "unsigned": (lambda r, old, lk: SignedCommand(json.loads(signed_for(lk))["body"].encode(), None)
                 .to_bytes().decode(), StatementRefusal.UNSIGNED),
    "another action": (lambda r, old, lk: _sign_body({
        **json.loads(json.loads(signed_for(lk))["body"]), "action": "unlock"}), StatementRefusal.WRONG_ACTION),
    "a device never paired on the lock": (lambda r, old, lk: signed_for(lk, device="olga-laptop"),
                                          StatementRefusal.UNKNOWN_DEVICE),
    "a key not paired, under the paired name": (lambda r, old, lk: signed_for(
        lk, key=Ed25519PrivateKey.generate()), StatementRefusal.BAD_SIGNATURE),
    "another owner's device": (lambda r, old, lk: (
        _other_lock(r, "back-door", "mallory@example.org", "mallory-phone", MALLORY_PHONE),
        signed_for(lk, key=MALLORY_PHONE, device="mallory-phone"))[1], StatementRefusal.UNKNOWN_DEVICE),
    "another owner's device under the owner's device name": (lambda r, old, lk: (
        _other_lock(r, "back-door", "mallory@example.org", DEVICE, MALLORY_PHONE),
        signed_for(lk, key=MALLORY_PHONE))[1], StatementRefusal.BAD_SIGNATURE),
    "re-targeted: signed for the owner's other lock": (lambda r, old, lk: statement(
        "back-door", *_other_lock(r, "back-door", "olga@example.org", DEVICE, PHONE), NOW),
        StatementRefusal.WRONG_LOCK),
    "stale head: fewer records": (lambda r, old, lk: statement(
        LOCK, lk.head_count - 1, old.trail.items[-2]["hash"], NOW), StatementRefusal.STALE_HEAD),
    "stale head: another last record": (lambda r, old, lk: statement(
        LOCK, lk.head_count, old.trail.items[-2]["hash"], NOW), StatementRefusal.STALE_HEAD),
    "expired": (lambda r, old, lk: signed_for(lk, at=NOW - timedelta(minutes=10)), StatementRefusal.EXPIRED),
    "valid for too long": (lambda r, old, lk: signed_for(lk, valid_s=3600), StatementRefusal.TOO_LONG),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_statement_that_does_not_authorise_this_replacement_is_refused_and_changes_nothing(
        rig: Rig, case: str) -> None:
    old = rig.hardware("old")
    old.add(5)
    old.connect()
    make, refusal = CASES[case]
    before = (rig.lock().head_count, rig.lock().head_hash, rig.held())
    wire = make(rig, old, rig.lock())
    with pytest.raises(StatementRefused) as refused:
        rig.mark(wire)
    assert refused.value.refusal == refusal
    lock = rig.lock()
    assert (lock.head_count, lock.head_hash, rig.held()) == before and before[0] == 6
    assert lock.replaced_at is None and lock.audit_keys is not None
    with rig.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ArchivedChain)) == 0
    assert rig.mark() > 0  # the owner's valid statement still works afterwards


@pytest.mark.parametrize("reason", ["link device removed", "person erased", "lock decommissioned"])
def test_a_device_unpaired_or_erased_on_the_lock_no_longer_signs_a_replacement(rig: Rig, reason: str) -> None:
    old = rig.hardware("old")
    old.add(3)
    if reason == "link device removed":
        pair(old.trail, reason=reason)
    else:  # the lock's own records (`LockEraser`): the person erased is the owner who paired the phone
        prev = old.trail.items[-1]["hash"]
        event = Event(EventKind.PRIVACY, datetime.now(UTC), actor="o2", source="privacy", reason=reason,
                      subject="o1" if reason == "person erased" else "lock", data={"paired_devices": 1})
        old.trail.items.append(make_record(event, len(old.trail.items), prev, datetime.now(UTC).isoformat()))
    old.connect()
    with pytest.raises(StatementRefused) as refused:
        rig.mark()
    assert refused.value.refusal is StatementRefusal.UNKNOWN_DEVICE and rig.lock().head_count == 5
    pair(old.trail, key=(again := Ed25519PrivateKey.generate()))  # paired again, in person
    old.connect()
    assert rig.mark(signed_for(rig.lock(), key=again)) > 0


def test_paired_devices_follow_the_lock_and_fail_closed_on_what_the_cloud_cannot_read() -> None:
    trail = Trail()
    pair(trail, "a", PHONE, owner="o1")
    pair(trail, "b", MALLORY_PHONE, owner="o2")
    bodies = [json.dumps(r) for r in trail.items]
    raw = PHONE.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert set(paired_devices(bodies)) == {"a", "b"} and paired_devices(bodies)["a"] == raw
    redacted = json.dumps({"index": 9, "hash": "0" * 64, "kind": "privacy", "at": "t", "redacted": True})
    assert set(paired_devices([*bodies, redacted])) == {"a", "b"}  # a person's own records: not an unpairing
    redacted = json.dumps({"index": 9, "hash": "0" * 64, "kind": "config_change", "at": "t", "redacted": True})
    assert paired_devices([*bodies, redacted]) == {}  # might have been one: fail closed
    keyless = json.loads(bodies[0])
    del keyless["data"]["public_key"]  # a pairing recorded before the key was: nothing the cloud can check
    assert set(paired_devices([*bodies, json.dumps(keyless)])) == {"b"}


def test_a_valid_statement_archives_the_chain_and_is_kept_re_verifiable_and_never_accepted_twice(rig: Rig) -> None:
    old = rig.hardware("old")
    old.add(5)
    old.connect()
    first = signed_for(rig.lock(), counter=7)
    chain_id = rig.mark(first)
    assert rig.check(chain_id) == (True, 6, 0) and rig.lock().head_count == 0
    with rig.sessions() as s:
        chain = s.get(ArchivedChain, chain_id)
        assert chain is not None
        assert (chain.statement, chain.signed_by, chain.statement_counter) == (first, DEVICE, 7)
        assert recheck(s, chain).verified and verify_archive(s, chain).verified
    with rig.sessions() as s, s.begin():  # the kept statement altered: it no longer verifies from the archive
        chain = s.get(ArchivedChain, chain_id)
        assert chain is not None
        chain.statement = first.replace('\\"counter\\":7', '\\"counter\\":8')
        assert chain.statement != first and not recheck(s, chain).verified
        chain.statement = first

    new = rig.hardware("new")  # the replacement: the owner paired the same phone on it in person
    new.add(3)
    new.connect()
    assert rig.lock().replaced_at is None and rig.lock().head_count == 4
    for replay in (first, signed_for(rig.lock(), counter=7)):  # the same statement, or its counter on this head
        with pytest.raises(StatementRefused) as refused:
            rig.mark(replay)
        assert refused.value.refusal is StatementRefusal.REPLAYED and rig.lock().head_count == 4
    assert rig.check(rig.mark(signed_for(rig.lock(), counter=8))) == (True, 4, 0)  # a later replacement, later counter


def test_an_erasure_after_the_mark_says_the_statement_can_no_longer_be_tied_to_the_chain(rig: Rig) -> None:
    old = rig.hardware("old")
    old.add(3)
    old.connect()
    chain_id = rig.mark()
    new = rig.hardware("new")
    new.add(1)
    new.connect()
    receipt = erasure_receipt(new.trail.key, LOCK, "o1", {"lock": {"person": 1}}, datetime.now(UTC), 2,
                              scope="person")  # the owner who paired the phone is erased
    with rig.sessions() as s, s.begin():
        lock = s.get(Lock, LOCK)
        assert lock is not None
        erase_in_cloud(s, lock, receipt, Ed25519PrivateKey.generate(), NOW)
    assert rig.check(chain_id) == (True, 4, 1)  # the chain still verifies
    with rig.sessions() as s:
        chain = s.get(ArchivedChain, chain_id)
        assert chain is not None
        found = recheck(s, chain)
    assert not found.verified and "erased since" in found.problem


def test_the_api_answers_a_refused_statement_403_with_its_reason_and_alarms_the_owner(engine: Engine) -> None:
    client = TestClient(create_app(engine, open_signup=True))
    olga = login(client, "olga@example.org")
    own_lock(engine, client, "olga@example.org", "front-door", "Front")
    trail = Trail()
    pair(trail)
    trail.add(4)
    with sessions(engine)() as s, s.begin():
        lock = s.get(Lock, "front-door")
        assert lock is not None
        ingest(s, lock, {"v": 1, "lock": "front-door", "records": trail.items, "start": 0,
                         "head": {"count": 5, "hash": trail.items[-1]["hash"]}}, NOW)
    url, head = "/api/locks/front-door/replaced", trail.items[-1]["hash"]
    now = datetime.now(UTC)
    for wire, refusal in ((statement("front-door", 5, head, now, key=MALLORY_PHONE), "bad_signature"),
                          (statement("front-door", 5, head, now - timedelta(hours=1)), "expired")):
        answer = client.post(url, json={"password": PASSWORD, "statement": wire}, headers=olga)
        assert answer.status_code == 403 and answer.json()["refusal"] == refusal, answer.text
    with sessions(engine)() as s:
        lock = s.get(Lock, "front-door")
        assert lock is not None and (lock.head_count, lock.head_hash, lock.replaced_at) == (5, head, None)
        assert s.scalar(select(func.count()).select_from(Record)) == 5
        assert list(s.scalars(select(Alarm.rule).where(Alarm.lock_id == "front-door").order_by(Alarm.id))) == [
            "lock_replace_refused", "lock_replace_refused"]
    done = client.post(url, json={"password": PASSWORD, "statement": statement("front-door", 5, head, now)},
                       headers=olga)
    assert done.status_code == 200 and done.json()["statement_verified"] is True


def test_end_to_end_the_lock_cli_pairs_the_phone_and_the_signing_tool_makes_the_statement(
        engine: Engine, tmp_path: Path) -> None:
    """`limen link pair-device` records the key, the lock forwards it, `limen-cloud sign-replacement` signs."""
    d, lock_id = tmp_path / "data", "limen-lock"
    phone = Ed25519PrivateKey.generate()
    (tmp_path / "phone.pub").write_bytes(phone.public_key().public_bytes(Encoding.PEM,
                                                                         PublicFormat.SubjectPublicKeyInfo))
    (tmp_path / "phone.key").write_bytes(phone.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    assert limen(d, "users", "add", "Olga", new_pin=OWNER_PIN).exit_code == 0
    paired = limen(d, "link", "pair-device", "olga-phone", "--public-key", str(tmp_path / "phone.pub"),
                   "--as", "Olga")
    assert paired.exit_code == 0, paired.output
    client = TestClient(create_app(engine, open_signup=True))
    olga = login(client, "olga@example.org")
    own_lock(engine, client, "olga@example.org", lock_id, "Front")

    def forward() -> dict[str, Any]:
        rt = open_runtime(load_settings(d))
        try:
            def publish(payload: bytes) -> None:
                with sessions(engine)() as s, s.begin():
                    lock = s.get(Lock, lock_id)
                    assert lock is not None
                    ingest(s, lock, parse(payload, lock_id), datetime.now(UTC).replace(tzinfo=None))
            EventForwarder(rt.audit, rt.connection(), lock_id).forward(publish)
        finally:
            rt.close()
        held = client.get("/api/locks", headers=olga).json()[0]
        assert held["records"] > 0
        return dict(held)

    def sign(held: dict[str, Any]) -> str:
        made = CliRunner().invoke(cloud_cli, [
            "sign-replacement", "--key", str(tmp_path / "phone.key"), "--device", "olga-phone", "--lock", lock_id,
            "--head-count", str(held["records"]), "--head-hash", held["head_hash"]])
        assert made.exit_code == 0, made.output
        return made.output.strip()

    url = f"/api/locks/{lock_id}/replaced"
    assert limen(d, "link", "unpair", "olga-phone", "--as", "Olga").exit_code == 0  # unpaired before the mark
    refused = client.post(url, json={"password": PASSWORD, "statement": sign(forward())}, headers=olga)
    assert refused.status_code == 403 and refused.json()["refusal"] == "unknown_device"
    assert limen(d, "link", "pair-device", "olga-phone", "--public-key", str(tmp_path / "phone.pub"),
                 "--as", "Olga").exit_code == 0
    held = forward()
    done = client.post(url, json={"password": PASSWORD, "statement": sign(held)}, headers=olga)
    assert done.status_code == 200, done.text
    assert (done.json()["records"], done.json()["head_hash"]) == (held["records"], held["head_hash"])
    assert done.json()["verified"] and done.json()["statement_verified"] and done.json()["signed_by"] == "olga-phone"


def test_statement_domain_differs_from_a_lock_command(rig: Rig) -> None:
    """A lock command signed by the phone cannot be passed off as a statement (and back): another domain."""
    old = rig.hardware("old")
    old.add(2)
    old.connect()
    body = json.loads(signed_for(rig.lock()))["body"].encode()
    as_command = SignedCommand(body, PHONE.sign(b"limen-command-v1\0" + body)).to_bytes().decode()
    with pytest.raises(StatementRefused) as refused:
        rig.mark(as_command)
    assert refused.value.refusal is StatementRefusal.BAD_SIGNATURE
    with rig.sessions() as s, s.begin():
        lock = s.get(Lock, LOCK)
        assert lock is not None
        assert mark_replaced(s, lock, rig.owner_id, NOW, signed_for(lock)).head_count == 3
