"""A lock replaced under its id: only the owner's stepped-up mark, with a statement signed on a device paired on
the lock, makes the cloud archive the old chain (still verifiable) and take the new one from its first record;
without it, the new chain is alarmed as a cut-back.  (The statement's refusals: `test_replace_statement.py`.)"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text

from limen.audit.chain import GENESIS, make_record
from limen.audit.event import Event, EventKind
from limen.db import open_db
from limen.link.execute import erasure_receipt
from limen.link.forward import EventForwarder
from limen_cloud.api import create_app
from limen_cloud.backups import erase_in_cloud, verify_erasure
from limen_cloud.db import sessions
from limen_cloud.evidence import NotReplaceable, ingest, mark_replaced, parse, verify_archive
from limen_cloud.models import Alarm, ArchivedChain, ArchivedRecord, Lock, Owner, Record
from limen_cloud.statements import ReplaceStatement, sign

from .test_api import PASSWORD, login
from .test_evidence import LOCK, Trail
from .test_pages import ORIGIN, browser, csrf_of, log_in, own_lock, sign_up

NOW = datetime(2026, 3, 3, 12, 0)  # the cloud's clock in the rig (naive UTC, as its columns)
PHONE = Ed25519PrivateKey.generate()  # the owner's phone, paired in person on each lock
DEVICE = "olga-phone"


def pair(trail: Trail, name: str = DEVICE, key: Ed25519PrivateKey = PHONE, owner: str = "o1",
         reason: str = "link device paired") -> None:
    """The record `limen link pair-device` (or `unpair`, with its reason) appends, in `trail`."""
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    data = {"device": name, "public_key": base64.b64encode(raw).decode()} if reason == "link device paired" \
        else {"device": name}
    at = datetime.now(UTC)  # (each lock's pairing is its own record: a replacement's record 0 is not the old one's)
    event = Event(EventKind.CONFIG_CHANGE, at, actor=owner, subject=f"device:{name}", reason=reason, source="cli",
                  data=data)
    trail.items.append(make_record(event, len(trail.items), trail.items[-1]["hash"] if trail.items else GENESIS,
                                   at.isoformat()))


def statement(lock_id: str, count: int, head_hash: str | None, at: datetime, *, key: Ed25519PrivateKey = PHONE,
              device: str = DEVICE, counter: int = 1, valid_s: int = 120) -> str:
    """What the owner's phone signs (`limen-cloud sign-replacement`): replace `lock_id` at this head."""
    expires = (at if at.tzinfo else at.replace(tzinfo=UTC)) + timedelta(seconds=valid_s)
    return sign(ReplaceStatement(lock_id, count, head_hash, counter, expires, device), key)


def signed_for(lock: Lock, at: datetime = NOW, **kwargs: object) -> str:
    """A valid statement for `lock` at the head it holds now."""
    return statement(lock.lock_id, lock.head_count, lock.head_hash, at, **kwargs)  # type: ignore[arg-type]


class Lock2:
    """One lock's hardware: its own trail (own audit key) and forward cursor, talking to the cloud in `rig`; the
    owner paired their phone on it first (record 0)."""

    def __init__(self, rig: Rig, tmp: Path, reason: str) -> None:
        self.rig, self.trail, self.reason = rig, Trail(), reason
        pair(self.trail)
        self.conn = open_db(tmp / "limen.db")
        self.forwarder = EventForwarder(self.trail, self.conn, LOCK)

    def add(self, n: int) -> None:
        self.trail.add(n, reason=self.reason)  # each lock's own events: its records differ from the other's

    def connect(self) -> int:
        """Forward as `limen link run` does, applying the head the cloud answers (`limen/<id>/head`)."""
        sent = self.forwarder.forward(self.rig.publish)
        if self.rig.resend is not None and self.forwarder.rewind(self.rig.resend):
            self.rig.resend = None
            sent += self.forwarder.forward(self.rig.publish)
        return sent


