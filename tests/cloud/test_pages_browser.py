"""The owner pages in headless Chromium: log in, see the lock's state, acknowledge an alarm, enrol TOTP, log out."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy import select

from limen_cloud.api import create_app
from limen_cloud.db import make_engine, sessions, upgrade
from limen_cloud.models import Alarm, Owner
from tests.service.browser import chromium, need_chromium

from .test_api import PASSWORD, connected
from .test_pages import record


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    import uvicorn

    engine = make_engine(f"sqlite:///{tmp_path / 'cloud.db'}")
    upgrade(engine)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(engine, open_signup=True), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield f"http://localhost:{port}", engine  # a secure context for Chromium: the Secure __Host- cookie
    finally:
        server.should_exit = True
        thread.join(10)
        engine.dispose()


def test_an_owner_logs_in_sees_the_lock_acknowledges_the_alarm_and_enrols_totp(cloud: tuple[str, Any]) -> None:
    need_chromium()
    from playwright.sync_api import sync_playwright

    url, engine = cloud
    api = httpx.Client(base_url=url)
    assert api.post("/api/owners", json={"email": "olga@example.org", "password": PASSWORD}).status_code == 201
    answer = api.post("/api/sessions", json={"email": "olga@example.org", "password": PASSWORD})
    assert answer.status_code == 201, answer.text
    token = answer.json()["token"]
    connected(engine, "front-door", "abc-def-123")
    assert api.post("/api/locks", json={"lock_id": "front-door", "name": "Front door", "claim_code": "abc-def-123"},
                    headers={"Authorization": f"Bearer {token}"}).status_code == 201
    record(engine, "front-door", 0, "lock_state", data={"state": "locked"})
    record(engine, "front-door", 1, "door_state", data={"state": "closed"})
    with sessions(engine)() as s, s.begin():
        s.add(Alarm(lock_id="front-door", rule="audit_truncated", detail="the trail was cut back",
                    raised_at=datetime(2026, 3, 2, 9)))

    with sync_playwright() as p, chromium(p) as page:
        page.goto(f"{url}/locks")
        assert page.url.endswith("/login")  # no session: sent to log in
        page.fill("input[name=email]", "olga@example.org")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/locks")
        row = page.locator("tr[data-lock=front-door]")
        assert row.locator(".state-lock").inner_text() == "locked"
        assert row.locator(".state-door").inner_text() == "closed"
        page.click("a[href='/alarms']")
        assert "the trail was cut back" in page.content()
        page.click("tr[data-alarm] button")
        page.wait_for_url(lambda u: u.endswith("/alarms?done=acknowledged"))
        assert "Alarm acknowledged." in page.content() and "the trail was cut back" not in page.content()

        page.goto(f"{url}/account/totp")
        secret = page.locator("input[name=secret]").get_attribute("value")
        assert secret and re.fullmatch(r"[A-Z2-7]{32}", secret)
        assert page.locator("img[src^='data:image/svg+xml']").count() == 1  # the QR code, inline
        page.fill("input[name=code]", pyotp.TOTP(secret).now())
        page.fill("form[action='/account/totp'] input[name=password]", PASSWORD)
        page.click("form[action='/account/totp'] button")
        page.wait_for_url(lambda u: u.endswith("/account?done=totp-on"))
        page.click("form[action='/logout'] button")
        page.wait_for_url(lambda u: u.endswith("/login?done=logged-out"))
        page.goto(f"{url}/alarms")
        assert page.url.endswith("/login")

    with sessions(engine)() as s:
        assert s.scalar(select(Alarm.acknowledged_at)) is not None
        assert s.scalar(select(Owner.totp_secret)) == secret
