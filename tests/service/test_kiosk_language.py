"""The door screen and the console in Simplified Chinese (gettext catalogue), chosen per browser or per choice."""

from __future__ import annotations

from typing import Any

from limen.service import i18n
from limen.service.messages import ENTER_PIN, LOCKED_OUT, NO_PIN_YET, NOT_NOW, NOT_RECOGNISED, WRONG_CODE

from .conftest import PIN, Owner

ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}


def test_every_door_message_has_a_chinese_translation() -> None:
    zh = i18n.translations("zh_CN")
    for message in (ENTER_PIN, LOCKED_OUT, NO_PIN_YET, NOT_NOW, NOT_RECOGNISED, WRONG_CODE, "Welcome, {name}",
                    "locked out until {time}; use your key or wait", "Checking…", "Locks again in {s} s"):
        assert zh.gettext(message) != message, message


def test_kiosk_speaks_the_browsers_language(client: Any, owner: Owner) -> None:
    page = client.get("/kiosk", headers=ZH)
    assert '<html lang="zh-CN">' in page.text and "看向摄像头并点击" in page.text
    assert 'data-t-checking="正在识别…"' in page.text
    assert "看向摄像头" not in client.get("/kiosk", headers={"Accept-Language": "en-GB"}).text
    opened = client.post("/api/kiosk/keypad", json={"entry": PIN}, headers=ZH).json()
    assert opened["message"] == "欢迎回家，Alice" and opened["name"] == "Alice"
    wrong = client.post("/api/kiosk/keypad", json={"entry": "951357"}, headers=ZH).json()
    assert wrong["message"] == f"密码错误，还可尝试 {wrong['tries_left']} 次"
    english = client.post("/api/kiosk/keypad", json={"entry": "951357"}).json()
    assert english["message"].startswith("code not accepted, ")


def test_a_chosen_language_is_remembered(client: Any, owner: Owner) -> None:
    r = client.get("/owner?lang=zh_CN")
    assert "家庭成员" in r.text and i18n.COOKIE in r.headers.get("set-cookie", "")
    assert "家庭成员" in client.get("/owner/users").text  # the cookie keeps it
    assert "People" in client.get("/owner/users?lang=en").text
