"""Guest access: a short random code for a window in local time, shared as text and QR, used at the door,
its uses counted, revoked with a confirmation; and the arithmetic that keeps a short code unguessable."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from limen import thresholds as T
from limen.access import lockout, pins
from limen.access.model import LockConfig
from limen.errors import BadRequest
from limen.service import guests

from .browser import Server, chromium, live_server, need_chromium, shot
from .conftest import PASSWORD, Owner, csrf_of
from .test_console_live import keys, set_up_owner


def max_entries(seconds: float, config: LockConfig = LockConfig()) -> int:
    """The most keypad entries anyone can make in `seconds`: the entry limit per lockout, each lockout as long
    as the access engine makes it (`lockout.disable_time_s`)."""
    entries, elapsed, lockouts = 0, 0.0, 0
    while elapsed < seconds:
        entries += config.wrong_code_entry_limit
        elapsed += lockout.disable_time_s(config, lockouts)
        lockouts += 1
    return entries


def guess_chance(hours: float, digits: int = T.GUEST_CODE_DIGITS) -> float:
    """Upper bound on the chance that someone at the keypad hits a guest's code within `hours` (docs/service.md)."""
    return min(1.0, max_entries(hours * 3600) * pins.guesses_per_entry(digits) / 10**digits)


def test_short_codes_stay_unguessable_within_the_lockout() -> None:
    assert T.GUEST_CODE_DIGITS <= 10
    day = max_entries(24 * 3600)
    assert day == 55 and max_entries(T.GUEST_MAX_HOURS * 3600) == 205  # the figures docs/service.md quotes
    assert T.WRONG_CODE_ENTRY_LIMIT <= day < 24 * 3600 / T.USER_CODE_TEMPORARY_DISABLE_TIME_S  # the lockout bites
    assert max_entries(48 * 3600) > day  # more time, more tries …
    assert guess_chance(24) < 1e-5 and guess_chance(T.GUEST_MAX_HOURS) < 1e-4  # … still tiny
    assert guess_chance(24, 4) > 100 * guess_chance(24)  # why not 4 digits
    code = guests.new_code()
    assert len(code) == T.GUEST_CODE_DIGITS and code.isdigit()


def test_window_is_local_time_and_refuses_the_past() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    now = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    span = guests.window("2026-12-01", "09:00", "12:00", tz, now)
    assert span.start == datetime(2026, 12, 1, 1, 0, tzinfo=UTC) and span.hours == 3
    assert guests.window("2026-12-01", "22:00", "02:00", tz, now).hours == 4  # past midnight
    with pytest.raises(BadRequest, match="already over"):
        guests.window("2026-11-30", "09:00", "12:00", tz, now)
    with pytest.raises(BadRequest, match="date"):
        guests.window("tuesday", "09:00", "12:00", tz, now)


def test_a_bad_guest_form_comes_back_as_typed(client: Any, owner: Owner) -> None:
    page = client.get("/owner/guests")
    r = client.post("/owner/guests", data={"csrf": csrf_of(page.text), "name": "Cleaner", "day": "2020-01-07",
                                           "start": "09:00", "end": "12:00", "password": PASSWORD})
    assert r.status_code == 400 and "already over" in r.text
    assert 'value="Cleaner"' in r.text and 'value="2020-01-07"' in r.text
    assert client.get("/api/users").json()[0]["name"] == "Alice" and len(client.get("/api/users").json()) == 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    need_chromium()
    with live_server(tmp_path_factory.mktemp("limen-guests")) as srv:
        yield srv


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def test_guest_code_journey(server: Server, playwright: Any) -> None:
    with chromium(playwright) as owner, chromium(playwright, 800, 480) as kiosk:
        set_up_owner(owner, server)
        owner.goto(f"{server.url}/owner/guests")
        owner.fill("#guest-form input[name=name]", "Cleaner")
        owner.fill("#guest-form input[name=start]", "00:00")  # today, the lock's zone (the picker's default day)
        owner.fill("#guest-form input[name=end]", "23:59")
        owner.fill("#guest-form input[name=uses]", "2")
        owner.fill("#guest-form input[name=password]", PASSWORD)
        owner.click("#add-guest-btn")
        owner.wait_for_selector("#guest-code")
        code = owner.inner_text("#guest-code").strip()
        assert re.fullmatch(rf"\d{{{T.GUEST_CODE_DIGITS}}}", code)
        share = owner.input_value("#share-text")
        assert code in share and "Cleaner" in share and "00:00" in share and "23:59" in share
        assert owner.get_attribute("#share-qr", "src").startswith("data:image/svg+xml")
        shot(owner, "console-guest-code")
        owner.reload()
        assert owner.locator("#guest-code").count() == 0  # shown once; a reload issues nothing
        assert owner.locator("#guests tr[data-guest]").count() == 1
        kiosk.goto(f"{server.url}/kiosk")
        kiosk.wait_for_selector("#keypad button[data-key='OK']")
        assert keys(kiosk, code) == "Welcome, Cleaner"
        owner.reload()
        assert owner.inner_text('#guests tr[data-guest="Cleaner"] td:nth-child(3)') == "1"  # uses left
        owner.once("dialog", lambda d: d.dismiss())  # "Revoke Cleaner's code?" — no: nothing happens
        owner.click('#guests tr[data-guest="Cleaner"] button.revoke')
        assert owner.locator("#guests tr[data-guest]").count() == 1
        owner.once("dialog", lambda d: d.accept())
        owner.click('#guests tr[data-guest="Cleaner"] button.revoke')
        owner.wait_for_selector("text=Guest code revoked")
        assert owner.locator("#guests tr[data-guest]").count() == 0
        assert keys(kiosk, code).startswith("code not accepted")
