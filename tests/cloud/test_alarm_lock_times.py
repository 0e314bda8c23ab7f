"""A lock's alarm in the cloud keeps the lock's own time (not only when the cloud received it), and an alarm
acknowledged on the lock — a SYSTEM "alarm acknowledged" record in the forwarded trail — is shown as such but stays
pending in the cloud and is still delivered: whoever holds the lock (a coercer making the owner acknowledge a duress
alarm on the console) must not close the owner's alarm."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from limen.audit.chain import GENESIS, make_record
from limen.audit.event import Event, EventKind
from limen.service import feed
from limen_cloud import evidence
from limen_cloud.api import _alarm, create_app
from limen_cloud.models import Alarm, Lock, Owner, PushSubscription
from limen_cloud.notify import AlarmNotifier, load_or_create_vapid
from limen_cloud.pages import alarm_rows

from .test_api import PASSWORD
from .test_evidence import T0, Rig
from .test_pages import ORIGIN, log_in, sign_up
from .test_push import CONTACT, LOCAL, Browser, PushService, push_service  # noqa: F401  (its fixture)
from .test_replacement import Rig as ReplacementRig


def append(rig: Rig, event: Event) -> int:
    items = rig.trail.items
    index = len(items)
    items.append(make_record(event, index, items[-1]["hash"] if items else GENESIS, event.at.isoformat()))
    return index


def alarm(rig: Rig, minute: int, rule: str = "door_forced") -> int:
    return append(rig, Event(EventKind.ALARM, T0 + timedelta(minutes=minute), actor="system", subject="door",
                             reason=rule, data={"text": f"{rule} on the lock", "severity": "critical"}))


def acknowledge(rig: Rig, minute: int, indexes: list[int]) -> int:
    return append(rig, Event(EventKind.SYSTEM, T0 + timedelta(minutes=minute), actor="olga", subject="alarms",
                             reason=feed.ACK_REASON, source="api", data={"alarms": indexes}))


def cloud_alarms(rig: Rig) -> dict[int | None, Alarm]:
    with rig.sessions() as s:
        return {a.lock_index: a for a in s.scalars(select(Alarm).where(Alarm.rule.like("lock:%")))}


def test_the_cloud_shows_the_locks_own_time_and_the_time_it_received_it(engine: Engine, tmp_path: Path) -> None:
    rig = Rig(engine, tmp_path)
    first, second = alarm(rig, 0), alarm(rig, 1, "tamper")
    rig.connect()  # received on 2026-03-03 (the Rig's clock), raised on 2026-03-02 09:00 and 09:01
    held = cloud_alarms(rig)
    assert held[first].lock_at == T0.isoformat() and held[second].lock_at == (T0 + timedelta(minutes=1)).isoformat()
    view = _alarm(held[first])
    assert view["raised_on_lock_at"] == T0.isoformat() and view["raised_at"].startswith("2026-03-03")
    with rig.sessions() as s:
        owner = s.scalars(select(Owner)).one()
        rows = {r["rule"]: r for r in alarm_rows(s, owner)}
    assert rows["lock:door_forced"]["raised"] == "2026-03-02 09:00:00 UTC"
    assert rows["lock:door_forced"]["received"] == "2026-03-03 00:00:00 UTC"


def test_an_alarm_acknowledged_on_the_lock_stays_pending_in_the_cloud(engine: Engine, tmp_path: Path) -> None:
    rig = Rig(engine, tmp_path)
    first, second, third = alarm(rig, 0), alarm(rig, 1), alarm(rig, 2)
    rig.connect()
    # later and junk indexes: ignored
    acknowledge(rig, 5, [first, third, 999, -1, "x"])  # type: ignore[list-item]
    acknowledge(rig, 7, [first])  # acknowledged on the lock again: the first time stays
    rig.connect()
    held = cloud_alarms(rig)
    assert all(a.acknowledged_at is None for a in held.values())  # the cloud's alarms stay pending
    assert held[first].lock_acknowledged_at == (T0 + timedelta(minutes=5)).isoformat()
    assert held[third].lock_acknowledged_at == (T0 + timedelta(minutes=5)).isoformat()
    assert held[second].lock_acknowledged_at is None and _alarm(held[second])["acknowledged_on_lock_at"] is None
    assert _alarm(held[first])["acknowledged_on_lock_at"] == (T0 + timedelta(minutes=5)).isoformat()
    assert _alarm(held[first])["acknowledged_at"] is None
    with rig.sessions() as s:
        owner = s.scalars(select(Owner)).one()
        rows = {r["id"]: r for r in alarm_rows(s, owner)}  # /alarms lists all three
    assert [rows[held[i].id]["lock_acknowledged"] for i in (first, second, third)] == [
        "2026-03-02 09:05:00 UTC", None, "2026-03-02 09:05:00 UTC"]
    rig.conn.close()


def test_a_duress_alarm_acknowledged_on_the_lock_in_the_same_pass_is_still_pushed(
        engine: Engine, tmp_path: Path, push_service: PushService) -> None:  # noqa: F811 (the fixture)
    """The coerced owner acknowledges the silent duress alarm on the console before the lock forwards it."""
    rig = Rig(engine, tmp_path)
    phone = Browser(push_service.url("/push/phone"))
    sub = phone.subscription()
    with rig.sessions() as s, s.begin():
        owner = s.scalars(select(Owner)).one()
        s.add(PushSubscription(owner_id=owner.id, endpoint=sub["endpoint"], p256dh=sub["keys"]["p256dh"],
                               auth=sub["keys"]["auth"], label="phone", created_at=datetime(2026, 1, 1)))
    duress = append(rig, Event(EventKind.ALARM, T0, actor="system", subject="olga", reason="duress",
                               data={"text": "a duress code was used", "severity": "critical", "silent": True}))
    acknowledge(rig, 1, [duress])
    rig.connect()
    rig.conn.close()
    held = cloud_alarms(rig)[duress]
    assert held.acknowledged_at is None and held.lock_acknowledged_at == (T0 + timedelta(minutes=1)).isoformat()
    vapid = load_or_create_vapid(tmp_path / "vapid.key")
    AlarmNotifier(engine, LOCAL, vapid=vapid, vapid_contact=CONTACT).deliver_push()
    assert [phone.decrypt(p["body"])["kind"] for p in push_service.to("/push/phone")] == ["lock:duress"]


def test_an_acknowledgement_names_only_earlier_records(engine: Engine, tmp_path: Path) -> None:
    """An acknowledgement cannot reach forward to an alarm the lock raises later."""
    rig = Rig(engine, tmp_path)
    acknowledge(rig, 0, [1])
    later = alarm(rig, 1)
    rig.connect()
    rig.conn.close()
    assert cloud_alarms(rig)[later].lock_acknowledged_at is None


def test_the_new_chains_acknowledgement_does_not_reach_the_replaced_locks_alarms(engine: Engine,
                                                                                 tmp_path: Path) -> None:
    """After the owner's replacement mark the new chain's indexes start at 0 again: its acknowledgement of its own
    index N is not the old chain's alarm at N."""
    rig = ReplacementRig(engine, tmp_path)
    old = rig.hardware("old")
    old.add(3)  # records 0..3 (0: the pairing)
    old.trail.add(1, reason="tamper", kind=EventKind.ALARM)  # 4: the old lock's tamper alarm (it was smashed)
    old.connect()
    rig.mark()
    new = rig.hardware("new")
    new.add(3)  # records 0..3 of the new chain
    new.trail.add(1, reason="door_forced", kind=EventKind.ALARM)  # 4: the new lock's own alarm
    items = new.trail.items
    items.append(make_record(Event(EventKind.SYSTEM, T0, actor="olga", subject="alarms", reason=feed.ACK_REASON,
                                   source="api", data={"alarms": [4]}),
                             len(items), items[-1]["hash"], T0.isoformat()))
    new.connect()
    rig.close()
    with rig.sessions() as s:
        found = {a.rule: a for a in s.scalars(select(Alarm).where(Alarm.rule.like("lock:%")))}
    assert found["lock:tamper"].lock_acknowledged_at is None and found["lock:tamper"].lock_index is None
    assert found["lock:tamper"].lock_at is not None  # its time on the old lock is kept
    assert found["lock:door_forced"].lock_acknowledged_at == T0.isoformat()


