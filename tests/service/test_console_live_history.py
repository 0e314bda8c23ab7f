"""Live history: an attempt made through the door API appears on an open activity page, on the dashboard and
(as an alarm incident) on an open alarms page, without a reload; the fragments those pages fetch."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from limen import thresholds as T

from .browser import Server, chromium, live_server, need_chromium, shot
from .conftest import Owner
from .test_console_live import set_up_owner

WRONG = "951357"


def test_fragments_are_the_lists_alone(client: Any, owner: Owner) -> None:
    client.post("/api/kiosk/keypad", json={"entry": WRONG})
    r = client.get("/owner/fragments/activity", params={"outcome": "refused"})
    assert r.status_code == 200 and "<nav" not in r.text and "wrong code at the door" in r.text
    assert "wrong code" not in client.get("/owner/fragments/activity", params={"outcome": "opened"}).text
    assert "wrong code at the door" in client.get("/owner/fragments/recent").text
    for _ in range(T.WRONG_CODE_ENTRY_LIMIT):
        client.post("/api/kiosk/keypad", json={"entry": WRONG})
    incidents = client.get("/owner/fragments/incidents", params={"back_to": "alarms"}).text
    assert 'class="incident sev-warning' in incidents and 'name="back" value="alarms"' in incidents
    assert client.get("/owner/fragments/nothing").status_code == 404
    assert client.get("/owner/fragments/activity", params={"method": "teleport"}).status_code == 400


def test_fragments_need_the_owner(client: Any) -> None:
    r = client.get("/owner/fragments/activity", follow_redirects=False)
    assert r.status_code in (303, 401)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    need_chromium()
    with live_server(tmp_path_factory.mktemp("limen-live-history")) as srv:
        yield srv


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def test_an_api_attempt_appears_on_open_pages(server: Server, playwright: Any) -> None:
    with chromium(playwright) as owner, chromium(playwright) as alarms, chromium(playwright, 800, 480) as kiosk:
        set_up_owner(owner, server)
        alarms.context.add_cookies(owner.context.cookies())  # the same owner, a second tab
        owner.goto(f"{server.url}/owner/activity")
        alarms.goto(f"{server.url}/owner/alarms")
        for page in (owner, alarms):
            page.wait_for_timeout(1500)  # the stream's first state arrived
            page.evaluate("window.__sameDocument = true")  # gone if the page reloads
        assert owner.locator("#activity li.refused").count() == 0
        assert alarms.locator("#alarms li.incident").count() == 0
        kiosk.goto(f"{server.url}/kiosk")  # the lock's own screen pairs itself
        for _ in range(T.WRONG_CODE_ENTRY_LIMIT):
            r = kiosk.request.post(f"{server.url}/api/kiosk/keypad", data={"entry": WRONG})
            assert r.ok and r.json()["opened"] is False
        owner.locator("#activity li.refused", has_text=f"{T.WRONG_CODE_ENTRY_LIMIT} wrong codes at the door").wait_for(
            timeout=15_000)  # the page's CSP forbids eval, so no wait_for_function
        alarms.wait_for_selector("#alarms li.incident", timeout=15_000)
        text = alarms.inner_text("#alarms li.incident")
        assert re.search(r"\d+ failed attempts in a row at the door", text), text
        assert owner.evaluate("window.__sameDocument") and alarms.evaluate("window.__sameDocument")
        shot(owner, "console-activity-live")
        shot(alarms, "console-alarms-live")
        alarms.click("#alarms li.incident button.ack")  # the swapped-in list still works
        alarms.wait_for_selector("text=Alarm acknowledged")
