"""Alarm fan-out: each new alarm of a claimed lock reaches the owner's apprise channels once, retried on failure."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from limen.link.forward import claim_hash
from limen_cloud.api import create_app
from limen_cloud.db import sessions
from limen_cloud.models import Alarm, Lock
from limen_cloud.notify import AlarmNotifier
from tests.audit.conftest import Receiver

from .test_api import PASSWORD, connected, login


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def alarm(engine: Engine, lock_id: str, rule: str) -> int:
    with sessions(engine)() as s, s.begin():
        row = Alarm(lock_id=lock_id, rule=rule, detail="the lock reports fewer records", raised_at=datetime(2026, 3, 3))
        s.add(row)
        s.flush()
        return row.id


def test_alarms_reach_the_owner_once_and_failures_are_retried(engine: Engine, receiver: Receiver) -> None:
    client = TestClient(create_app(engine, open_signup=True, webhook_allow=("127.0.0.0/8",)))  # receiver: here
    olga = login(client, "olga@example.org")
    connected(engine, "front-door", "abc-def-123")
    client.post("/api/locks", json={"lock_id": "front-door", "name": "Front", "claim_code": "abc-def-123"},
                headers=olga)
    url = f"json://127.0.0.1:{receiver.port}/"
    assert client.put("/api/owners/me/alerts", json={"urls": ["not a url"]}, headers=olga).status_code == 422
    for internal in ("json://10.0.0.5:8080/", "ntfy://192.168.1.2/topic", "json://169.254.169.254/"):
        assert client.put("/api/owners/me/alerts", json={"urls": [internal]}, headers=olga).status_code == 422
    saved = client.put("/api/owners/me/alerts", json={"urls": [url], "password": PASSWORD}, headers=olga)
    assert saved.status_code == 200 and url not in saved.text  # URLs hold tokens: only ids come back
    assert client.get("/api/owners/me/alerts", headers=olga).json() == saved.json()

    notifier = AlarmNotifier(engine, ("127.0.0.0/8",), coalesce_s=0, retry_s=0)  # sending is checked (egress_guard)
    first = alarm(engine, "front-door", "audit_truncated")
    assert notifier.deliver_pending() == 1 and receiver.wait_for(1)
    assert "audit_truncated" in receiver.received[0]["json"]["title"]
    assert notifier.deliver_pending() == 0 and len(receiver.received) == 1  # once

    receiver.status = 500
    second = alarm(engine, "front-door", "lock:door_forced")
    assert notifier.deliver_pending() == 0
    with sessions(engine)() as s:
        failed = s.get(Alarm, second)
        assert failed is not None and failed.notified_at is None and failed.delivery_error
    receiver.status = 200
    assert notifier.deliver_pending() == 1 and receiver.wait_for(2)
    with sessions(engine)() as s:
        assert all(a.notified_at is not None for a in s.scalars(select(Alarm).where(Alarm.id.in_([first, second]))))

    with sessions(engine)() as s, s.begin():  # a lock nobody claimed has nobody to tell
        s.add(Lock(lock_id="stray", owner_id=None, name="stray", head_count=0, reported_count=0,
                   claim_hash=claim_hash("x-y-z")))
    alarm(engine, "stray", "audit_truncated")
    assert notifier.deliver_pending() == 0 and len(receiver.received) == 2
