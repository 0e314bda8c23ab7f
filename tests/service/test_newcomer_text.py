"""What a newcomer read wrong (issue 18): the door screen's code hint, the People page's hints, readable links."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from limen.service import i18n

from .conftest import Owner

CSS = Path(i18n.__file__).parent / "static" / "app.css"


def test_kiosk_hint_does_not_ask_for_a_star_before_guest_codes(client: Any, owner: Owner) -> None:
    page = client.get("/kiosk").text
    assert "Codes start with *" not in page
    assert "offline codes start with *" in page  # only `limen codes` offline codes take the star
    zh = client.get("/kiosk", headers={"Accept-Language": "zh-CN"}).text
    assert "临时码以 * 开头" not in zh and "离线码以 * 开头" in zh


def test_people_page_names_the_rfid_command_and_the_step_up(client: Any, owner: Owner) -> None:
    page = client.get("/owner/users").text
    assert "limen credentials add" in page and "RFID tags: limen users" not in page
    assert "An administrator needs your password" not in page
    assert "Adding a person needs your password" in page


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_kiosk_links_are_readable_on_the_dark_screen() -> None:
    css = CSS.read_text(encoding="utf-8")
    background = re.search(r"body\.kiosk \{[^}]*background: (#[0-9a-fA-F]{3,6})", css)
    link = re.search(r"body\.kiosk a \{[^}]*color: (#[0-9a-fA-F]{6})", css)
    assert background and link, "the kiosk sets its own link colour"
    bg = background.group(1)
    bg = "#" + "".join(c * 2 for c in bg[1:]) if len(bg) == 4 else bg
    assert _contrast(link.group(1), bg) >= 4.5  # WCAG AA for normal text
