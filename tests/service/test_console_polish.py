"""Safety and polish: /docs and /redoc work with no network, TOTP by QR code, the first-run checklist,
a code issue a reload cannot repeat, confirmations on destructive forms."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from .browser import Server, chromium, live_server, need_chromium, shot
from .conftest import PASSWORD, Owner, csrf_of


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    need_chromium()
    with live_server(tmp_path_factory.mktemp("limen-docs")) as srv:
        yield srv


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def test_api_docs_load_with_the_network_blocked(server: Server, playwright: Any) -> None:
    with chromium(playwright, offline=True) as page:
        outside: list[tuple[str, str]] = []
        page.on("requestfailed", lambda r: outside.append((r.url, r.resource_type)))
        page.goto(f"{server.url}/docs")
        page.wait_for_selector(".swagger-ui .opblock-tag", timeout=20_000)  # rendered from /openapi.json
        assert page.locator(".opblock").count() > 10
        shot(page, "docs-offline")
        page.goto(f"{server.url}/redoc")
        page.wait_for_selector("[data-section-id], .api-content", timeout=20_000)
        assert "kiosk" in page.inner_text("body").lower()
        # no script, style or data from the Internet (ReDoc's own "powered by" logo is the one picture it asks for)
        assert not [u for u, kind in outside if not u.startswith(server.url) and kind != "image"], outside


def test_setup_shows_the_totp_key_as_a_qr_code(client: Any) -> None:
    page = client.get(f"/setup?token={client.app.state.ctx.setup_token}")
    qr = re.search(r'<img id="totp-qr" class="qr" src="(data:image/svg\+xml[^"]+)"', page.text)
    assert qr and "otpauth" not in page.text  # a picture to scan, not a URI to copy
    assert "digits, not one repeated digit" in page.text  # PIN rules before typing


def test_first_run_checklist_and_codes_shown_once(client: Any, owner: Owner) -> None:
    home = client.get("/owner")
    steps = re.findall(r'<li class="(todo|done good)">', home.text)
    assert steps == ["todo", "todo", "todo", "todo"]  # face, family, alarms, backup
    assert f'href="/owner/enrol?user={owner.user_id}"' in home.text
    client.app.state.ctx.lock.add_user(owner.user_id, "Bob", "604172")
    after = re.findall(r'<li class="(todo|done good)">', client.get("/owner").text)
    assert after == ["todo", "done good", "todo", "todo"]
    r = client.post("/owner/codes", data={"csrf": csrf_of(home.text), "kind": "single_use",
                                              "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/owner/codes?done=issued"
    first = client.get(r.headers["location"]).text
    assert re.search(r'id="issued-digits">\*\d+<', first)
    assert "issued-digits" not in client.get(r.headers["location"]).text  # a reload shows nothing again
    assert len(client.get("/api/codes").json()) == 1  # and issued nothing again
    assert 'class="inline confirm" data-confirm="Revoke this code?' in first
