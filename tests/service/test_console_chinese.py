"""The console in Simplified Chinese, in Chromium: a browser that asks for zh-CN gets setup, the dashboard, people,
guests, activity and alarms in Chinese, with dates in Chinese form in the lock's zone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from limen import thresholds as T

from .browser import CHROMIUM, FLAGS, Server, live_server, need_chromium, shot
from .conftest import PASSWORD, PIN

WRONG = "951357"
ENGLISH_LEFT = re.compile(r"\b(the|and|your|code|codes|door|alarm|alarms|person|people|add|remove|save)\b", re.I)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    need_chromium()
    with live_server(tmp_path_factory.mktemp("limen-zh")) as srv:
        yield srv


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def visible_text(page: Any) -> str:
    """What a person reads in <main> (not code samples, names or URLs)."""
    return str(page.evaluate("""() => { const m = document.querySelector('main').cloneNode(true);
        m.querySelectorAll('code, kbd, script, .masked').forEach(e => e.remove());
        return m.innerText; }"""))


def test_console_journey_in_chinese(server: Server, playwright: Any) -> None:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
    try:
        context = browser.new_context(locale="zh-CN", viewport={"width": 1000, "height": 900})
        page = context.new_page()
        setup = server.app.state.ctx.setup_url().replace(f"http://127.0.0.1:{server.settings.port}", server.url)
        page.goto(setup)
        assert page.evaluate("document.documentElement.lang") == "zh-CN"
        assert "创建户主账户" in page.inner_text("h1")
        page.fill("input[name=username]", "olivia")
        page.fill("input[name=password]", PASSWORD)
        page.fill("input[name=password2]", "not the same password")
        page.fill("input[name=name]", "小丽")
        page.fill("input[name=pin]", PIN)
        page.click("#setup-form button[type=submit]")
        assert "两次输入的密码不一致" in page.inner_text("#error")  # an error in Chinese, the form kept
        page.fill("input[name=password]", PASSWORD)
        page.fill("input[name=password2]", PASSWORD)
        page.fill("input[name=pin]", PIN)
        page.click("#setup-form button[type=submit]")
        page.wait_for_selector("#lock-state")
        assert "您的户主账户已就绪" in page.inner_text(".notice")
        assert "开始使用" in page.inner_text("#checklist") and "录入您的人脸" in page.inner_text("#checklist")
        assert page.inner_text("#lock-state") == "已上锁"
        assert page.locator("#no-channel").inner_text().startswith("告警目前无处可发")
        kiosk = context.new_page()
        kiosk.goto(f"{server.url}/kiosk")  # the lock's own screen (pairs itself)
        for _ in range(T.WRONG_CODE_ENTRY_LIMIT):
            assert kiosk.request.post(f"{server.url}/api/kiosk/keypad", data={"entry": WRONG}).ok
        assert kiosk.request.post(f"{server.url}/api/kiosk/keypad", data={"entry": PIN}).json()["opened"] is False
        page.reload()
        shot(page, "console-zh-dashboard")
        page.goto(f"{server.url}/owner/activity")
        lines = page.locator("#activity li").all_inner_texts()
        assert any(re.search(r"\d+月\d+日 周.", line) for line in lines), lines  # Babel's Chinese date form
        assert any(re.search(r"门口有 5 次密码错误", line) for line in lines), lines  # the wrong codes…
        assert any(re.search(r"键盘锁定期间输入了 1 次密码", line) for line in lines), lines  # …and the one after
        page.goto(f"{server.url}/owner/alarms")
        assert "门口连续失败" in page.inner_text("#alarms")
        for path in ("/owner", "/owner/users", "/owner/guests", "/owner/activity", "/owner/alarms", "/owner/codes",
                     "/owner/tokens", "/owner/enrol"):
            page.goto(server.url + path)
            words = ENGLISH_LEFT.findall(visible_text(page))
            assert not words, (path, words)
        page.goto(f"{server.url}/owner/guests")
        page.fill("#guest-form input[name=name]", "保洁员")
        page.fill("#guest-form input[name=start]", "00:00")
        page.fill("#guest-form input[name=end]", "23:59")
        page.fill("#guest-form input[name=password]", PASSWORD)
        page.click("#add-guest-btn")
        page.wait_for_selector("#guest-code")
        assert "只显示这一次" in page.inner_text("#guest-issued")
        valid = page.inner_text('#guests tr[data-guest="保洁员"] td:nth-child(2)')
        assert re.search(r"\d{4}年\d+月\d+日 周.", valid), valid  # validity in Chinese form, the lock's zone
        shot(page, "console-zh-guest")
        page.click("#lang-switch")  # and back to English, remembered
        page.wait_for_selector("html[lang=en]")
        page.goto(f"{server.url}/owner")
        assert page.evaluate("document.documentElement.lang") == "en"
    finally:
        browser.close()
