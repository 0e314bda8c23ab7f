"""The community webhook's kept-alive connections: a burst to one receiver goes over a few connections, each alarm
reaches it once, and a kept connection never outlives its checks (closed by the receiver, too old, a long answer)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import Engine

from limen import thresholds as T
from limen_cloud import notify
from limen_cloud.db import sessions
from limen_cloud.models import Alarm
from limen_cloud.notify import NOT_REACHED, AlarmNotifier, ConnectionPool, parse_allow, post_webhook, verify_webhook

from .test_webhook import LOCAL, SECRET, alarm, owner_with_lock

ALLOW = parse_allow(LOCAL)


class KeepAliveReceiver:
    """An HTTP/1.1 receiver (keep-alive) counting the connections it accepted and recording every POST."""

    def __init__(self, answer: bytes = b"", close_after: int = 0) -> None:
        self.connections = 0
        self.received: list[dict[str, Any]] = []
        self.hold: dict[int, threading.Event] = {}  # alarm id → answered only once this is set
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with outer.lock:
                    outer.connections += 1
                self.served = 0

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.lock:
                    outer.received.append({"body": body, "headers": dict(self.headers)})
                gate = outer.hold.get(json.loads(body).get("alarm_id", -1)) if outer.hold else None
                if gate is not None:
                    gate.wait(10)
                self.send_response(200 if answer else 204)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                self.served += 1
                if close_after and self.served >= close_after:
                    self.close_connection = True  # closed without saying so (no Connection: close)

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.request_queue_size = 256
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def keepalive() -> Iterator[KeepAliveReceiver]:
    r = KeepAliveReceiver()
    yield r
    r.close()


def test_a_burst_to_one_webhook_goes_over_few_connections_each_alarm_once(engine: Engine,
                                                                          keepalive: KeepAliveReceiver) -> None:
    owner_with_lock(engine, f"http://127.0.0.1:{keepalive.port}/hook")
    n = 3 * notify.WEBHOOK_PARALLEL
    ids = [alarm(engine) for _ in range(n)]
    notifier = AlarmNotifier(engine, LOCAL)
    try:
        assert notifier.deliver_webhooks() == n
        assert notifier.deliver_webhooks() == 0  # nothing left: none is sent again
    finally:
        notifier.stop()
    got = [json.loads(r["body"])["alarm_id"] for r in keepalive.received]
    assert sorted(got) == sorted(ids)  # every alarm, each exactly once
    assert keepalive.connections <= notify.WEBHOOK_PARALLEL < n  # pooled: not one connection per alarm
    assert notifier.webhook_connections.made == keepalive.connections
    for r in keepalive.received:  # each still signed on its own
        h = {k.lower(): v for k, v in r["headers"].items()}
        assert verify_webhook(SECRET, h["x-limen-timestamp"], r["body"], h["x-limen-signature"], time.time())
    with sessions(engine)() as s:
        assert all(a.webhook_at is not None and a.webhook_attempts == 1 for a in s.query(Alarm))


def test_a_kept_connection_the_receiver_closed_is_replaced_and_the_post_goes_once() -> None:
    receiver = KeepAliveReceiver(close_after=1)  # every connection closed after its first answer
    try:
        pool = ConnectionPool()
        url = f"http://127.0.0.1:{receiver.port}/hook"
        for k in range(3):
            assert post_webhook(url, SECRET, json.dumps({"k": k}).encode(), ALLOW, pool=pool) is None
            time.sleep(0.05)  # (the receiver's close has landed)
        assert [json.loads(r["body"])["k"] for r in receiver.received] == [0, 1, 2]
        assert receiver.connections == pool.made == 3
    finally:
        receiver.close()


def test_a_kept_connection_is_not_used_past_its_age_the_name_is_checked_again(keepalive: KeepAliveReceiver,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    real = socket.getaddrinfo
    points_to = ["127.0.0.1"]

    def dns(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        if host == "hook.example":  # allow-listed first, then re-pointed at an address outside the allow-list
            asked.append(host)
            return real(points_to[0], port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(notify.socket, "getaddrinfo", dns)
    allow = parse_allow(["127.0.0.1/32"])
    pool = ConnectionPool()
    url = f"http://hook.example:{keepalive.port}/hook"
    assert post_webhook(url, SECRET, b"{}", allow, pool=pool) is None
    assert post_webhook(url, SECRET, b"{}", allow, pool=pool) is None
    assert asked == ["hook.example"] and keepalive.connections == 1  # kept: the checked address, not resolved again
    points_to[0] = "127.0.0.2"  # (the same receiver, but not allow-listed)
    monkeypatch.setattr(T, "CLOUD_WEBHOOK_KEEPALIVE_S", 0.0)  # the kept connection is now too old
    assert post_webhook(url, SECRET, b"{}", allow, pool=pool) == NOT_REACHED
    assert asked == ["hook.example"] * 2 and len(keepalive.received) == 2


def test_a_long_answer_is_not_read_and_its_connection_not_kept() -> None:
    receiver = KeepAliveReceiver(answer=b"x" * (T.CLOUD_WEBHOOK_KEEP_BODY_BYTES + 1))
    short = KeepAliveReceiver(answer=b"ok")
    try:
        pool = ConnectionPool()
        for r in (receiver, short):
            for _ in range(3):
                assert post_webhook(f"http://127.0.0.1:{r.port}/hook", SECRET, b"{}", ALLOW, pool=pool) is None
        assert receiver.connections == 3 and short.connections == 1
        pool.close()
    finally:
        receiver.close()
        short.close()


def test_the_next_pass_does_not_wait_for_the_write_nor_take_the_alarms_being_written(
        engine: Engine, keepalive: KeepAliveReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    owner_with_lock(engine, f"http://127.0.0.1:{keepalive.port}/hook")
    first = [alarm(engine) for _ in range(5)]
    notifier = AlarmNotifier(engine, LOCAL)
    written = notifier._mark_webhooks
    release, broken = threading.Event(), [True]

    def slow_write(*args: Any) -> int:
        assert release.wait(10)
        if broken[0]:
            raise RuntimeError("the database is away")
        return written(*args)

    monkeypatch.setattr(notifier, "_mark_webhooks", slow_write)
    try:
        assert notifier.deliver_webhooks(wait=False) == 5  # POSTed; their outcome still being written
        second = alarm(engine)
        assert notifier.deliver_webhooks(wait=False) == 1  # only the new one: the 5 are not taken twice
        deadline = time.monotonic() + 10  # (the passes' POSTs go on the pool: the calls return at once)
        while len(keepalive.received) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sorted(json.loads(r["body"])["alarm_id"] for r in keepalive.received) == sorted([*first, second])
        release.set()  # the first write fails: those alarms stay due and go again (at least once)
        deadline = time.monotonic() + 10
        while notifier._marking and time.monotonic() < deadline:
            time.sleep(0.01)
        broken[0] = False
        assert notifier.deliver_webhooks() == 6 and notifier.deliver_webhooks() == 0
    finally:
        notifier.stop()
    with sessions(engine)() as s:
        assert all(a.webhook_at is not None for a in s.query(Alarm))
    assert len(keepalive.received) == 12


def test_the_next_pass_is_posted_while_the_last_one_s_slow_post_is_still_out(engine: Engine,
                                                                             keepalive: KeepAliveReceiver) -> None:
    """A pass no longer waits for its slowest POST before the next one is read and POSTed (a slow receiver held
    every alarm raised behind it for up to CLOUD_WEBHOOK_TIMEOUT_S)."""
    owner_with_lock(engine, f"http://127.0.0.1:{keepalive.port}/hook")
    notifier = AlarmNotifier(engine, LOCAL)
    gate = threading.Event()
    slow = alarm(engine)
    keepalive.hold[slow] = gate
    try:
        first = threading.Thread(target=notifier.deliver_webhooks, kwargs={"wait": False})
        first.start()
        first.join(2)
        assert not first.is_alive()  # the pass handed its POST over and returned, the receiver still holding it
        quick = alarm(engine)
        assert notifier.deliver_webhooks(wait=False) == 1  # the new alarm only
        deadline = time.monotonic() + 10
        while len(keepalive.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [json.loads(r["body"])["alarm_id"] for r in keepalive.received] == [slow, quick]
        while quick in notifier._marking and time.monotonic() < deadline:
            time.sleep(0.01)
        assert slow in notifier._marking and quick not in notifier._marking  # recorded while the slow one is out
        with sessions(engine)() as s:
            assert s.get(Alarm, quick).webhook_at is not None and s.get(Alarm, slow).webhook_at is None
    finally:
        gate.set()
        notifier.stop()
    with sessions(engine)() as s:
        assert s.get(Alarm, slow).webhook_at is not None  # stop() waited for the POST and wrote its outcome
