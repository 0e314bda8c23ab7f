"""Languages of the console, the door screen and the CLI: English and Simplified Chinese, from gettext catalogues.

The catalogues are `locale/<lang>/LC_MESSAGES/limen.po`, compiled in memory at
first use (Babel); English is the source text.  The language of a request is
`?lang=` (remembered in a cookie), else the browser's Accept-Language; it is set
for the whole request by `LanguageMiddleware`, so error pages and sentences built
in Python (the activity feed, notices) follow it too.  The CLI's language comes
from `--lang`, else `LANGUAGE` / `LC_ALL` / `LC_MESSAGES` / `LANG` (`cli_language`).

Templates use `{{ _("…") }}` (keyword arguments as `%(name)s`) and `{{ value|t }}`
for a word chosen at run time; Python marks text with `N_("…")` where it is
defined and translates it with `gettext` where it is shown.  Dates and times are
formatted by Babel in the lock's time zone (`format_when`).
"""

from __future__ import annotations

import gettext as _gettext
import io
import re
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from jinja2 import Environment
    from starlette.requests import Request
    from starlette.types import ASGIApp, Receive, Scope, Send

    from limen.service.lockservice import KioskResult

LANGS = ("en", "zh_CN")
COOKIE = "limen_lang"
LOCALE_DIR = Path(__file__).parent / "locale"
_current: ContextVar[str] = ContextVar("limen_lang", default="en")


