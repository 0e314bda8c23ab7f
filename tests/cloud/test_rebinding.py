"""DNS rebinding: an apprise channel whose name resolved to a public address when the owner saved it and to
127.0.0.1 when the alarm is sent is refused at the connection (the address connected to is the one checked)."""

from __future__ import annotations

import contextvars
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from limen_cloud import notify
from limen_cloud.api import create_app
from limen_cloud.db import sessions
from limen_cloud.models import Alarm
from limen_cloud.notify import AlarmNotifier, DestinationRefused, egress_guard, parse_allow
from tests.audit.conftest import Receiver

from .test_api import PASSWORD, connected, login

NAME = "alerts.rebind.test"
PUBLIC = "93.184.216.34"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


class Rebinding:
    """A DNS server for NAME that answers a public address first, then 127.0.0.1 (a short TTL, re-pointed)."""

    def __init__(self, real: Any) -> None:
        self.real, self.asked = real, 0

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != NAME:
            return self.real(host, port, *args, **kwargs)
        self.asked += 1
        return self.real(PUBLIC if self.asked == 1 else "127.0.0.1", port, *args, **kwargs)


def owner_with_channel(engine: Engine, port: int) -> None:
    client = TestClient(create_app(engine, open_signup=True))  # no allow-list: only public destinations
    olga = login(client, "olga@example.org")
    connected(engine, "front-door", "abc-def-123")
    assert client.post("/api/locks", json={"lock_id": "front-door", "name": "Front", "claim_code": "abc-def-123"},
                       headers=olga).status_code == 201
    saved = client.put("/api/owners/me/alerts", json={"urls": [f"json://{NAME}:{port}/"], "password": PASSWORD},
                       headers=olga)
    assert saved.status_code == 200  # the name was public when it was checked


def new_alarm(engine: Engine) -> int:
    with sessions(engine)() as s, s.begin():
        row = Alarm(lock_id="front-door", rule="audit_truncated", detail="cut back", raised_at=datetime(2026, 3, 3))
        s.add(row)
        s.flush()
        return row.id


def test_a_rebound_apprise_name_is_refused_when_sent(engine: Engine, receiver: Receiver,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    dns = Rebinding(notify._resolve)
    monkeypatch.setattr(notify, "_resolve", dns)
    owner_with_channel(engine, receiver.port)
    assert dns.asked == 1
    alarm_id = new_alarm(engine)

    assert AlarmNotifier(engine).deliver_pending() == 0
    assert dns.asked >= 2 and receiver.received == []  # resolved again, to 127.0.0.1: not connected
    with sessions(engine)() as s:
        held = s.get(Alarm, alarm_id)
        assert held is not None and held.notified_at is None and held.delivery_error  # kept, retried later

    # control: the same path reaches the receiver once the operator allow-lists loopback, so the refusal above
    # was the guard's (and the request went to the rebound address with the channel's own Host)
    assert AlarmNotifier(engine, ("127.0.0.0/8",)).deliver_pending() == 1 and receiver.wait_for(1)
    assert receiver.received[0]["headers"]["Host"] == f"{NAME}:{receiver.port}"


def test_the_guard_filters_each_resolution_and_follows_the_context_only() -> None:
    with egress_guard():
        with pytest.raises(DestinationRefused):
            socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
        with pytest.raises(DestinationRefused):
            socket.create_connection(("localhost", 9), timeout=1)
        public = socket.getaddrinfo(PUBLIC, 80, type=socket.SOCK_STREAM)  # a literal: no DNS needed
        assert {info[4][0] for info in public} == {PUBLIC}
        context = contextvars.copy_context()  # what apprise hands its worker threads
        with ThreadPoolExecutor(1) as pool:
            inherited = pool.submit(context.run, _resolves, "127.0.0.1").result()
            plain = pool.submit(_resolves, "127.0.0.1").result()  # a thread without the context: unaffected
        assert inherited is False and plain is True
    with egress_guard(parse_allow(["127.0.0.0/8"])):
        assert _resolves("127.0.0.1")
    assert _resolves("127.0.0.1")  # after the block: the process's own connections as before


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)
    except DestinationRefused:
        return False
    return True
