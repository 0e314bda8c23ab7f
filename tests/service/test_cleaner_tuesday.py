""""A code for the cleaner, Tuesday 9–12", end to end on a lock clock we control: made in the console on Monday
(local time, Europe/Paris), refused on Monday and after 12:00, opening on Tuesday at 09:30 with a welcome, seen
in the owner's history by name; the share text says the day and the hours; and in Chromium, the form with the
date picker set to next Tuesday gives a code that is not valid yet."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from limen.clock import FixedClock
from limen.config import Settings
from limen.service import close_app, create_app

from .browser import Server, chromium, live_server, need_chromium, shot
from .conftest import PASSWORD, csrf_of, do_setup, make_client
from .test_console_live import keys, set_up_owner

PARIS = ZoneInfo("Europe/Paris")
MONDAY_3PM = datetime(2026, 12, 7, 15, 0, tzinfo=PARIS)


def local(day: date, hh: int, mm: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=PARIS)


def test_cleaner_tuesday_nine_to_twelve(settings: Settings) -> None:
    clock = FixedClock(MONDAY_3PM.astimezone(UTC))
    app = create_app(settings, clock=clock)
    try:
        with make_client(app) as client:
            owner = do_setup(client)
            ctx = client.app.state.ctx
            ctx.runtime.access().set_config(owner.user_id, clock.now(), timezone="Europe/Paris")
            page = client.get("/owner/guests")
            tuesday = MONDAY_3PM.date() + timedelta(days=1)
            r = client.post("/owner/guests", data={"csrf": csrf_of(page.text), "name": "Cleaner",
                                                   "day": tuesday.isoformat(), "start": "09:00", "end": "12:00",
                                                   "password": PASSWORD})
            assert r.status_code == 200 and "Guest code ready" in r.text
            code = re.search(r'id="guest-code">(\d+)<', r.text)
            assert code, r.text[:2000]
            share = re.search(r'id="share-text"[^>]*>([^<]+)<', r.text)
            assert share and "Tue 8 Dec from 09:00 to 12:00 (Europe/Paris)" in share.group(1), share

            def door() -> dict[str, Any]:
                answer: dict[str, Any] = client.post("/api/kiosk/keypad", json={"entry": code.group(1)}).json()
                return answer

            # Monday: outside its window a code reads like any wrong code (it tells a guesser nothing)
            assert door()["message"].startswith("code not accepted")
            clock.at = local(tuesday, 8, 59).astimezone(UTC)
            assert door()["opened"] is False  # a minute early
            clock.at = local(tuesday, 9, 30).astimezone(UTC)
            assert door()["message"] == "Welcome, Cleaner"
            clock.at = local(tuesday, 12, 1).astimezone(UTC)
            assert door()["opened"] is False  # the window is over
            feed = [(a.text, a.when) for a in ctx.lock.activity()]
            opened = [when for text, when in feed if text == "Cleaner opened with their guest code"]
            assert opened == ["Tue 8 Dec 09:30 CET"], feed  # the owner reads it by name, in the lock's zone
            guests = ctx.lock.guests()
            assert guests[0]["name"] == "Cleaner" and "09:00" in guests[0]["from"]
    finally:
        close_app(app)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    need_chromium()
    with live_server(tmp_path_factory.mktemp("limen-cleaner")) as srv:
        yield srv


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def test_cleaner_journey_in_chromium(server: Server, playwright: Any) -> None:
    zone = server.app.state.ctx.lock.zone()
    today = datetime.now(zone).date()
    tuesday = today + timedelta(days=(1 - today.weekday()) % 7 or 7)  # next Tuesday, never today
    with chromium(playwright) as owner, chromium(playwright, 800, 480) as kiosk:
        set_up_owner(owner, server)
        owner.click("nav a[href='/owner/guests']")
        owner.fill("#guest-form input[name=name]", "Cleaner")
        owner.fill("#guest-form input[name=day]", tuesday.isoformat())  # the date picker
        owner.fill("#guest-form input[name=start]", "09:00")
        owner.fill("#guest-form input[name=end]", "12:00")
        owner.fill("#guest-form input[name=password]", PASSWORD)
        owner.click("#add-guest-btn")
        owner.wait_for_selector("#guest-code")
        code = owner.inner_text("#guest-code").strip()
        share = owner.input_value("#share-text")
        assert "Tue" in share and "from 09:00 to 12:00" in share and code in share
        assert owner.inner_text('#guests tr[data-guest="Cleaner"] .state').startswith("starts in")
        shot(owner, "console-cleaner-tuesday")
        kiosk.goto(f"{server.url}/kiosk")
        kiosk.wait_for_selector("#keypad button[data-key='OK']")
        assert keys(kiosk, code).startswith("code not accepted")  # not Tuesday 9–12 yet
