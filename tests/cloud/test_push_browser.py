"""Web push in headless Chromium: "Notify this browser" registers the real service worker and hands the cloud a
subscription; an alarm is pushed (encrypted, VAPID) to a local push service, and the decrypted message, delivered
to the service worker through the DevTools protocol, becomes the notification.  Only the browser vendor's push
service is stood in for: `PushManager.subscribe` is replaced by one returning this test's keys and endpoint
(headless Chromium cannot reach Google's push service)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from limen_cloud.api import create_app
from limen_cloud.db import make_engine, sessions, upgrade
from limen_cloud.models import Alarm, PushSubscription
from limen_cloud.notify import AlarmNotifier, load_or_create_vapid, vapid_public_key
from tests.service.browser import CHROMIUM, FLAGS, need_chromium

from .test_api import PASSWORD, connected
from .test_push import CONTACT, LOCAL, Browser, PushService, check_vapid

STUB = """
(() => {
  const sub = %s;
  PushManager.prototype.subscribe = function (options) {
    const key = new Uint8Array(options.applicationServerKey);
    sessionStorage.setItem("limenKey", btoa(String.fromCharCode.apply(null, key)).replace(/\\+/g, "-")
      .replace(/\\//g, "_").replace(/=+$/, ""));
    return Promise.resolve({endpoint: sub.endpoint, toJSON: () => sub});
  };
})();
"""


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[tuple[str, Any, Any]]:
    import uvicorn

    engine = make_engine(f"sqlite:///{tmp_path / 'cloud.db'}")
    upgrade(engine)
    vapid = load_or_create_vapid(tmp_path / "vapid.key")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(engine, open_signup=True, webhook_allow=LOCAL, push_key=vapid_public_key(vapid))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield f"http://localhost:{port}", engine, vapid  # localhost: a secure context (cookie, service worker)
    finally:
        server.should_exit = True
        thread.join(10)
        engine.dispose()


def test_notify_this_browser_then_an_alarm_becomes_a_notification(cloud: tuple[str, Any, Any]) -> None:
    need_chromium()
    from playwright.sync_api import sync_playwright

    url, engine, vapid = cloud
    service = PushService()
    try:
        api = httpx.Client(base_url=url)
        assert api.post("/api/owners", json={"email": "olga@example.org", "password": PASSWORD}).status_code == 201
        token = api.post("/api/sessions", json={"email": "olga@example.org", "password": PASSWORD}).json()["token"]
        connected(engine, "front-door", "abc-def-123")
        assert api.post("/api/locks", json={"lock_id": "front-door", "name": "Front door",
                                            "claim_code": "abc-def-123"},
                        headers={"Authorization": f"Bearer {token}"}).status_code == 201
        phone = Browser(service.url("/push/chromium"))

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
            try:
                context = browser.new_context()
                context.grant_permissions(["notifications"], origin=url)
                context.add_init_script(STUB % json.dumps(phone.subscription(label="")))
                page = context.new_page()
                errors: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                failed: list[str] = []
                page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
                page.goto(f"{url}/login")
                page.fill("input[name=email]", "olga@example.org")
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url("**/locks")
                page.goto(f"{url}/account")
                page.fill("#push-label", "Chromium test")
                page.click("#push-on")  # no password typed: nothing asked of the browser or the cloud
                assert page.text_content("#push-state") == "Type your password first."
                page.fill("#push-password", "not the password")
                page.click("#push-on")
                page.locator("#push-state", has_text="403").wait_for(timeout=15_000)  # (no eval: the page's CSP)
                assert "wrong password" in (page.text_content("#push-state") or "")
                with sessions(engine)() as s:
                    assert s.scalar(select(PushSubscription)) is None
                failed.clear()  # (the refused POST, on purpose)
                page.fill("#push-password", PASSWORD)
                page.click("#push-on")
                page.wait_for_url(lambda u: u.endswith("/account?done=push-on"), timeout=15_000)
                assert "This browser now receives alarms." in page.content() and "Chromium test" in page.content()
                assert [u for u in failed if not u.endswith("/favicon.ico")] == []
                assert [e for e in errors if not e.startswith("Failed to load resource")] == []  # CSP, script
                assert page.evaluate("sessionStorage.getItem('limenKey')") == vapid_public_key(vapid)

                with sessions(engine)() as s:
                    sub = s.scalar(select(PushSubscription))
                    assert sub is not None and sub.endpoint == phone.endpoint and sub.label == "Chromium test"
                with sessions(engine)() as s, s.begin():
                    s.add(Alarm(lock_id="front-door", rule="audit_truncated", detail="cut back",
                                raised_at=datetime(2026, 12, 1, 9, 45)))
                assert AlarmNotifier(engine, LOCAL, vapid=vapid, vapid_contact=CONTACT).deliver_push() == 1
                [sent] = service.received
                check_vapid(sent["headers"], vapid_public_key(vapid), f"http://127.0.0.1:{service.port}")
                message = phone.decrypt(sent["body"])

                cdp = context.new_cdp_session(page)
                registrations: list[dict[str, Any]] = []
                cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
                cdp.send("ServiceWorker.enable")
                deadline = time.monotonic() + 10
                while not registrations and time.monotonic() < deadline:
                    page.wait_for_timeout(100)
                [registration] = [r for r in registrations if r["scopeURL"] == f"{url}/"]
                cdp.send("ServiceWorker.deliverPushMessage", {"origin": url, "registrationId":
                                                              registration["registrationId"],
                                                              "data": json.dumps(message)})
                shown: list[dict[str, Any]] = []
                deadline = time.monotonic() + 10
                while not shown and time.monotonic() < deadline:
                    shown = page.evaluate("""navigator.serviceWorker.ready.then(r => r.getNotifications())
                        .then(ns => ns.map(n => ({title: n.title, body: n.body, tag: n.tag})))""")
                    page.wait_for_timeout(100)
                assert shown == [{"title": "Limen alarm: Front door", "body": "audit_truncated at 2026-12-01T09:45:00Z",
                                  "tag": f"limen-alarm-{message['alarm_id']}"}]
            finally:
                browser.close()
    finally:
        service.server.shutdown()
        service.server.server_close()
