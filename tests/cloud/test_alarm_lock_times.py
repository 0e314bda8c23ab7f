"""A lock's alarm in the cloud keeps the lock's own time (not only when the cloud received it), and an alarm the
owner acknowledged on the lock — a SYSTEM "alarm acknowledged" record in the forwarded trail — is acknowledged in
the cloud too."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, select

from limen.audit.chain import GENESIS, make_record
from limen.audit.event import Event, EventKind
from limen.service import feed
from limen_cloud import evidence
from limen_cloud.api import _alarm
from limen_cloud.models import Alarm, Owner
from limen_cloud.pages import alarm_rows

from .test_evidence import T0, Rig


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


def test_an_alarm_acknowledged_on_the_lock_is_acknowledged_in_the_cloud(engine: Engine, tmp_path: Path) -> None:
    rig = Rig(engine, tmp_path)
    first, second, third = alarm(rig, 0), alarm(rig, 1), alarm(rig, 2)
    rig.connect()
    assert all(a.acknowledged_at is None for a in cloud_alarms(rig).values())
    acknowledge(rig, 5, [first, third, 999, -1, "x"])  # type: ignore[list-item]  (later and junk indexes: ignored)
    rig.connect()
    held = cloud_alarms(rig)
    assert held[first].acknowledged_at is not None and held[third].acknowledged_at is not None
    assert held[first].lock_acknowledged_at == (T0 + timedelta(minutes=5)).isoformat()
    assert held[second].acknowledged_at is None and _alarm(held[second])["acknowledged_on_lock_at"] is None
    assert _alarm(held[first])["acknowledged_on_lock_at"] == (T0 + timedelta(minutes=5)).isoformat()


def test_an_alarm_and_its_acknowledgement_in_one_pass(engine: Engine, tmp_path: Path) -> None:
    rig = Rig(engine, tmp_path)
    raised = alarm(rig, 0)
    acknowledge(rig, 1, [raised])
    rig.connect()
    assert cloud_alarms(rig)[raised].acknowledged_at is not None


def test_an_acknowledgement_names_only_earlier_records(engine: Engine, tmp_path: Path) -> None:
    """An acknowledgement cannot reach forward to an alarm the lock raises later."""
    rig = Rig(engine, tmp_path)
    acknowledge(rig, 0, [1])
    later = alarm(rig, 1)
    rig.connect()
    assert cloud_alarms(rig)[later].acknowledged_at is None


def test_the_cloud_reads_the_reason_the_lock_writes() -> None:
    assert evidence.ACK_REASON == feed.ACK_REASON
