"""Review: a receiver the owner names (a push endpoint, the community webhook) that answers one byte at a time,
each within the per-read timeout, must not hold the notifier beyond the request's timeout (the notifier's one
loop delivers every owner's alarms), nor make the cloud read an endless answer into memory."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from limen import thresholds as T
from limen_cloud.notify import NOT_REACHED, load_or_create_vapid, parse_allow, post_webhook, send_push

TIMEOUT_S = 1.0
# An endless trickle would hold the caller for ever (`_bounded` gives up at 15 s): the bound only has to be below
# that; 3 * TIMEOUT_S left too little for the send's own work on a loaded machine (CI shares 2 cores).
BOUND_S = 10 * TIMEOUT_S
LOCAL = parse_allow(["127.0.0.1/32"])
KEYS = {"p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
        "auth": "tBHItJI5svbpez7KI4CCXg"}


class Trickle:
    """Reads the request, then answers a byte every `every_s` (headers first or an endless body) until closed."""

    def __init__(self, head: bytes, every_s: float) -> None:
        self.head, self.every_s, self.sent, self.kind = head, every_s, 0, ""
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(self.head)
                while not self.stop.is_set():
                    conn.sendall(b"x")
                    self.sent += 1
                    time.sleep(self.every_s)
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture(params=["headers", "body"])
def trickle(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Trickle]:
    monkeypatch.setattr(T, "CLOUD_PUSH_TIMEOUT_S", TIMEOUT_S)
    monkeypatch.setattr(T, "CLOUD_WEBHOOK_TIMEOUT_S", TIMEOUT_S)
    head = b"HTTP/1.1 201 Created\r\nX-Slow: " if request.param == "headers" else \
        b"HTTP/1.1 201 Created\r\nContent-Length: 100000000\r\n\r\n"
    t = Trickle(head, TIMEOUT_S / 4 if request.param == "headers" else 0.0005)
    t.kind = request.param
    yield t
    t.close()


def _bounded(fn: object, *args: object) -> tuple[float, object]:
    out: list[object] = []
    start = time.monotonic()
    worker = threading.Thread(target=lambda: out.append(fn(*args)), daemon=True)  # type: ignore[operator]
    worker.start()
    worker.join(15 * TIMEOUT_S)
    return time.monotonic() - start, out[0] if out else "still running"


def test_a_trickling_push_endpoint_is_cut_off_at_the_timeout(trickle: Trickle, tmp_path: Path) -> None:
    info = {"endpoint": f"http://127.0.0.1:{trickle.port}/push/abc", "keys": KEYS}
    vapid = load_or_create_vapid(tmp_path / "vapid.key")
    took, result = _bounded(send_push, info, b"{}", vapid, "mailto:ops@example.org", LOCAL)
    assert took < BOUND_S  # the notifier is free again
    assert result == (NOT_REACHED if trickle.kind == "headers" else None)  # a 2xx head is an answer; no body read


def test_a_trickling_webhook_is_cut_off_at_the_timeout(trickle: Trickle) -> None:
    took, result = _bounded(post_webhook, f"http://127.0.0.1:{trickle.port}/hook", "ab" * 32, b"{}", LOCAL)
    assert took < BOUND_S
    assert result == (NOT_REACHED if trickle.kind == "headers" else None)


def test_a_trickling_apprise_channel_is_cut_off_at_the_deadline(engine: Engine, monkeypatch: pytest.MonkeyPatch,
                                                                 trickle: Trickle) -> None:
    from fastapi.testclient import TestClient

    from limen_cloud import notify
    from limen_cloud.api import create_app
    from limen_cloud.db import sessions
    from limen_cloud.models import Alarm

    from .test_api import PASSWORD, connected, login
    from .test_rebinding import new_alarm

    monkeypatch.setattr(notify, "APPRISE_DEADLINE_S", TIMEOUT_S)
    client = TestClient(create_app(engine, open_signup=True, webhook_allow=["127.0.0.1/32"]))
    olga = login(client, "olga@example.org")
    connected(engine, "front-door", "abc-def-123")
    assert client.post("/api/locks", json={"lock_id": "front-door", "name": "Front", "claim_code": "abc-def-123"},
                       headers=olga).status_code == 201
    assert client.put("/api/owners/me/alerts", json={"urls": [f"json://127.0.0.1:{trickle.port}/"],
                                                     "password": PASSWORD}, headers=olga).status_code == 200
    alarm_id = new_alarm(engine)
    notifier = notify.AlarmNotifier(engine, ["127.0.0.1/32"])
    took, delivered = _bounded(notifier.deliver_pending)
    assert took < BOUND_S  # the notifier's loop (every owner's alarms) is free again
    if trickle.kind == "headers":  # cut off: kept for a retry, the reason recorded
        assert delivered == 0
        with sessions(engine)() as s:
            held = s.get(Alarm, alarm_id)
            assert held is not None and held.notified_at is None and "cut off" in (held.delivery_error or "")
