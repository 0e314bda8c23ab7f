"""Removing a co-owner in Chromium: the person page's remove form asks for the owner's password; without it the
console refuses (and the co-owner stays), with it the co-owner is removed (test_console_owner_step_up.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .browser import Server, chromium, live_server, need_chromium
from .conftest import PASSWORD
from .test_console_live import set_up_owner


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    need_chromium()
    with live_server(tmp_path_factory.mktemp("limen-step-up")) as srv:
        yield srv


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def test_removing_a_co_owner_in_the_console_needs_the_password(server: Server, playwright: Any) -> None:
    lock = server.app.state.ctx.lock
    with chromium(playwright) as page:
        page.on("dialog", lambda dialog: dialog.accept())  # the "Remove …?" question
        set_up_owner(page, server)
        me = next(u for u in lock.users() if u["permission"] == "owner")
        bob = lock.add_user(me["user_id"], "Bob", "503817", "owner")
        page.goto(f"{server.url}/owner/users/{bob}")
        page.click("#remove-person")
        page.wait_for_selector("#reason")
        assert "confirm with your password" in page.inner_text("#reason")
        assert any(u["user_id"] == bob for u in lock.users())  # nothing changed
        page.goto(f"{server.url}/owner/users/{bob}")
        page.fill('form:has(#remove-person) input[name="password"]', PASSWORD)
        page.click("#remove-person")
        page.wait_for_url("**/owner/users?done=removed")
        assert all(u["user_id"] != bob for u in lock.users())
