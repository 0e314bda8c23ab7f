"""The door screen in Chromium: "Checking…" while the lock works, a welcome with the relock countdown, tries left,
the lockout's end in local time, and a layout that fits a 7-inch 800×480 screen and a phone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from limen import thresholds as T

from .browser import Server, chromium, live_server, need_chromium, shot

BOB_PIN = "604172"
WRONG = "951357"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    need_chromium()
    with live_server(tmp_path_factory.mktemp("limen-kiosk")) as srv:
        srv.app.state.ctx.lock.first_owner("Bob", BOB_PIN)
        yield srv


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def keys(page: Any, typed: str) -> str:
    for key in typed:
        page.click(f'#keypad button[data-key="{key}"]')
    page.click('#keypad button[data-key="OK"]')
    page.wait_for_selector("#result.opened, #result.refused", timeout=20_000)
    return str(page.inner_text("#result"))


def watch(page: Any) -> None:
    """Record every text #result shows and whether the face button was disabled at that moment."""
    page.evaluate("""() => {
      window.__seen = [];
      const r = document.getElementById('result'), b = document.getElementById('face-unlock');
      new MutationObserver(() => window.__seen.push([r.textContent, b.disabled]))
        .observe(r, {childList: true, characterData: true, subtree: true});
    }""")


def test_face_attempt_says_checking_with_the_button_disabled(server: Server, playwright: Any) -> None:
    with chromium(playwright) as page:
        page.goto(f"{server.url}/kiosk")
        page.wait_for_selector("#face-unlock:not([disabled])", timeout=15_000)
        watch(page)
        page.click("#face-unlock")
        page.wait_for_selector("#result.opened, #result.refused", timeout=60_000)
        seen = page.evaluate("window.__seen")
        assert ["Checking…", True] in seen, seen
        assert not page.is_disabled("#face-unlock")  # usable again once answered
        assert page.inner_text("#result") != "Checking…"


def test_keypad_welcome_countdown_tries_left_and_lockout(server: Server, playwright: Any) -> None:
    with chromium(playwright) as page:
        page.goto(f"{server.url}/kiosk")
        assert keys(page, BOB_PIN) == "Welcome, Bob"
        relock = page.inner_text("#relock")
        seconds = int(re.fullmatch(r"Locks again in (\d+) s", relock).group(1))  # type: ignore[union-attr]
        assert 0 < seconds <= T.AUTO_RELOCK_TIME_S
        page.wait_for_timeout(1500)
        later = int(re.fullmatch(r"Locks again in (\d+) s", page.inner_text("#relock")).group(1))  # type: ignore
        assert later < seconds  # it counts down without a reload
        shot(page, "kiosk-welcome")
        limit = server.app.state.ctx.runtime.access().load_state().config.wrong_code_entry_limit
        for n in range(1, limit):
            left = limit - n
            assert keys(page, WRONG) == f"code not accepted, {left} {'try' if left == 1 else 'tries'} left"
            assert page.get_attribute("#result", "data-tries-left") == str(left)
        shot(page, "kiosk-tries-left")
        text = keys(page, WRONG)
        until = server.app.state.ctx.runtime.access().load_state().lockout.locked_until
        assert until is not None
        assert text == f"locked out until {until:%H:%M}; use your key or wait"  # the lock's zone: UTC here
        assert keys(page, BOB_PIN).startswith("locked out until")  # even the right PIN waits
        shot(page, "kiosk-locked-out")


@pytest.mark.parametrize(("width", "height", "name"), [(800, 480, "kiosk-800x480"), (390, 844, "kiosk-phone")])
def test_door_screen_fits_small_screens(server: Server, playwright: Any, width: int, height: int, name: str) -> None:
    with chromium(playwright, width, height) as page:
        page.goto(f"{server.url}/kiosk")
        page.wait_for_selector("#keypad button[data-key='OK']")
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1  # no sideways scrolling
        for sel in ("#keypad button[data-key='OK']", "#keypad button[data-key='0']", "#face-unlock"):
            box = page.locator(sel).bounding_box()
            assert box["height"] >= 44 and box["width"] >= 44, (sel, box)  # large touch targets
        if height <= 480:  # the 7-inch screen: keypad and face button without scrolling
            for sel in ("#keypad button[data-key='OK']", "#face-unlock"):
                box = page.locator(sel).bounding_box()
                assert box["y"] + box["height"] <= height, (sel, box)
        shot(page, name)