class Rig:
    def __init__(self, engine: Engine, tmp: Path) -> None:
        self.engine, self.tmp = engine, tmp
        self.sessions = sessions(engine)
        with self.sessions() as s, s.begin():
            owner = Owner(email="olga@example.org", password_hash="x", created_at=datetime(2026, 1, 1))
            s.add(owner)
            s.flush()
            self.owner_id = owner.id
            s.add(Lock(lock_id=LOCK, owner_id=owner.id, name="Front", head_count=0, reported_count=0))
        self.resend: int | None = None
        self.locks: list[Lock2] = []

    def close(self) -> None:
        """Close every simulated lock's database (the `rig` fixtures' teardown)."""
        for hw in self.locks:
            hw.conn.close()

    def hardware(self, name: str) -> Lock2:
        (self.tmp / name).mkdir()
        self.locks.append(Lock2(self, self.tmp / name, f"granted on the {name} lock"))
        return self.locks[-1]

    def publish(self, payload: bytes) -> None:
        with self.sessions() as s, s.begin():
            lock = s.get(Lock, LOCK)
            assert lock is not None
            result = ingest(s, lock, parse(payload, LOCK), NOW)
            if result.resend_from is not None:
                self.resend = result.resend_from

    def lock(self) -> Lock:
        with self.sessions() as s:
            found = s.get(Lock, LOCK)
            assert found is not None
            return found

    def held(self) -> list[str]:
        with self.sessions() as s:
            return list(s.scalars(select(Record.hash).where(Record.lock_id == LOCK).order_by(Record.idx)))

    def pending(self) -> list[str]:
        with self.sessions() as s:
            return sorted(s.scalars(select(Alarm.rule).where(Alarm.acknowledged_at.is_(None))))

    def acknowledge(self) -> None:
        with self.sessions() as s, s.begin():
            for alarm in s.scalars(select(Alarm).where(Alarm.acknowledged_at.is_(None))):
                alarm.acknowledged_at = NOW

    def mark(self, wire: str | None = None) -> int:
        """The owner's mark, with `wire` or a valid statement for the head held now."""
        with self.sessions() as s, s.begin():
            lock = s.get(Lock, LOCK)
            assert lock is not None
            return mark_replaced(s, lock, self.owner_id, NOW, wire or signed_for(lock)).id

    def check(self, chain_id: int) -> tuple[bool, int, int]:
        with self.sessions() as s:
            chain = s.get(ArchivedChain, chain_id)
            assert chain is not None
            found = verify_archive(s, chain)
            return found.verified, found.records, found.redacted


@pytest.fixture
def rig(engine: Engine, tmp_path: Path) -> Iterator[Rig]:
    r = Rig(engine, tmp_path)
    yield r
    r.close()


def test_without_the_mark_a_replacement_chain_is_alarmed_as_before(rig: Rig) -> None:
    old = rig.hardware("old")
    old.add(29)  # after the pairing: 30 records
    old.trail.sign(20)
    assert old.connect() == 30
    new = rig.hardware("new")
    new.add(4)
    new.connect()
    assert rig.pending() == ["audit_key_added", "audit_rewritten", "audit_truncated"]
    assert rig.held() == [r["hash"] for r in old.trail.items]  # the cloud's copy untouched
    assert rig.lock().replaced_at is None


def test_marked_replaced_the_old_chain_is_archived_and_the_new_one_taken_from_its_first_record(rig: Rig) -> None:
    old = rig.hardware("old")
    old.add(29)
    old.trail.sign(20)
    old.connect()
    old_keys = rig.lock().audit_keys
    new = rig.hardware("new")
    new.add(4)
    new.connect()  # before the owner's mark: refused and alarmed, and the lock's cursor moved past them
    rig.acknowledge()

    chain_id = rig.mark()
    assert rig.pending() == ["lock_replaced"]  # the owner's action, heard on their channels
    lock = rig.lock()
    assert (lock.head_count, lock.head_hash, lock.audit_keys, lock.replaced_at) == (0, None, None, NOW)
    assert rig.held() == []
    assert rig.check(chain_id) == (True, 30, 0)
    with rig.sessions() as s:
        chain = s.get(ArchivedChain, chain_id)
        assert chain is not None and chain.head_hash == old.trail.items[-1]["hash"]
        # the keys pinned for that chain (the new lock's, announced before the mark, was pinned then and alarmed)
        assert json.loads(chain.audit_keys or "{}") == {**json.loads(old_keys or "{}"),
                                                       new.trail.key.key_id: _b64(new.trail)}
        assert chain.marked_by == rig.owner_id
    with pytest.raises(NotReplaceable):  # marked once until the new chain begins
        rig.mark()
    rig.acknowledge()

    new.add(2)
    # its cursor was at 5: records 5-6 go first (held back, no alarm), the cloud answers its head (0), the lock
    # rewinds and resends all 7 (the lock's own forwarder and `rewind`: nothing new on the lock's side)
    assert new.connect() == 2 + 7
    assert rig.held() == [r["hash"] for r in new.trail.items] and rig.pending() == []
    lock = rig.lock()
    assert lock.replaced_at is None and json.loads(lock.audit_keys or "{}") == {
        new.trail.key.key_id: _b64(new.trail)}

    del new.trail.items[4:]  # the mark is spent: the new chain cut back is alarmed exactly as before
    new.conn.execute("UPDATE link_forward SET next_index = 4")
    new.connect()
    assert rig.pending() == ["audit_truncated"]
    assert rig.check(chain_id) == (True, 30, 0)  # the archive is untouched by the new chain


