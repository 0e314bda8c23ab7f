"""Schedules: validation of new ones and the pure checks the policy runs.

Matter semantics: a week-day schedule is a days mask with a start and end time
of day in the lock's local time zone; a year-day schedule is a pair of instants;
a holiday schedule switches the operating mode between two instants.  Every
interval is start-inclusive, end-exclusive, and `end` must be after `start`.
"""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from limen.access.model import (
    DAY_NAMES,
    AccessUser,
    Day,
    HolidaySchedule,
    OperatingMode,
    UserType,
    WeekDaySchedule,
    YearDaySchedule,
)
from limen.errors import BadRequest

MAX_SCHEDULES_PER_USER = 10     # NumberOfWeekDaySchedulesSupportedPerUser / year-day alike
MAX_HOLIDAYS = 10

# Python's weekday(): Monday = 0 … Sunday = 6.
_WEEKDAY_TO_DAY = (Day.MONDAY, Day.TUESDAY, Day.WEDNESDAY, Day.THURSDAY, Day.FRIDAY, Day.SATURDAY, Day.SUNDAY)


def parse_days(text: str) -> Day:
    """`"mon,tue,sat"`, `"all"`, `"weekdays"` or `"weekend"` → a days mask; unknown days are refused."""
    words = [w.strip().lower() for w in text.split(",") if w.strip()]
    if not words:
        raise BadRequest("days", "no day given")
    presets = {
        "all": Day(127),
        "weekdays": Day.MONDAY | Day.TUESDAY | Day.WEDNESDAY | Day.THURSDAY | Day.FRIDAY,
        "weekend": Day.SATURDAY | Day.SUNDAY,
    }
    mask = Day(0)
    for word in words:
        key = word[:3] if word not in presets else word
        if word in presets:
            mask |= presets[word]
        elif key in DAY_NAMES and DAY_NAMES[key].name.lower().startswith(word):  # type: ignore[union-attr]
            mask |= DAY_NAMES[key]
        else:
            raise BadRequest("days", f"unknown day {word!r} (use mon,tue,wed,thu,fri,sat,sun)")
    return mask


def parse_time_of_day(text: str, field: str = "time") -> time:
    try:
        hours, minutes = text.strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError as exc:
        raise BadRequest(field, f"{text!r} is not a time of day HH:MM") from exc


def validate_week_day(schedule: WeekDaySchedule) -> WeekDaySchedule:
    if not 1 <= schedule.index <= MAX_SCHEDULES_PER_USER:
        raise BadRequest("index", f"week-day schedule index must be 1..{MAX_SCHEDULES_PER_USER}")
    if not 0 < int(schedule.days) <= 127:
        raise BadRequest("days", "days mask must name at least one day")
    if schedule.end <= schedule.start:
        raise BadRequest("end", "end must be after start (use two schedules to cross midnight)")
    return schedule


def validate_year_day(schedule: YearDaySchedule) -> YearDaySchedule:
    if not 1 <= schedule.index <= MAX_SCHEDULES_PER_USER:
        raise BadRequest("index", f"year-day schedule index must be 1..{MAX_SCHEDULES_PER_USER}")
    _require_aware(schedule.start, "start")
    _require_aware(schedule.end, "end")
    if schedule.end <= schedule.start:
        raise BadRequest("end", "end must be after start")
    return schedule


def validate_holiday(schedule: HolidaySchedule) -> HolidaySchedule:
    if not 1 <= schedule.index <= MAX_HOLIDAYS:
        raise BadRequest("index", f"holiday schedule index must be 1..{MAX_HOLIDAYS}")
    _require_aware(schedule.start, "start")
    _require_aware(schedule.end, "end")
    if schedule.end <= schedule.start:
        raise BadRequest("end", "end must be after start")
    return schedule


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadRequest("timezone", f"unknown time zone {name!r}") from exc


def week_day_allows(schedule: WeekDaySchedule, at: datetime, tz: ZoneInfo) -> bool:
    local = at.astimezone(tz)
    if not schedule.days & _WEEKDAY_TO_DAY[local.weekday()]:
        return False
    return schedule.start <= local.time().replace(tzinfo=None) < schedule.end


def year_day_allows(schedule: YearDaySchedule, at: datetime) -> bool:
    return schedule.start <= at < schedule.end


def schedule_allows(
    user: AccessUser,
    week_days: list[WeekDaySchedule],
    year_days: list[YearDaySchedule],
    at: datetime,
    tz: ZoneInfo,
) -> bool:
    """Whether `user`'s type and schedules let them in at `at`.

    Week-day users need a matching week-day entry, year-day users a matching
    year-day entry; schedule-restricted users need a match in every kind of
    schedule they have (and at least one schedule).  Other types are not
    restricted by schedules.
    """
    week_ok = any(week_day_allows(s, at, tz) for s in week_days)
    year_ok = any(year_day_allows(s, at) for s in year_days)
    if user.user_type is UserType.WEEK_DAY_SCHEDULE:
        return week_ok
    if user.user_type is UserType.YEAR_DAY_SCHEDULE:
        return year_ok
    if user.user_type is UserType.SCHEDULE_RESTRICTED:
        if not week_days and not year_days:
            return False
        return (week_ok or not week_days) and (year_ok or not year_days)
    return True


def effective_mode(configured: OperatingMode, holidays: tuple[HolidaySchedule, ...], at: datetime) -> OperatingMode:
    """The configured mode, unless a holiday schedule covers `at` (lowest index wins)."""
    for holiday in sorted(holidays, key=lambda h: h.index):
        if holiday.start <= at < holiday.end:
            return holiday.mode
    return configured


def _require_aware(value: datetime, field: str) -> None:
    if value.tzinfo is None:
        raise BadRequest(field, "instant needs a time zone (e.g. 2026-01-01T08:00+00:00)")
