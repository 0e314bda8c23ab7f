"""Every message the console, the door screen and the CLI show is in the zh_CN catalogue (extracted with Babel
from the templates and the code, as `pybabel extract` would), with the same placeholders; dates are Babel's."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from limen.service import i18n

SRC = Path(i18n.__file__).resolve().parents[1]  # src/limen
CATALOGUE = Path(i18n.__file__).parent / "locale" / "zh_CN" / "LC_MESSAGES" / "limen.po"
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
SOURCES = {  # the CLI translates with limen.cli.common.gettext
    "service": ([("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")], KEYWORDS),
    "cli": ([("**.py", "python")], KEYWORDS),
}
PLACEHOLDER = re.compile(r"\{\w+\}|%\(\w+\)s")


def extracted() -> dict[str, tuple[str, int]]:
    """msgid → (file, line) of every translatable literal in the service and the CLI."""
    found: dict[str, tuple[str, int]] = {}
    for sub, (methods, keywords) in SOURCES.items():
        for filename, lineno, message, _comments, _context in extract_from_dir(
                SRC / sub, methods, keywords=keywords, options_map={"templates/**.html": {"trimmed": "false"}}):
            for msgid in (message if isinstance(message, tuple) else (message,)):
                if msgid:
                    found.setdefault(msgid, (f"{sub}/{filename}", lineno))
    return found


def test_extraction_sees_the_console() -> None:
    ids = extracted()
    assert len(ids) > 300, len(ids)  # templates, notices, feed sentences, CLI messages
    for sample in ("Where alarms go", "Add a person", "{n} wrong codes at the door", "Alarm channel added: send it "
                   "a test to be sure it reaches you.", "Audit trail", "(no alarms queued)",
                   "error:", "no users", "added {name} (index {index}, {permission})", "in {ms} ms"):  # the CLI
        assert sample in ids, sample


def test_every_message_has_a_chinese_translation_with_the_same_placeholders() -> None:
    with CATALOGUE.open("rb") as f:
        catalogue = read_po(f, locale="zh_CN")
    missing, broken = [], []
    for msgid, (where, line) in sorted(extracted().items()):
        entry = catalogue.get(msgid) or next((m for m in catalogue if isinstance(m.id, tuple) and msgid in m.id), None)
        strings = entry.string if entry is not None else ""
        texts = [s for s in (strings if isinstance(strings, tuple) else (strings,)) if s]
        if not texts:
            missing.append(f"{where}:{line}: {msgid!r}")
            continue
        wanted = set(PLACEHOLDER.findall(msgid)) - ({"{n}"} if entry is not None and isinstance(entry.id, tuple)
                                                   else set())
        if any(not wanted <= set(PLACEHOLDER.findall(t)) for t in texts):
            broken.append(f"{where}:{line}: {msgid!r} → {texts!r}")
    assert not missing, f"{len(missing)} untranslated:\n" + "\n".join(missing)
    assert not broken, "placeholders lost:\n" + "\n".join(broken)


@pytest.mark.parametrize(("lang", "expected"), [("en", r"Tue 1 Dec 13:05 CST"), ("zh_CN", r"12月1日 周二 13:05 CST")])
def test_dates_in_the_locks_zone_and_language(lang: str, expected: str) -> None:
    at = datetime(2026, 12, 1, 5, 5, tzinfo=UTC)
    assert i18n.format_when(at, ZoneInfo("Asia/Shanghai"), lang) == expected


@pytest.mark.parametrize(("flag", "env", "expected"), [
    (None, {"LANG": "zh_CN.UTF-8"}, "zh_CN"), (None, {"LANG": "de_DE.UTF-8"}, "en"),
    (None, {"LANGUAGE": "zh_TW:en", "LANG": "en_US.UTF-8"}, "zh_CN"), (None, {"LC_ALL": "C", "LANG": "zh_CN"}, "zh_CN"),
    ("en", {"LANG": "zh_CN.UTF-8"}, "en"), (None, {}, "en"),
])
def test_cli_language_from_flag_and_environment(flag: str | None, env: dict[str, str], expected: str) -> None:
    assert i18n.cli_language(flag, env) == expected


@pytest.mark.parametrize(("text", "zh"), [
    ("expires in 3 h", "3 小时后到期"), ("starts in 45 min", "45 分钟后生效"),
    ("keypad locked out until 07:02", "键盘锁定至 07:02"), ("used up", "已用完"),
    ("password: the two passwords differ", "password: 两次输入的密码不一致"),
    ("Olivia h", "Olivia h"), ("something the catalogue never saw", "something the catalogue never saw"),
])
def test_text_the_lock_composes_is_translated_from_its_pattern(text: str, zh: str) -> None:
    i18n.set_language("zh_CN")
    try:
        assert i18n.message(text) == zh
    finally:
        i18n.set_language("en")
    assert i18n.message(text) == text  # English: as the lock wrote it
