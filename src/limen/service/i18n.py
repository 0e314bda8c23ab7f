"""Languages of the pages and the door screen: English and Simplified Chinese, from gettext catalogues.

The catalogues are `locale/<lang>/LC_MESSAGES/limen.po`, compiled in memory at
first use (Babel); English is the source text.  The language of a request is
`?lang=` (remembered in a cookie), else the browser's Accept-Language.  Templates
use `{{ _("…") }}`; door messages are composed by `door_message`.
"""

from __future__ import annotations

import gettext as _gettext
import io
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import Environment

if TYPE_CHECKING:
    from starlette.requests import Request

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


def gettext(message: str) -> str:
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)


def install(env: Environment) -> None:
    """Give the templates `_()` (and `lang`), following the request's language."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["lang"] = lambda: _current.get().replace("_", "-")


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
