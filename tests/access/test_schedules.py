from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from limen.access.model import Day, HolidaySchedule, OperatingMode, WeekDaySchedule, YearDaySchedule
from limen.access.schedules import (
    effective_mode,
    parse_days,
    parse_time_of_day,
    validate_holiday,
    validate_week_day,
    validate_year_day,
    week_day_allows,
    year_day_allows,
    zone,
)
from limen.errors import BadRequest

UTC_ZONE = ZoneInfo("UTC")
instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC))
minutes = st.integers(0, 1439)
SUNDAY_FIRST = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


@given(mask=st.integers(1, 127), a=minutes, b=minutes, when=instants)
def test_week_day_matches_reference(mask: int, a: int, b: int, when: datetime) -> None:
    start, end = sorted((a, b))
    if start == end:
        end = start + 1
    sched = WeekDaySchedule("u", 1, Day(mask), time(start // 60, start % 60),
                            time(end // 60, end % 60) if end < 1440 else time.max)
    minute_of_day = when.hour * 60 + when.minute
    sunday_index = (when.weekday() + 1) % 7
    expected = bool(mask & (1 << sunday_index)) and start <= minute_of_day < end
    assert week_day_allows(sched, when, UTC_ZONE) is expected


@given(start=instants, length=st.integers(1, 10**7), when=instants)
def test_year_day_matches_reference(start: datetime, length: int, when: datetime) -> None:
    sched = validate_year_day(YearDaySchedule("u", 1, start, start + timedelta(seconds=length)))
    assert year_day_allows(sched, when) is (start <= when < start + timedelta(seconds=length))


@given(start=instants, back=st.integers(0, 10**7))
def test_end_not_after_start_is_refused(start: datetime, back: int) -> None:
    with pytest.raises(BadRequest):
        validate_year_day(YearDaySchedule("u", 1, start, start - timedelta(seconds=back)))
    with pytest.raises(BadRequest):
        validate_holiday(HolidaySchedule(1, start, start - timedelta(seconds=back), OperatingMode.VACATION))


@given(a=minutes, b=minutes)
def test_week_day_end_before_start_is_refused(a: int, b: int) -> None:
    start, end = max(a, b), min(a, b)
    with pytest.raises(BadRequest):
        validate_week_day(WeekDaySchedule("u", 1, Day.MONDAY, time(start // 60, start % 60),
                                          time(end // 60, end % 60)))


@given(subset=st.sets(st.sampled_from(SUNDAY_FIRST), min_size=1))
def test_parse_days_roundtrip(subset: set[str]) -> None:
    mask = parse_days(",".join(sorted(subset)))
    assert {SUNDAY_FIRST[i] for i in range(7) if mask & (1 << i)} == subset


@pytest.mark.parametrize("bad", ["", "funday", "mo", "mon,xyz", "monday2"])
def test_unknown_days_are_refused(bad: str) -> None:
    with pytest.raises(BadRequest):
        parse_days(bad)


def test_day_presets_and_full_names() -> None:
    assert parse_days("weekdays") == parse_days("monday,tuesday,wed,thu,fri")
    assert parse_days("all") == Day(127)


@pytest.mark.parametrize("bad", ["25:00", "9", "aa:bb", "12:60"])
def test_bad_times(bad: str) -> None:
    with pytest.raises(BadRequest):
        parse_time_of_day(bad)


@pytest.mark.parametrize("index", [0, 11, -1])
def test_index_bounds(index: int) -> None:
    with pytest.raises(BadRequest):
        validate_week_day(WeekDaySchedule("u", index, Day.MONDAY, time(9), time(10)))


def test_naive_instants_and_unknown_zone_are_refused() -> None:
    with pytest.raises(BadRequest):
        validate_year_day(YearDaySchedule("u", 1, datetime(2026, 1, 1), datetime(2026, 1, 2)))
    with pytest.raises(BadRequest):
        zone("Mars/Olympus")


def test_holiday_lowest_index_wins() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    holidays = (HolidaySchedule(2, t, t + timedelta(days=1), OperatingMode.PRIVACY),
                HolidaySchedule(1, t, t + timedelta(days=1), OperatingMode.VACATION))
    assert effective_mode(OperatingMode.NORMAL, holidays, t) is OperatingMode.VACATION
    assert effective_mode(OperatingMode.NORMAL, holidays, t + timedelta(days=1)) is OperatingMode.NORMAL
