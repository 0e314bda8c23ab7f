"""The apprise path under load: a burst for one owner is coalesced into one message per channel, one owner's
trickling channel does not hold another owner's alarm, the Apprise objects kept per channel set are rebuilt when
the owner changes channels, and the egress guard still checks the connections a kept object makes."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from limen_cloud import notify
from limen_cloud.api import create_app
from limen_cloud.db import sessions
from limen_cloud.models import Alarm, Owner
from limen_cloud.notify import AlarmNotifier, _Outcome, _Pending, compose, id_ranges
from tests.audit.conftest import Receiver

from .test_api import PASSWORD, connected, login
from .test_rebinding import NAME, Rebinding
from .test_slow_receiver_review import Trickle

LOOPBACK = ("127.0.0.0/8",)


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    a, b = Receiver(), Receiver()
    yield a, b
    a.close()
    b.close()


def owner(client: TestClient, engine: Engine, email: str, lock_id: str, urls: list[str]) -> dict[str, str]:
    headers = login(client, email)
    connected(engine, lock_id, f"{lock_id[:3]}-def-123")
    assert client.post("/api/locks", json={"lock_id": lock_id, "name": f"{lock_id} door",
                                           "claim_code": f"{lock_id[:3]}-def-123"}, headers=headers).status_code == 201
    assert client.put("/api/owners/me/alerts", json={"urls": urls, "password": PASSWORD},  # the step-up
                      headers=headers).status_code == 200
    return headers


def raise_alarms(engine: Engine, lock_id: str, n: int = 1, rule: str = "lock:door_forced") -> list[int]:
    with sessions(engine)() as s, s.begin():
        rows = [Alarm(lock_id=lock_id, rule=rule, detail="forced", raised_at=datetime(2026, 3, 3)) for _ in range(n)]
        s.add_all(rows)
        s.flush()
        return [r.id for r in rows]


def owner_id(engine: Engine, email: str) -> int:
    with sessions(engine)() as s:
        found = s.scalar(select(Owner.id).where(Owner.email == email))
        assert found is not None
        return found


def delivered(engine: Engine, ids: list[int]) -> list[bool]:
    with sessions(engine)() as s:
        return [s.get(Alarm, i).notified_at is not None for i in ids]  # type: ignore[union-attr]


def eventually(check: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_burst_for_one_owner_is_one_message_per_window(engine: Engine,
                                                          receivers: tuple[Receiver, Receiver]) -> None:
    rx, _ = receivers
    client = TestClient(create_app(engine, open_signup=True, webhook_allow=LOOPBACK))
    owner(client, engine, "olga@example.org", "front", [f"json://127.0.0.1:{rx.port}/"])
    notifier = AlarmNotifier(engine, LOOPBACK, coalesce_s=2.0)  # the first send and the burst fit in it, loaded
    first = raise_alarms(engine, "front")
    assert notifier.deliver_pending() == 1 and rx.wait_for(1)  # the first after a quiet spell: at once, alone
    assert rx.received[0]["json"]["title"].endswith("front: lock:door_forced")
    burst = raise_alarms(engine, "front", 12)
    assert notifier.deliver_pending() == 0  # within the window: held (not failed)
    with sessions(engine)() as s:
        assert all(s.get(Alarm, i).delivery_error is None for i in burst)  # type: ignore[union-attr]
    time.sleep(2.1)
    assert notifier.deliver_pending() == 12 and rx.wait_for(2)
    time.sleep(0.3)
    assert len(rx.received) == 2  # twelve alarms, one notification
    got = rx.received[1]["json"]
    assert got["title"] == "[WARNING] 12 alarms at front door, first: lock:door_forced"
    ids = re.search(r"ids: ([0-9,-]+)", got["message"])
    assert ids is not None and ids.group(1) == id_ranges(burst)
    assert all(delivered(engine, first + burst))


def test_the_coalesced_message_names_every_alarm_and_the_worst_severity() -> None:
    at = datetime(2026, 3, 3)
    alarms = [_Pending(1, "a", "Front", "audit_gap", "gap", at), _Pending(2, "b", "Back", "audit_truncated", "cut", at),
              _Pending(3, "a", "Front", "audit_gap", "gap", at), _Pending(7, "a", "Front", "audit_gap", "gap", at)]
    title, body, severity = compose(alarms)
    assert severity == "critical" and title == "[CRITICAL] 4 alarms at 2 locks, first: audit_gap"
    assert body.endswith("ids: 1-3,7") and "first: a: audit_gap: gap" in body
    assert compose(alarms[:1])[0] == "[WARNING] a: audit_gap"


def test_a_trickling_channel_of_one_owner_does_not_hold_another_owners_alarm(
        engine: Engine, receivers: tuple[Receiver, Receiver], monkeypatch: pytest.MonkeyPatch) -> None:
    rx, _ = receivers
    hostile = Trickle(b"HTTP/1.1 200 OK\r\nX-Slow: ", 0.2)  # each byte within apprise's per-read timeout
    try:
        monkeypatch.setattr(notify, "APPRISE_DEADLINE_S", 4.0)
        client = TestClient(create_app(engine, open_signup=True, webhook_allow=LOOPBACK))
        owner(client, engine, "mallory@example.org", "shed", [f"json://127.0.0.1:{hostile.port}/"])
        owner(client, engine, "olga@example.org", "front", [f"json://127.0.0.1:{rx.port}/"])
        notifier = AlarmNotifier(engine, LOOPBACK, coalesce_s=0)
        held = raise_alarms(engine, "shed")  # older: first in the pass
        ours = raise_alarms(engine, "front")
        start = time.monotonic()
        assert notifier.deliver_pending(wait=False) == 2
        assert rx.wait_for(1, timeout=2.0) and time.monotonic() - start < 2.0  # not after the hostile one's 4 s
        later = raise_alarms(engine, "front")  # while the hostile job is still held: served in a later pass
        time.sleep(0.3)
        assert notifier.deliver_pending(wait=False) == 1
        assert rx.wait_for(2, timeout=2.0) and time.monotonic() - start < 3.0
        assert eventually(lambda: delivered(engine, ours + later) == [True, True])  # (recorded after the send)
        assert delivered(engine, held) == [False]
        time.sleep(4.5)  # the hostile owner's message is cut at the deadline, its alarm kept with the reason
        with sessions(engine)() as s:
            alarm = s.get(Alarm, held[0])
            assert alarm is not None and alarm.notified_at is None and "cut off" in (alarm.delivery_error or "")
    finally:
        hostile.close()


def test_kept_apprise_objects_are_rebuilt_when_the_owner_changes_channels(
        engine: Engine, receivers: tuple[Receiver, Receiver]) -> None:
    first_rx, second_rx = receivers
    client = TestClient(create_app(engine, open_signup=True, webhook_allow=LOOPBACK))
    olga = owner(client, engine, "olga@example.org", "front", [f"json://127.0.0.1:{first_rx.port}/"])
    notifier = AlarmNotifier(engine, LOOPBACK, coalesce_s=0)
    oid = owner_id(engine, "olga@example.org")
    raise_alarms(engine, "front")
    assert notifier.deliver_pending() == 1 and first_rx.wait_for(1)
    kept = notifier._built[oid]
    raise_alarms(engine, "front")
    assert notifier.deliver_pending() == 1 and first_rx.wait_for(2)
    assert notifier._built[oid] is kept  # built once, used again

    assert client.put("/api/owners/me/alerts", json={"urls": [f"json://127.0.0.1:{second_rx.port}/"],
                                                     "password": PASSWORD},  # replacing a channel: step-up
                      headers=olga).status_code == 200
    raise_alarms(engine, "front")  # (with the alarm_destination_added the new channel raised: one message)
    assert notifier.deliver_pending() == 2 and second_rx.wait_for(1)
    time.sleep(0.2)
    assert len(first_rx.received) == 2  # the old channel's object is not used for the owner's messages any more
    assert notifier._built[oid] is not kept and notifier._built[oid].urls == (f"json://127.0.0.1:{second_rx.port}/",)
    # … but the replaced channel hears of its replacement (it was the only one: the new one alone was told before)
    assert notifier.deliver_former() == 1 and first_rx.wait_for(3)
    assert "alarm_destination_added" in first_rx.received[2]["json"]["title"] and len(first_rx.received) == 3


def test_the_guard_checks_the_connections_of_a_kept_apprise_object(
        engine: Engine, receivers: tuple[Receiver, Receiver], monkeypatch: pytest.MonkeyPatch) -> None:
    rx, _ = receivers
    dns = Rebinding(notify._resolve)  # NAME: public when saved, 127.0.0.1 at every send
    monkeypatch.setattr(notify, "_resolve", dns)
    client = TestClient(create_app(engine, open_signup=True))
    owner(client, engine, "olga@example.org", "front", [f"json://{NAME}:{rx.port}/"])
    notifier = AlarmNotifier(engine, LOOPBACK, coalesce_s=0)  # loopback allowed: the object is built and used
    oid = owner_id(engine, "olga@example.org")
    raise_alarms(engine, "front")
    assert notifier.deliver_pending() == 1 and rx.wait_for(1)
    kept = notifier._built[oid]

    notifier.webhook_allow = ()  # the same kept object, now with loopback not allowed
    refused = raise_alarms(engine, "front")
    assert notifier.deliver_pending() == 0
    assert notifier._built[oid] is kept and len(rx.received) == 1  # it resolved again and was refused
    with sessions(engine)() as s:
        alarm = s.get(Alarm, refused[0])
        assert alarm is not None and alarm.notified_at is None and alarm.delivery_error


def test_the_old_chain_of_a_replaced_lock_still_sending_is_a_critical_alarm() -> None:
    at = datetime(2026, 3, 3)
    assert compose([_Pending(1, "a", "Front", "audit_old_chain", "old chain", at)])[2] == "critical"
    assert compose([_Pending(2, "a", "Front", "lock_replaced", "marked", at)])[2] == "warning"
    # a refused replacement statement (forged, replayed, stale): someone tried to reset the evidence head
    assert compose([_Pending(3, "a", "Front", "lock_replace_refused", "refused", at)])[2] == "critical"


def test_an_apprise_outcome_not_written_leaves_its_alarm_due_and_it_is_sent_again(
        engine: Engine, receivers: tuple[Receiver, Receiver], monkeypatch: pytest.MonkeyPatch) -> None:
    rx, _ = receivers
    client = TestClient(create_app(engine, open_signup=True, webhook_allow=LOOPBACK))
    owner(client, engine, "olga@example.org", "front", [f"json://127.0.0.1:{rx.port}/"])
    notifier = AlarmNotifier(engine, LOOPBACK, coalesce_s=0, retry_s=0.3)
    write = notifier._mark_apprise

    def away(batch: list[_Outcome]) -> None:
        raise OSError("database away")

    monkeypatch.setattr(notifier, "_mark_apprise", away)
    ids = raise_alarms(engine, "front")
    assert notifier.deliver_pending() == 1 and rx.wait_for(1)  # the phone got it …
    assert delivered(engine, ids) == [False]  # … but it is not recorded: still due
    assert notifier.deliver_pending() == 0  # the owner waits retry_s (no resend at every pass)
    monkeypatch.setattr(notifier, "_mark_apprise", write)
    time.sleep(0.35)
    assert notifier.deliver_pending() == 1 and rx.wait_for(2)  # sent again: at least once
    assert delivered(engine, ids) == [True]
    notifier.stop()


def test_an_alarm_whose_outcome_is_not_written_is_not_sent_again_while_the_owners_next_alarm_goes(
        engine: Engine, receivers: tuple[Receiver, Receiver], monkeypatch: pytest.MonkeyPatch) -> None:
    rx, _ = receivers
    client = TestClient(create_app(engine, open_signup=True, webhook_allow=LOOPBACK))
    owner(client, engine, "olga@example.org", "front", [f"json://127.0.0.1:{rx.port}/"])
    notifier = AlarmNotifier(engine, LOOPBACK, coalesce_s=0)
    write, go = notifier._mark_apprise, threading.Event()

    def held(batch: list[_Outcome]) -> None:
        assert go.wait(5)
        write(batch)

    monkeypatch.setattr(notifier, "_mark_apprise", held)
    first = raise_alarms(engine, "front")
    assert notifier.deliver_pending(wait=False) == 1 and rx.wait_for(1)
    assert eventually(lambda: notifier._writing)  # sent; its outcome is being written
    second = raise_alarms(engine, "front")
    # the owner is free once the message ended (the write is not between two messages), the first alarm is not
    # sent twice: the next message carries the second alone
    assert eventually(lambda: notifier.deliver_pending(wait=False) == 1) and rx.wait_for(2)
    assert rx.received[1]["json"]["title"] == rx.received[0]["json"]["title"]  # one alarm, not "2 alarms at …"
    assert notifier.deliver_pending(wait=False) == 0  # both in flight until written: nothing again
    time.sleep(0.2)
    assert len(rx.received) == 2 and delivered(engine, first + second) == [False, False]
    go.set()
    assert eventually(lambda: delivered(engine, first + second) == [True, True])
    assert notifier.deliver_pending() == 0 and len(rx.received) == 2  # each sent once
    notifier.stop()