@cache
def translations(lang: str) -> _gettext.NullTranslations:
    """The compiled catalogue of `lang` (English: the source text)."""
    if lang == "en":
        return _gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with open(LOCALE_DIR / lang / "LC_MESSAGES" / "limen.po", "rb") as f:
        catalog = read_po(f, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return _gettext.GNUTranslations(buf)


def choose(request: Request) -> str:
    """The request's language: ?lang=, the cookie, then Accept-Language (any Chinese → zh_CN)."""
    for value in (request.query_params.get("lang", ""), request.cookies.get(COOKIE, "")):
        if value in LANGS:
            return value
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return "en"


def activate(request: Request) -> str:
    lang = choose(request)
    _current.set(lang)
    return lang


def set_language(lang: str) -> None:
    """Use `lang` from here on in this context (the CLI; tests)."""
    _current.set(lang if lang in LANGS else "en")


def current() -> str:
    return _current.get()


class LanguageMiddleware:
    """Chooses the request's language before anything else runs (pages, API errors, the feed's sentences)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            from starlette.requests import Request

            activate(Request(scope))
        await self.app(scope, receive, send)


def cli_language(chosen: str | None, environ: dict[str, str]) -> str:
    """The CLI's language: `--lang`, else the POSIX variables in their order of precedence (any zh → zh_CN)."""
    candidates = [chosen or ""] + [environ.get(k, "") for k in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")]
    for value in candidates:
        for part in value.split(":"):
            tag = part.split(".")[0].strip().lower().replace("-", "_")
            if tag.startswith("zh"):
                return "zh_CN"
            if tag and tag not in ("c", "posix"):
                return "en"
    return "en"


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "translated where it is shown"
    return message


def gettext(message: str) -> str:
    if not message:
        return message
    return translations(_current.get()).gettext(message)


def message(text: str) -> str:
    """A message in the current language: the whole text, else one composed by the lock from a known pattern
    (`COMPOSED`: "expires in 3 h"), else the reason of a "field: reason" error; else as the lock wrote it."""
    whole = gettext(text)
    if whole != text or _current.get() == "en":
        return whole
    composed = _composed(text)
    if composed is not None:
        return composed
    field, sep, reason = text.partition(": ")
    if sep:
        return f"{field}: {_composed(reason) or gettext(reason)}"
    return text


# Text the lock composes from parts (lockservice, access): the pattern is translated, its parts are put back
# (themselves translated when they are known words, like a span's unit).
COMPOSED = (
    N_("expires in {span}"), N_("starts in {span}"), N_("expired {when}"), N_("valid from {when}"),
    N_("keypad locked out until {time}"), N_("{n} min"), N_("{n} h"), N_("{n} days"),
    N_("no user with id {id}"), N_("no issued code {id}"), N_("at most {n} files per enrolment"),
    N_("no way in yet: add a face or a PIN"), N_("no user '{name}' on this lock (see `limen users list`)"),
)


@cache
def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(re.escape(p) if i % 2 == 0 else rf"(?P<{p}>\d+)" if p == "n" else f"(?P<{p}>.+?)"
                    for i, p in enumerate(parts))
    return re.compile(f"^{regex}$")


def _composed(text: str) -> str | None:
    for template in COMPOSED:
        found = _pattern(template).match(text)
        if found:
            parts = {k: _composed(v) or v for k, v in found.groupdict().items()}
            return gettext(template).format(**parts)
    return None


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)


def install(env: Environment) -> None:
    """Give the templates `_()`, the `t` filter (a word chosen at run time) and `lang`, in the request's language."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["lang"] = lambda: _current.get().replace("_", "-")
    env.filters["t"] = lambda value: message(str(value)) if value is not None else ""


_WHEN = {"en": "EEE d MMM HH:mm", "zh_CN": "M月d日 EEE HH:mm"}
_WHEN_YEAR = {"en": "EEE d MMM y HH:mm", "zh_CN": "y年M月d日 EEE HH:mm"}
_BABEL = {"en": "en", "zh_CN": "zh_Hans_CN"}


def format_when(at: datetime, tz: ZoneInfo, lang: str | None = None, year: bool = False) -> str:
    """A moment in the lock's zone, in the language's own form, with the zone's abbreviation ("Tue 1 Dec 07:02
    CST", "12月1日 周二 07:02 CST"; `year`: "Tue 1 Dec 2026 07:02 CST")."""
    from babel.dates import format_datetime

    lang = lang if lang in LANGS else _current.get()
    value = at.astimezone(tz)
    pattern = (_WHEN_YEAR if year else _WHEN).get(lang, _WHEN["en"])
    return f"{format_datetime(value, pattern, tzinfo=tz, locale=_BABEL.get(lang, 'en'))} {value:%Z}"


def babel_locale(lang: str | None = None) -> str:
    """Babel's name for the language of this request (or `lang`)."""
    return _BABEL.get(lang or _current.get(), "en")


# Words the pages show from data (states, roles, kinds…): translated with `|t`, listed here for the catalogue.
WORDS = (
    N_("locked"), N_("unlocked"), N_("locking"), N_("unlocking"), N_("jammed"), N_("open"), N_("closed"),
    N_("owner"), N_("administrator"), N_("member"), N_("guest"), N_("enabled"), N_("disabled"),
    N_("face"), N_("fingerprint"), N_("pin"), N_("code"), N_("nfc"), N_("remote"), N_("key"), N_("rfid"),
    N_("active"), N_("revoked"), N_("expired"),
    N_("critical"), N_("warning"), N_("info"),
    N_("mon"), N_("tue"), N_("wed"), N_("thu"), N_("fri"), N_("sat"), N_("sun"),
    N_("mechanical key"), N_("offline code"), N_("available"),
    N_("single use"), N_("limited"), N_("period quota"), N_("read"), N_("manage"), N_("unlock"),
    N_("used up"), N_("this lock's own screen"), N_("service refused or unreachable"),
    N_("this channel cannot be used (check its URL)"),
)


def door_message(result: KioskResult, lang: str) -> str:
    """The door screen's sentence in `lang`, from the attempt's parts (English: as the lock composed it)."""
    if lang == "en":
        return result.message
    t = translations(lang)
    if result.opened:
        return t.gettext("Welcome, {name}").format(name=result.name) if result.name else t.gettext("opened")
    if result.locked_until:
        return t.gettext("locked out until {time}; use your key or wait").format(time=result.locked_until[11:16])
    if result.tries_left is not None:
        return t.ngettext("{message}, {n} try left", "{message}, {n} tries left", result.tries_left).format(
            message=t.gettext(result.base), n=result.tries_left)
    return t.gettext(result.base or result.message)
