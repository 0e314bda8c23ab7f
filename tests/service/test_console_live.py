"""Live state in Chromium: lockout, its clearing and the door opening reach the console and the door screen by
server-sent events, without a reload."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from limen import thresholds as T

from .browser import Server, chromium, live_server, need_chromium, shot
from .conftest import PASSWORD, PIN

WRONG = "951357"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    need_chromium()
    with live_server(tmp_path_factory.mktemp("limen-live")) as srv:
        yield srv


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def set_up_owner(page: Any, server: Server) -> None:
    setup_url = server.app.state.ctx.setup_url().replace(f"http://127.0.0.1:{server.settings.port}", server.url)
    page.goto(setup_url)
    page.fill("input[name=username]", "olivia")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.fill("input[name=name]", "Olivia")
    page.fill("input[name=pin]", PIN)
    page.click("#setup-form button[type=submit]")
    page.wait_for_selector("#lock-state")


def keys(page: Any, typed: str) -> str:
    for key in typed:
        page.click(f'#keypad button[data-key="{key}"]')
    page.click('#keypad button[data-key="OK"]')
    page.wait_for_selector("#result.opened, #result.refused", timeout=20_000)
    return str(page.inner_text("#result"))


def test_lockout_clear_and_opening_are_pushed_live(server: Server, playwright: Any) -> None:
    with chromium(playwright) as owner, chromium(playwright, 800, 480) as kiosk:
        set_up_owner(owner, server)
        owner.evaluate("window.__sameDocument = true")  # gone if the page reloads
        assert owner.is_hidden("#lockout-state")
        kiosk.goto(f"{server.url}/kiosk")
        kiosk.wait_for_selector("#keypad button[data-key='OK']")
        kiosk.evaluate("window.__sameDocument = true")
        for _ in range(T.WRONG_CODE_ENTRY_LIMIT):
            keys(kiosk, WRONG)
        owner.wait_for_selector("#lockout-state:not([hidden])", timeout=10_000)  # pushed to the console
        until = server.app.state.ctx.runtime.access().load_state().lockout.locked_until
        assert owner.inner_text("#lockout-until") == f"{until:%H:%M}"
        kiosk.wait_for_selector("#door-live #lockout-state:not([hidden])", timeout=10_000)  # and to the door
        shot(kiosk, "kiosk-live-lockout")
        shot(owner, "console-live-lockout")
        owner.fill("form[action='/owner/lockout/clear'] input[name=password]", PASSWORD)
        owner.once("dialog", lambda d: d.accept())  # "Clear the lockout now?"
        owner.click("#clear-lockout")
        owner.wait_for_selector("text=Lockout cleared")
        kiosk.wait_for_selector("#door-live #lockout-state[hidden]", state="attached", timeout=10_000)
        owner.evaluate("window.__sameDocument = true")
        assert keys(kiosk, PIN) == "Welcome, Olivia"
        owner.wait_for_selector("#lock-state:text-is('unlocked')", timeout=10_000)
        owner.wait_for_selector("#relock-state:has-text('locks again in')", timeout=10_000)
        assert owner.evaluate("window.__sameDocument") and kiosk.evaluate("window.__sameDocument")
        shot(owner, "console-live-unlocked")
        owner.goto(f"{server.url}/owner/activity")  # the same events, as sentences
        feed = owner.locator("#activity li").all_inner_texts()
        assert any("Olivia opened with their PIN" in line for line in feed), feed
        assert any(f"{T.WRONG_CODE_ENTRY_LIMIT} wrong codes at the door" in line for line in feed), feed
        shot(owner, "console-activity")
        owner.goto(f"{server.url}/owner/alarms")
        assert owner.locator("#alarms li.incident").count() == 1  # one burst, one incident
        shot(owner, "console-alarms")
        owner.goto(f"{server.url}/owner/users")
        owner.click("#people a >> nth=0")
        owner.wait_for_selector("#person-name")
        shot(owner, "console-person")


def test_live_streams_need_an_owner_or_a_paired_screen(server: Server) -> None:
    import urllib.error
    import urllib.parse
    import urllib.request

    for path in ("/owner/live", "/kiosk/live"):
        request = urllib.request.Request(server.url + path, headers={"Accept": "text/event-stream"})
        try:
            with urllib.request.urlopen(request, timeout=5) as r:  # noqa: S310 - the test's own server
                status, where, kind = r.status, r.url, r.headers.get("content-type", "")
        except urllib.error.HTTPError as exc:
            status, where, kind = exc.code, "", ""
        # refused or sent elsewhere (to log in; before the owner is set up — this test may run first — to the
        # start page), never the stream
        assert status in (401, 403) or urllib.parse.urlsplit(where).path != path, (path, status, where)
        assert "text/event-stream" not in kind, (path, kind)
