"""Guest access: a short door code for a window in local time ("the cleaner, Tuesday 9–12"), and why it holds.

A guest is a `guest` user with one PIN credential of `GUEST_CODE_DIGITS` random
digits, valid from..until (and optionally for a number of uses).  The code is
drawn by the lock (CSPRNG), never chosen, and shown once.  Why that many digits
(the most entries the keypad lockout lets anyone type during the window, times
the PINs one entry can test, over the code space): docs/service.md, checked by
tests/service/test_console_guests.py.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from limen import thresholds as T
from limen.access import pins
from limen.errors import BadRequest
from limen.service import i18n


@dataclass(frozen=True)
class GuestWindow:
    """When a guest may come, as instants (UTC-aware) and as the owner wrote them."""

    start: datetime
    end: datetime

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


def window(day: str, start: str, end: str, tz: ZoneInfo, now: datetime) -> GuestWindow:
    """From a local date and two local times (the pickers' values: 2026-12-08, 09:00, 12:00)."""
    try:
        when = date.fromisoformat(day.strip())
    except ValueError:
        raise BadRequest("day", "a date like 2026-12-08") from None
    times = []
    for name, text in (("start", start), ("end", end)):
        try:
            times.append(time.fromisoformat(text.strip()))
        except ValueError:
            raise BadRequest(name, "a time like 09:00") from None
    first = datetime.combine(when, times[0], tz)
    last = datetime.combine(when, times[1], tz)
    if last <= first:
        last += timedelta(days=1)  # 22:00–02:00 runs past midnight
    if last <= now:
        raise BadRequest("end", "this time is already over")
    if (last - first) > timedelta(hours=T.GUEST_MAX_HOURS):
        raise BadRequest("end", f"a guest code lasts at most {T.GUEST_MAX_HOURS} h")
    return GuestWindow(first, last)


def new_code(digits: int = T.GUEST_CODE_DIGITS) -> str:
    """Random digits the PIN rules accept (not one repeated digit, not a straight run)."""
    while True:
        code = "".join(secrets.choice("0123456789") for _ in range(digits))
        try:
            pins.validate_pin(code)
        except BadRequest:
            continue
        return code


def share_text(name: str, code: str, span: GuestWindow, tz: ZoneInfo) -> str:
    """What the owner sends the guest, in the console's language ("It works Tue 8 Dec from 09:00 to 12:00")."""
    locale = i18n.babel_locale()
    a, b = span.start.astimezone(tz), span.end.astimezone(tz)
    day = format_datetime(a, i18n.gettext("EEE d MMM"), tzinfo=tz, locale=locale)
    until = f"{b:%H:%M}" if a.date() == b.date() else \
        format_datetime(b, i18n.gettext("EEE d MMM HH:mm"), tzinfo=tz, locale=locale)
    return i18n.gettext("Hello {name}, your door code is {code}. It works {day} from {start} to {until} ({zone}). "
                        "Type it on the door's keypad and press OK.").format(
        name=name, code=code, day=day, start=f"{a:%H:%M}", until=until, zone=tz.key)
