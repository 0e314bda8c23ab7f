"""The console's "replace the face" page in Chromium: replacing a face needs the step-up (51f7446), so the page
asks for the password and enrol.js confirms it at /api/step-up before it sends the photos."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from .browser import Server, chromium, live_server, need_chromium
from .conftest import PASSWORD
from .test_console_live import set_up_owner


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    need_chromium()
    with live_server(tmp_path_factory.mktemp("limen-face")) as srv:
        yield srv


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def test_replacing_a_face_in_the_console_asks_for_the_password(server: Server, playwright: Any,
                                                                tmp_path: Path) -> None:
    photo = tmp_path / "wall.jpg"
    buf = io.BytesIO()
    Image.fromarray(np.full((480, 640, 3), 128, np.uint8)).save(buf, "JPEG")
    photo.write_bytes(buf.getvalue())
    with chromium(playwright) as page:
        set_up_owner(page, server)
        me = next(u for u in server.app.state.ctx.lock.users() if u["permission"] == "owner")
        page.goto(f"{server.url}/owner/enrol?user={me['user_id']}")
        page.check("#enrol-consent")
        page.set_input_files("#enrol-files", str(photo))
        page.click("#enrol-upload")
        page.wait_for_selector("#enrol-result.error")
        assert "confirm your password" in page.inner_text("#enrol-result")  # no password: refused before upload
        page.fill('#enrol-form input[name="password"]', PASSWORD)
        with page.expect_response("**/api/step-up") as stepped:
            page.click("#enrol-upload")
        assert stepped.value.status == 200
        page.wait_for_function("!document.querySelector('#enrol-result').textContent.includes('confirm your')")
        page.wait_for_selector("#enrol-result.error")  # past the step-up, a grey wall holds no usable face
        assert page.input_value('#enrol-form input[name="password"]') == ""  # not kept in the page
