"""Schedules as stored: week-day and year-day schedules per user, lock-wide holidays (Matter).

Validation is `limen.access.schedules`'; this module reads and writes the rows,
authorised (`authority`) and audited (SCHEDULE_CHANGE).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, time

from limen.access import rows
from limen.access.authority import check_actor
from limen.access.context import AccessContext
from limen.access.directory import ensure_row, find_user
from limen.access.model import (
    AccessUser,
    Day,
    HolidaySchedule,
    OperatingMode,
    UserType,
    WeekDaySchedule,
    YearDaySchedule,
)
from limen.access.schedules import validate_holiday, validate_week_day, validate_year_day
from limen.audit.event import EventKind
from limen.db import transaction
from limen.errors import BadRequest, NotFound

_TABLES = {"week-day": "access_week_days", "year-day": "access_year_days", "holiday": "access_holidays"}


def week_days(conn: sqlite3.Connection, user_id: str) -> list[WeekDaySchedule]:
    return [rows.week_day_of(r) for r in conn.execute(
        "SELECT * FROM access_week_days WHERE user_id = ? ORDER BY sched_index", (user_id,))]


def year_days(conn: sqlite3.Connection, user_id: str) -> list[YearDaySchedule]:
    return [rows.year_day_of(r) for r in conn.execute(
        "SELECT * FROM access_year_days WHERE user_id = ? ORDER BY sched_index", (user_id,))]


def holidays(conn: sqlite3.Connection) -> list[HolidaySchedule]:
    return [rows.holiday_of(r) for r in conn.execute("SELECT * FROM access_holidays ORDER BY sched_index")]


def add_week_day(ctx: AccessContext, ref: str, index: int, days: Day, start: time, end: time, actor: str,
                 at: datetime) -> WeekDaySchedule:
    """Add or replace a week-day schedule; an unrestricted user becomes schedule-restricted (Matter)."""
    conn = ctx.conn
    with transaction(conn):
        user = find_user(conn, ref)
        schedule = validate_week_day(WeekDaySchedule(user.user_id, index, days, start, end))
        _schedule_target(conn, user, actor, at)
        conn.execute(
            "INSERT OR REPLACE INTO access_week_days VALUES (?, ?, ?, ?, ?)",
            (user.user_id, index, int(days), start.hour * 60 + start.minute, end.hour * 60 + end.minute))
    ctx.emit(EventKind.SCHEDULE_CHANGE, at, actor, user.user_id, "week-day schedule set", index=index,
             days=int(days), start=start.isoformat("minutes"), end=end.isoformat("minutes"))
    return schedule


def add_year_day(ctx: AccessContext, ref: str, index: int, start: datetime, end: datetime, actor: str,
                 at: datetime) -> YearDaySchedule:
    conn = ctx.conn
    with transaction(conn):
        user = find_user(conn, ref)
        schedule = validate_year_day(YearDaySchedule(user.user_id, index, start, end))
        _schedule_target(conn, user, actor, at)
        conn.execute("INSERT OR REPLACE INTO access_year_days VALUES (?, ?, ?, ?)",
                     (user.user_id, index, rows.iso(start), rows.iso(end)))
    ctx.emit(EventKind.SCHEDULE_CHANGE, at, actor, user.user_id, "year-day schedule set", index=index,
             start=rows.iso(start), end=rows.iso(end))
    return schedule


def _schedule_target(conn: sqlite3.Connection, user: AccessUser, actor: str, at: datetime) -> None:
    ensure_row(conn, user, actor, at)
    check_actor(conn, actor, touching=user.permission)
    if user.user_type is UserType.UNRESTRICTED:
        conn.execute("UPDATE access_users SET user_type = ? WHERE user_id = ?",
                     (UserType.SCHEDULE_RESTRICTED.value, user.user_id))


def add_holiday(ctx: AccessContext, index: int, start: datetime, end: datetime, mode: OperatingMode, actor: str,
                at: datetime) -> HolidaySchedule:
    schedule = validate_holiday(HolidaySchedule(index, start, end, mode))
    with transaction(ctx.conn):
        check_actor(ctx.conn, actor)
        ctx.conn.execute("INSERT OR REPLACE INTO access_holidays VALUES (?, ?, ?, ?)",
                         (index, rows.iso(start), rows.iso(end), mode.value))
    ctx.emit(EventKind.SCHEDULE_CHANGE, at, actor, None, "holiday schedule set", index=index,
             start=rows.iso(start), end=rows.iso(end), mode=mode.value)
    return schedule


def remove_schedule(ctx: AccessContext, kind: str, index: int, actor: str, at: datetime,
                    ref: str | None = None) -> None:
    if kind not in _TABLES:
        raise BadRequest("kind", "one of week-day, year-day, holiday")
    conn = ctx.conn
    with transaction(conn):
        check_actor(conn, actor)
        if kind == "holiday":
            cur = conn.execute("DELETE FROM access_holidays WHERE sched_index = ?", (index,))
            subject = None
        else:
            if ref is None:
                raise BadRequest("user", "name the user whose schedule to remove")
            subject = find_user(conn, ref).user_id
            cur = conn.execute(f"DELETE FROM {_TABLES[kind]} WHERE user_id = ? AND sched_index = ?",  # noqa: S608
                               (subject, index))
        if cur.rowcount == 0:
            raise NotFound(f"no {kind} schedule {index}")
    ctx.emit(EventKind.SCHEDULE_CHANGE, at, actor, subject, f"{kind} schedule removed", index=index)
