"""Fixtures for the audit tests: an open log, events, and a local HTTP receiver."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from limen.audit import AuditLog, Event, EventKind, open_audit
from limen.config import Settings

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def attempt(outcome: str = "reject", method: str = "face", at: datetime = T0, actor: str | None = "u1",
            reason: str | None = None, **data: Any) -> Event:
    reason = reason or ("granted" if outcome == "accept" else "no_match")
    return Event(EventKind.UNLOCK_ATTEMPT, at, actor=actor, outcome=outcome, reason=reason,
                 source="camera", data={"method": method, **data})


@pytest.fixture
def audit(settings: Settings) -> Iterator[AuditLog]:
    log = open_audit(settings)
    yield log
    log.close()


class Receiver:
    """A local HTTP server recording every POST (body, headers, arrival time)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        self.delay = 0.0
        self.arrived = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if outer.delay:
                    time.sleep(outer.delay)
                status = outer.status
                if status < 300:  # recorded before the answer: a sender that saw 2xx finds it in `received`
                    with outer.arrived:
                        outer.received.append({"body": body, "headers": dict(self.headers),
                                               "t": time.perf_counter(), "json": _json(body)})
                        outer.arrived.notify_all()
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, n: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.received) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.arrived.wait(left)
        return True

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