def test_an_archived_chain_that_was_altered_no_longer_verifies(rig: Rig) -> None:
    old = rig.hardware("old")
    old.add(10)
    old.connect()
    chain_id = rig.mark()
    with rig.sessions() as s, s.begin():
        row = s.scalar(select(ArchivedRecord).where(ArchivedRecord.chain_id == chain_id, ArchivedRecord.idx == 6))
        assert row is not None
        body = json.loads(row.body)
        body["reason"] = "no_match"
        row.body = json.dumps(body)
    assert rig.check(chain_id) == (False, 6, 0)
    with rig.sessions() as s, s.begin():
        s.execute(text("DELETE FROM archived_records WHERE idx = 6"))
    assert rig.check(chain_id)[0] is False


def test_while_marked_the_old_chain_coming_back_is_refused_not_taken(rig: Rig) -> None:
    old = rig.hardware("old")
    old.add(12)
    old.connect()
    rig.mark()
    rig.acknowledge()
    old.connect()  # the old lock (not destroyed after all) is asked to rewind and resends its chain from 0
    assert rig.pending() == ["audit_old_chain"] and rig.held() == []
    lock = rig.lock()
    assert lock.replaced_at == NOW and lock.audit_keys is None  # still marked; nothing pinned
    new = rig.hardware("new")
    new.add(3)
    new.connect()
    assert rig.held() == [r["hash"] for r in new.trail.items] and rig.lock().replaced_at is None


def test_erasure_redacts_archived_records_and_decommission_removes_the_archives(rig: Rig) -> None:
    old = rig.hardware("old")
    old.add(8)  # every record's actor is "u1" (the pairing: "o1")
    old.connect()
    chain_id = rig.mark()
    new = rig.hardware("new")
    new.add(3)
    new.connect()
    cloud_key = Ed25519PrivateKey.generate()
    receipt = erasure_receipt(new.trail.key, LOCK, "u1", {"lock": {"person": 1}}, datetime.now(UTC), 3,
                              scope="person")
    with rig.sessions() as s, s.begin():
        lock = s.get(Lock, LOCK)
        assert lock is not None
        row = erase_in_cloud(s, lock, receipt, cloud_key, NOW)
        combined = row.receipt
    erased = verify_erasure(combined, new.trail.key.public, cloud_key.public_key())["cloud"]
    assert erased["records_redacted"] == 3 and erased["archived_records_redacted"] == 8
    assert rig.check(chain_id) == (True, 9, 8)  # still verifiable: indexes, hashes and the head are kept
    with rig.engine.connect() as conn:
        bodies = " ".join(conn.execute(text("SELECT body FROM archived_records")).scalars())
    assert "u1" not in bodies and "door forced" not in bodies

    receipt = erasure_receipt(new.trail.key, LOCK, "*", {"lock": {"people": 1}}, datetime.now(UTC), 4, scope="lock")
    with rig.sessions() as s, s.begin():
        lock = s.get(Lock, LOCK)
        assert lock is not None
        combined = erase_in_cloud(s, lock, receipt, cloud_key, NOW).receipt
    erased = verify_erasure(combined, new.trail.key.public, cloud_key.public_key())["cloud"]
    assert erased["archived_records"] == 9 and erased["archived_chains"] == 1 and erased["records"] == 4
    with rig.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM archived_records")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM archived_chains")).scalar() == 0


