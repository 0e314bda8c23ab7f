"""Rows of the access tables ↔ model values, and the few row writes several repositories share."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import fields
from datetime import UTC, datetime, time

from limen.access.model import (
    AccessUser,
    Credential,
    CredentialRule,
    CredentialType,
    Day,
    HolidaySchedule,
    LockConfig,
    OperatingMode,
    PermissionLevel,
    UserStatus,
    UserType,
    WeekDaySchedule,
    YearDaySchedule,
)
from limen.errors import BadRequest

MAX_USERS = 65534


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def req_dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


def lock_salt(conn: sqlite3.Connection) -> bytes:
    """The lock-wide salt (PIN hashes of the old format, RFID digests)."""
    return bytes(conn.execute("SELECT pin_salt FROM access_lock WHERE id = 1").fetchone()[0])


def insert_access_user(conn: sqlite3.Connection, user_id: str, index: int, permission: PermissionLevel,
                       user_type: UserType, rule: CredentialRule, unique_id: str | None, actor: str,
                       at: datetime) -> None:
    conn.execute(
        "INSERT INTO access_users(user_id, user_index, unique_id, status, user_type, credential_rule, permission,"
        " created_at, modified_at, modified_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (user_id, index, unique_id, UserStatus.ENABLED.value, user_type.value, rule.value, permission.value,
         iso(at), iso(at), actor),
    )


def next_index(conn: sqlite3.Connection) -> int:
    used = {r[0] for r in conn.execute("SELECT user_index FROM access_users")}
    for index in range(1, MAX_USERS + 1):
        if index not in used:
            return index
    raise BadRequest("index", "no free user slot")


def config_of(text: str) -> LockConfig:
    data = json.loads(text)
    known = {f.name for f in fields(LockConfig)}
    return LockConfig(**{k: v for k, v in data.items() if k in known})


def user_of(user_id: str, name: str, r: sqlite3.Row | None) -> AccessUser:
    """The access view of a person (`r`: their access row; None for a face-enrolled person without one)."""
    if r is None:
        return AccessUser(user_id=user_id, index=0, name=name, implicit=True)
    return AccessUser(
        user_id=user_id,
        index=r["user_index"],
        name=name,
        status=UserStatus(r["status"]),
        user_type=UserType(r["user_type"]),
        credential_rule=CredentialRule(r["credential_rule"]),
        permission=PermissionLevel(r["permission"]),
        unique_id=r["unique_id"],
        pin_max_age_days=r["pin_max_age_days"],
        last_pin_at=dt(r["last_pin_at"]),
    )


def credential_of(r: sqlite3.Row) -> Credential:
    return Credential(
        id=r["id"],
        user_id=r["user_id"],
        type=CredentialType(r["cred_type"]),
        index=r["cred_index"],
        secret=bytes(r["secret"]),
        pin_length=r["pin_length"],
        revoked=bool(r["revoked"]),
        backup=bool(r["backup"]),
        created_at=dt(r["created_at"]),
        valid_from=dt(r["valid_from"]),
        valid_until=dt(r["valid_until"]),
        max_uses=r["max_uses"],
        uses=r["uses"],
        expire_after_first_use_s=r["expire_after_s"],
        first_used_at=dt(r["first_used_at"]),
        offline_uses=r["offline_uses"],
        offline_max_uses=r["offline_max_uses"],
    )


def week_day_of(r: sqlite3.Row) -> WeekDaySchedule:
    def minute(m: int) -> time:
        return time.max if m >= 1440 else time(m // 60, m % 60)

    return WeekDaySchedule(r["user_id"], r["sched_index"], Day(r["days_mask"]), minute(r["start_minute"]),
                           minute(r["end_minute"]))


def year_day_of(r: sqlite3.Row) -> YearDaySchedule:
    return YearDaySchedule(r["user_id"], r["sched_index"], req_dt(r["start_at"]), req_dt(r["end_at"]))


def holiday_of(r: sqlite3.Row) -> HolidaySchedule:
    return HolidaySchedule(r["sched_index"], req_dt(r["start_at"]), req_dt(r["end_at"]),
                           OperatingMode(r["mode"]))
