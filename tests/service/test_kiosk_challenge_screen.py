"""The head-move challenge on the door screen in Chromium: the lock's moves are prompted one by one, in order, and a
static replay (the fake camera's still picture) is refused with "follow the prompts on the screen"."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from limen.service.messages import FOLLOW_PROMPTS

from .browser import Server, chromium, live_server, need_chromium, shot

# The preview is mirrored: a move "left" in the camera image is the person's own right.
SAYS = {"left": "Turn your head right", "right": "Turn your head left", "up": "Look up"}
FACE = "Look at the camera"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    need_chromium()
    with live_server(tmp_path_factory.mktemp("limen-challenge"), kiosk_challenge=True) as srv:
        srv.app.state.ctx.lock.first_owner("Bob", "604172")
        yield srv


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def test_prompts_follow_the_locks_moves_and_a_still_picture_is_refused(server: Server, playwright: Any) -> None:
    with chromium(playwright) as page:
        page.goto(f"{server.url}/kiosk")
        page.wait_for_selector("#face-unlock:not([disabled])", timeout=15_000)
        page.evaluate("""() => {
          window.__prompts = [];
          const p = document.getElementById('prompt');
          new MutationObserver(() => {
            if (!p.hidden && p.textContent && window.__prompts.at(-1) !== p.textContent)
              window.__prompts.push(p.textContent);
          }).observe(p, {childList: true, characterData: true, subtree: true, attributes: true});
        }""")
        with page.expect_response("**/api/kiosk/challenge") as issued:
            page.click("#face-unlock")
        moves = issued.value.json()["moves"]
        page.wait_for_selector("#prompt:not([hidden])", timeout=5_000)
        assert page.locator("#prompt").evaluate("e => parseFloat(getComputedStyle(e).fontSize)") >= 32  # large
        shot(page, "kiosk-challenge-prompt")
        page.wait_for_selector("#result.opened, #result.refused", timeout=60_000)
        prompts = page.evaluate("window.__prompts")
        assert prompts == [FACE, *[SAYS[m] for m in moves], FACE]
        assert page.inner_text("#result") == FOLLOW_PROMPTS
        assert page.get_attribute("#result", "data-opened") == "0"
        assert page.is_hidden("#prompt")
        shot(page, "kiosk-challenge-refused")