def _b64(trail: Trail) -> str:
    return base64.b64encode(trail.key.public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def _records(engine: Engine, lock_id: str, n: int) -> str:
    """`n` forwarded records of `lock_id`, chained as the lock would (held as the cloud's copy): the owner's
    phone paired, then `n - 1` others."""
    trail = Trail()
    pair(trail)
    trail.add(n - 1)
    with sessions(engine)() as s, s.begin():
        for r in trail.items:
            s.add(Record(lock_id=lock_id, idx=r["index"], hash=r["hash"], kind=r["kind"], at=r["at"],
                         body=json.dumps(r, sort_keys=True)))
        lock = s.get(Lock, lock_id)
        assert lock is not None
        lock.head_count = lock.reported_count = n
        lock.head_hash = trail.items[-1]["hash"]
    return str(trail.items[-1]["hash"])


def _head(engine: Engine, lock_id: str) -> int:
    with sessions(engine)() as s:
        lock = s.get(Lock, lock_id)
        assert lock is not None
        return lock.head_count


def test_the_api_mark_needs_a_step_up_and_the_owner_of_that_lock(engine: Engine) -> None:
    client = TestClient(create_app(engine, open_signup=True))
    olga = login(client, "olga@example.org")
    mallory = login(client, "mallory@example.org")
    own_lock(engine, client, "olga@example.org", "front-door", "Front")
    head = _records(engine, "front-door", 6)
    assert [(lk["records"], lk["head_hash"]) for lk in client.get("/api/locks", headers=olga).json()] == [(6, head)]
    step = {"password": PASSWORD, "statement": statement("front-door", 6, head, datetime.now(UTC))}
    url = "/api/locks/front-door/replaced"
    assert client.post(url, json=step).status_code == 401  # not logged in
    assert client.post(url, json={"password": PASSWORD}, headers=olga).status_code == 422  # no statement
    wrong = client.post(url, json={**step, "password": "not the password"}, headers=olga)
    assert wrong.status_code == 403 and _head(engine, "front-door") == 6
    assert client.post(url, json=step, headers=mallory).status_code == 404  # not hers
    assert _head(engine, "front-door") == 6
    done = client.post(url, json=step, headers=olga)
    assert done.status_code == 200, done.text
    assert done.json()["records"] == 6 and done.json()["verified"] is True and _head(engine, "front-door") == 0
    assert (done.json()["signed_by"], done.json()["statement_verified"]) == (DEVICE, True)
    assert client.post(url, json=step, headers=olga).status_code == 409  # already marked
    archives = client.get("/api/locks/front-door/archives", headers=olga).json()
    assert [(a["records"], a["verified"], a["statement_verified"]) for a in archives] == [(6, True, True)]
    records = client.get(f"/api/locks/front-door/archives/{archives[0]['id']}/records", headers=olga).json()
    assert [r["index"] for r in records] == list(range(6))
    assert client.get("/api/locks/front-door/archives", headers=mallory).status_code == 404
    assert client.get(f"/api/locks/front-door/archives/{archives[0]['id']}/records",
                      headers=mallory).status_code == 404
    assert [a["rule"] for a in client.get("/api/alarms", headers=olga).json()] == ["lock_replaced"]
    export = client.get("/api/locks/front-door/people/u1", headers=olga).json()  # the person's data, archived too
    assert export["records"] == [] and [r["index"] for r in export["archived_records"]] == list(range(1, 6))


def test_once_an_authenticator_is_enrolled_the_step_up_asks_its_code_too(engine: Engine) -> None:
    client = TestClient(create_app(engine, open_signup=True))
    olga = login(client, "olga@example.org")
    with sessions(engine)() as s, s.begin():
        owner = s.scalar(select(Owner).where(Owner.email == "olga@example.org"))
        assert owner is not None
        owner.totp_secret = pyotp.random_base32()
        secret = owner.totp_secret
    connected_lock(engine, client, olga, "back-door")
    step = {"password": PASSWORD,
            "statement": statement("back-door", 4, _records(engine, "back-door", 4), datetime.now(UTC))}
    url = "/api/locks/back-door/replaced"
    assert client.post(url, json=step, headers=olga).status_code == 403
    code = pyotp.TOTP(secret).now()
    wrong = "000000" if code != "000000" else "111111"
    assert client.post(url, json={**step, "totp": wrong}, headers=olga).status_code == 403
    assert _head(engine, "back-door") == 4
    assert client.post(url, json={**step, "totp": code}, headers=olga).status_code == 200
    assert _head(engine, "back-door") == 0


def connected_lock(engine: Engine, client: TestClient, headers: dict[str, str], lock_id: str) -> None:
    from .test_api import connected

    connected(engine, lock_id, "abc-def-456")
    assert client.post("/api/locks", json={"lock_id": lock_id, "name": lock_id, "claim_code": "abc-def-456"},
                       headers=headers).status_code == 201


def test_the_page_button_needs_csrf_same_origin_and_the_password_and_shows_the_archive(engine: Engine) -> None:
    client = browser(engine)
    sign_up(client, "olga@example.org")
    log_in(client, "olga@example.org")
    own_lock(engine, client, "olga@example.org", "front-door", "Front")
    head = _records(engine, "front-door", 5)
    page = client.get("/history?lock=front-door")
    assert page.status_code == 200 and 'action="/locks/front-door/replaced"' in page.text
    assert f"--lock front-door --head-count 5 --head-hash {head}" in page.text  # what the phone is to sign
    csrf = csrf_of(page.text)
    signed = statement("front-door", 5, head, datetime.now(UTC))
    url = "/locks/front-door/replaced"
    assert client.post(url, data={"csrf": "0" * 64, "password": PASSWORD, "statement": signed}).status_code == 403
    assert client.post(url, data={"csrf": csrf, "password": PASSWORD, "statement": signed},
                       headers={"Origin": "https://evil.example"}).status_code == 403
    wrong = client.post(url, data={"csrf": csrf, "password": "not the password", "statement": signed})
    assert wrong.status_code == 403 and "nothing changed" in wrong.text and _head(engine, "front-door") == 5
    assert client.post(url, data={"csrf": csrf, "password": PASSWORD}).status_code == 422  # no statement
    stale = client.post(url, data={"csrf": csrf, "password": PASSWORD,
                                   "statement": statement("front-door", 4, head, datetime.now(UTC))})
    assert stale.status_code == 403 and "Not marked" in stale.text and "stale_head" in stale.text
    assert _head(engine, "front-door") == 5
    with sessions(engine)() as s:
        assert list(s.scalars(select(Alarm.rule))) == ["lock_replace_refused"]  # the owner hears of it
    done = client.post(url, data={"csrf": csrf, "password": PASSWORD, "statement": signed})
    assert done.status_code == 303 and done.headers["location"] == "/history?lock=front-door&done=replaced"
    assert _head(engine, "front-door") == 0
    page = client.get("/history?lock=front-door").text
    assert "waiting for the new lock" in page and 'action="/locks/front-door/replaced"' not in page
    link = re.search(r'href="/history\?lock=front-door&amp;chain=(\d+)"', page)
    assert link is not None
    archived = client.get(f"/history?lock=front-door&chain={link.group(1)}")
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    assert archived.status_code == 200 and archived.text.count(f"<td>before replacement on {day}</td>") == 5
    assert "chain verified" in archived.text and f"signed on {DEVICE}" in archived.text

    other = browser(engine)  # another owner cannot see the archive or mark the lock
    sign_up(other, "mallory@example.org")
    log_in(other, "mallory@example.org")
    assert other.get(f"/history?lock=front-door&chain={link.group(1)}").status_code == 404
    theirs = other.get("/locks").text
    assert other.post(url, data={"csrf": csrf_of(theirs), "password": PASSWORD,
                                 "statement": signed}).status_code == 404
    assert ORIGIN  # (the pages' own origin: same-origin POSTs above)


def test_a_mark_during_a_drain_pass_archives_what_the_pass_took(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pass row-locks its locks and the mark re-reads the lock row-locked: neither loses the other's head."""
    import ssl
    import threading
    import time

    from limen_cloud import bridge as bridge_module
    from limen_cloud.bridge import CloudBridge
    from limen_cloud.db import write_lock

    old = rig.hardware("old")
    old.add(9)
    old.connect()
    old.add(2)
    messages: list[bytes] = []
    old.forwarder.forward(messages.append)  # records 10 and 11, to go through the bridge
    inside, real = threading.Event(), bridge_module.ingest

    def slow_ingest(*args: object, **kwargs: object) -> object:
        result = real(*args, **kwargs)  # type: ignore[arg-type]
        inside.set()
        time.sleep(0.5)  # the pass holds its transaction: a mark now must wait for it
        return result

    monkeypatch.setattr(bridge_module, "ingest", slow_ingest)
    bridge = CloudBridge(rig.engine, ssl.create_default_context(), "127.0.0.1", 1)
    drain = threading.Thread(target=bridge.received, args=(f"limen/{LOCK}/events", messages[0]))
    drain.start()
    assert inside.wait(10)
    with rig.sessions() as s, s.begin():
        write_lock(s)
        lock = s.get(Lock, LOCK)
        assert lock is not None
        # the phone signed the head the pass is taking (12 records): checked once the pass has committed
        chain_id = mark_replaced(s, lock, rig.owner_id, NOW,
                                 statement(LOCK, 12, old.trail.items[-1]["hash"], NOW)).id
    drain.join(10)
    assert bridge.refused == []
    assert rig.check(chain_id) == (True, 12, 0) and rig.held() == [] and rig.lock().head_count == 0
