"""The community security webhook: each alarm POSTed once, signed (HMAC-SHA256), retried with bounded backoff."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest
from sqlalchemy import Engine

from limen import thresholds as T
from limen_cloud.api import utcnow
from limen_cloud.db import sessions
from limen_cloud.models import Alarm, Lock, Owner
from limen_cloud.notify import AlarmNotifier, backoff_s, verify_webhook
from tests.audit.conftest import Receiver

SECRET = secrets.token_hex(32)
LOCAL = ("127.0.0.0/8",)  # the receivers run on this machine: allow-listed as an operator would


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def owner_with_lock(engine: Engine, url: str | None, lock_id: str = "front-door", email: str = "olga@x.org") -> None:
    with sessions(engine)() as s, s.begin():
        owner = Owner(email=email, password_hash="-", created_at=utcnow(), webhook_url=url,
                      webhook_secret=SECRET if url else None)
        s.add(owner)
        s.flush()
        s.add(Lock(lock_id=lock_id, owner_id=owner.id, name=lock_id, head_count=0, reported_count=0))


def alarm(engine: Engine, lock_id: str = "front-door", rule: str = "audit_truncated") -> int:
    with sessions(engine)() as s, s.begin():
        row = Alarm(lock_id=lock_id, rule=rule, detail="the lock reports fewer records", raised_at=utcnow())
        s.add(row)
        s.flush()
        return row.id


def state(engine: Engine, alarm_id: int) -> Alarm:
    with sessions(engine)() as s:
        row = s.get(Alarm, alarm_id)
        assert row is not None
        return row


def test_an_alarm_reaches_the_webhook_once_signed_and_only_the_owners(engine: Engine, receiver: Receiver) -> None:
    owner_with_lock(engine, f"http://127.0.0.1:{receiver.port}/hook")
    owner_with_lock(engine, None, "garage", "mallory@x.org")  # no webhook: nothing sent for this lock
    first = alarm(engine)
    alarm(engine, "garage")
    notifier = AlarmNotifier(engine, LOCAL)
    assert notifier.deliver_webhooks() == 1 and receiver.wait_for(1)
    assert notifier.deliver_webhooks() == 0 and len(receiver.received) == 1  # once
    got = receiver.received[0]
    headers = {k.lower(): v for k, v in got["headers"].items()}
    assert verify_webhook(SECRET, headers["x-limen-timestamp"], got["body"], headers["x-limen-signature"],
                          time.time())
    assert got["json"]["alarm_id"] == first and got["json"]["rule"] == "audit_truncated"
    assert got["json"]["severity"] == "critical" and got["json"]["lock_id"] == "front-door"
    tampered = got["body"].replace(b"critical", b"warning")
    assert not verify_webhook(SECRET, headers["x-limen-timestamp"], tampered, headers["x-limen-signature"],
                              time.time())
    assert not verify_webhook("00" * 32, headers["x-limen-timestamp"], got["body"], headers["x-limen-signature"],
                              time.time())
    assert not verify_webhook(SECRET, headers["x-limen-timestamp"], got["body"], headers["x-limen-signature"],
                              time.time() + 3600)  # a replay an hour later is stale
    assert state(engine, first).webhook_at is not None and state(engine, first).webhook_attempts == 1


def test_failures_are_retried_with_doubling_backoff_and_given_up_after_the_bound(engine: Engine,
                                                                                  receiver: Receiver) -> None:
    owner_with_lock(engine, f"http://127.0.0.1:{receiver.port}/hook")
    notifier = AlarmNotifier(engine, LOCAL)
    receiver.status = 503
    failing = alarm(engine)
    now = utcnow()
    assert notifier.deliver_webhooks(now) == 0
    row = state(engine, failing)
    assert row.webhook_attempts == 1 and row.webhook_error == "HTTP 503" and row.webhook_at is None
    assert row.webhook_next_at == now + timedelta(seconds=T.CLOUD_WEBHOOK_BACKOFF_S)
    assert notifier.deliver_webhooks(now) == 0 and state(engine, failing).webhook_attempts == 1  # not due yet
    receiver.status = 200
    later = now + timedelta(seconds=backoff_s(1))
    assert notifier.deliver_webhooks(later) == 1 and receiver.wait_for(1)
    assert state(engine, failing).webhook_attempts == 2 and state(engine, failing).webhook_error is None

    receiver.status = 500
    doomed = alarm(engine, rule="lock:door_forced")
    at = now
    for attempt in range(1, T.CLOUD_WEBHOOK_MAX_ATTEMPTS + 3):
        notifier.deliver_webhooks(at)
        at += timedelta(seconds=backoff_s(attempt) + 1)
    row = state(engine, doomed)
    assert row.webhook_attempts == T.CLOUD_WEBHOOK_MAX_ATTEMPTS  # bounded: no attempt past the limit
    assert row.webhook_at is None and (row.webhook_error or "").startswith("gave up after")
    assert [backoff_s(n) for n in (1, 2, 3)] == [T.CLOUD_WEBHOOK_BACKOFF_S * f for f in (1, 2, 4)]
    assert backoff_s(50) == T.CLOUD_WEBHOOK_BACKOFF_MAX_S
    assert len(receiver.received) == 1


def test_a_redirect_or_an_unreachable_receiver_is_a_failure_not_a_delivery(engine: Engine) -> None:
    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.send_response(307)
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        owner_with_lock(engine, f"http://127.0.0.1:{server.server_address[1]}/hook")
        redirected = alarm(engine)
        AlarmNotifier(engine, LOCAL).deliver_webhooks()
    finally:
        server.shutdown()
        server.server_close()
    assert state(engine, redirected).webhook_error == "HTTP 307" and state(engine, redirected).webhook_at is None

    with sessions(engine)() as s, s.begin():
        for owner in s.query(Owner).all():
            owner.webhook_url = "http://127.0.0.1:9/closed"  # discard port: nothing listens
    gone = alarm(engine)
    AlarmNotifier(engine, LOCAL).deliver_webhooks(datetime(2100, 1, 1))
    error = state(engine, gone).webhook_error or ""
    assert error.startswith("not reached") and "127.0.0.1" not in error
    assert json.dumps(error)  # a short, loggable reason