def test_an_out_of_range_lock_time_is_shown_as_the_received_time(engine: Engine, tmp_path: Path) -> None:
    """The lock's time is any string its chain hashes: one past datetime's range once in UTC does not break
    /alarms (a 500 for the owner) or /api/alarms."""
    client = TestClient(create_app(engine, open_signup=True), base_url=ORIGIN, follow_redirects=False)
    sign_up(client, "max@example.org")
    rig = Rig(engine, tmp_path)
    with rig.sessions() as s, s.begin():  # the rig's lock is olga's: give it to max, who can log in
        max_id = s.scalars(select(Owner.id).where(Owner.email == "max@example.org")).one()
        s.execute(update(Lock).values(owner_id=max_id))
    odd = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=1)))  # past datetime.max in UTC
    early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))  # before datetime.min in UTC
    raised = append(rig, Event(EventKind.ALARM, odd, actor="system", subject="door", reason="door_forced",
                               data={"text": "door forced", "severity": "critical"}))
    append(rig, Event(EventKind.SYSTEM, early, actor="olga", subject="alarms", reason=feed.ACK_REASON,
                      source="api", data={"alarms": [raised]}))
    rig.connect()
    rig.conn.close()
    log_in(client, "max@example.org")
    page = client.get("/alarms")
    assert page.status_code == 200
    assert "lock:door_forced" in page.text and "2026-03-03 00:00:00 UTC" in page.text  # the received time
    assert "a time its clock wrote unreadably" in page.text
    token = client.post("/api/sessions", json={"email": "max@example.org", "password": PASSWORD}).json()["token"]
    [listed] = client.get("/api/alarms", headers={"Authorization": f"Bearer {token}"}).json()
    assert listed["raised_on_lock_at"] == "9999-12-31T23:59:59-01:00"
    assert listed["acknowledged_on_lock_at"] == "0001-01-01T00:00:00+01:00"


def test_the_cloud_reads_the_reason_the_lock_writes() -> None:
    assert evidence.ACK_REASON == feed.ACK_REASON
