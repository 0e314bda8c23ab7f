"""What the access tables hold about people, for the packages that must read or replace it whole.

Privacy (`erase`, `export`) and the backup (`link.backup`) go through these
functions, never through SQL of their own: the access package owns its tables.
Writers run inside the caller's transaction (the erasure and the restore are
each one transaction across packages: the caller passes its connection in).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from limen.access.model import CredentialRule, CredentialType, LockConfig, PermissionLevel, UserStatus, UserType
from limen.access.rows import config_of
from limen.db import insert_rows, table_rows

# What a backup of the lock's access state carries of this package, in insertion order.
BACKUP_TABLES: tuple[str, ...] = ("access_users", "access_credentials", "access_pin_history", "access_week_days",
                                  "access_year_days", "access_holidays", "access_lock", "access_code_uses",
                                  "access_code_revocations", "access_codes_issued")
_LOCK_WIDE_CODES = ("access_holidays", "access_code_uses", "access_code_revocations", "access_codes_issued",
                    "access_credential_removals")
_CREDENTIAL_FIELDS = ("id", "cred_type", "cred_index", "revoked", "backup", "valid_from", "valid_until", "max_uses",
                      "uses", "expire_after_s", "first_used_at", "offline_uses", "offline_max_uses", "created_at",
                      "created_by")
_ACCESS_FIELDS = ("user_index", "unique_id", "status", "user_type", "credential_rule", "permission",
                  "pin_max_age_days", "last_pin_at", "created_at", "modified_at", "modified_by")


def owner_ids(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT user_id FROM access_users WHERE permission = ?",
                                       (PermissionLevel.OWNER.value,))]


def disabled_ids(conn: sqlite3.Connection) -> frozenset[str]:
    return frozenset(r[0] for r in conn.execute("SELECT user_id FROM access_users WHERE status = ?",
                                                (UserStatus.DISABLED.value,)))


_RANK = {PermissionLevel.OWNER: 3, PermissionLevel.ADMINISTRATOR: 2, PermissionLevel.MEMBER: 1,
         PermissionLevel.GUEST: 0}


def permissions(conn: sqlite3.Connection) -> dict[str, PermissionLevel]:
    """Each person's permission level (for a restore to keep a demotion: `keep_lower_permissions`)."""
    return {r[0]: PermissionLevel(r[1]) for r in conn.execute("SELECT user_id, permission FROM access_users")}


def keep_lower_permissions(conn: sqlite3.Connection, before: dict[str, PermissionLevel]) -> int:
    """Lower each (restored) person to the permission `before` gives them where that is lower: a demotion made
    here since the backup stays (caller's transaction).  Return how many were lowered."""
    count = 0
    for user_id, level in permissions(conn).items():
        kept = before.get(user_id)
        if kept is not None and _RANK[kept] < _RANK[level]:
            count += conn.execute("UPDATE access_users SET permission = ? WHERE user_id = ?",
                                  (kept.value, user_id)).rowcount
    return count


# How much a user type restricts opening: non-access never opens; unrestricted and programming users open at any
# time; every other type restricts (schedules, one use, expiry, remote only, duress alarm).
_TYPE_RANK = {UserType.NON_ACCESS: 2, UserType.UNRESTRICTED: 0, UserType.PROGRAMMING: 0}


@dataclass(frozen=True)
class Restrictions:
    """What limits one person's opening here, for a restore to keep what was tightened since the backup."""

    user_type: UserType
    credential_rule: CredentialRule
    pin_max_age_days: int | None
    week_days: tuple[tuple[Any, ...], ...]  # access_week_days rows (sched_index, days_mask, start, end minute)
    year_days: tuple[tuple[Any, ...], ...]  # access_year_days rows (sched_index, start_at, end_at)


def restrictions(conn: sqlite3.Connection) -> dict[str, Restrictions]:
    """Each person's user type, credential rule, PIN age limit and schedules (`keep_restrictions`)."""
    week: dict[str, list[tuple[Any, ...]]] = {}
    year: dict[str, list[tuple[Any, ...]]] = {}
    for r in conn.execute("SELECT user_id, sched_index, days_mask, start_minute, end_minute FROM access_week_days"):
        week.setdefault(r[0], []).append(tuple(r[1:]))
    for r in conn.execute("SELECT user_id, sched_index, start_at, end_at FROM access_year_days"):
        year.setdefault(r[0], []).append(tuple(r[1:]))
    return {r[0]: Restrictions(UserType(r[1]), CredentialRule(r[2]), r[3], tuple(week.get(r[0], ())),
                               tuple(year.get(r[0], ())))
            for r in conn.execute("SELECT user_id, user_type, credential_rule, pin_max_age_days FROM access_users")}


def _stricter_type(now: UserType, restored: UserType) -> UserType:
    """Today's type where it restricts at least as much as the restored one (between two restricting types,
    today's: the owner's latest choice, kept with today's schedules)."""
    rank_now, rank_restored = _TYPE_RANK.get(now, 1), _TYPE_RANK.get(restored, 1)
    return now if rank_now > rank_restored or (rank_now == rank_restored == 1) else restored


def _stricter_age(now: int | None, restored: int | None) -> int | None:
    if now is None or restored is None:
        return restored if now is None else now
    return min(now, restored)


def keep_restrictions(conn: sqlite3.Connection, before: dict[str, Restrictions]) -> int:
    """For each (restored) person `before` also has, keep the stricter of the two (caller's transaction): the user
    type (`_stricter_type`: a non-access person stays non-access), the credential rule (more factors), the PIN age
    limit (the shorter), and — for a person who has any schedule in `before` — `before`'s week-day and year-day
    schedules in place of the backup's.  Return how many people kept something of `before`."""
    count = 0
    for user_id, restored in restrictions(conn).items():
        now = before.get(user_id)
        if now is None:
            continue
        kept = Restrictions(
            _stricter_type(now.user_type, restored.user_type),
            max(now.credential_rule, restored.credential_rule, key=lambda rule: rule.factors),
            _stricter_age(now.pin_max_age_days, restored.pin_max_age_days),
            now.week_days if now.week_days or now.year_days else restored.week_days,
            now.year_days if now.week_days or now.year_days else restored.year_days)
        if kept == restored:
            continue
        conn.execute("UPDATE access_users SET user_type = ?, credential_rule = ?, pin_max_age_days = ? "
                     "WHERE user_id = ?", (kept.user_type.value, kept.credential_rule.value, kept.pin_max_age_days,
                                           user_id))
        if (kept.week_days, kept.year_days) != (restored.week_days, restored.year_days):
            conn.execute("DELETE FROM access_week_days WHERE user_id = ?", (user_id,))
            conn.execute("DELETE FROM access_year_days WHERE user_id = ?", (user_id,))
            conn.executemany("INSERT INTO access_week_days(user_id, sched_index, days_mask, start_minute, "
                             "end_minute) VALUES (?, ?, ?, ?, ?)",
                             [(user_id, *row) for row in kept.week_days])
            conn.executemany("INSERT INTO access_year_days(user_id, sched_index, start_at, end_at) "
                             "VALUES (?, ?, ?, ?)",
                             [(user_id, *row) for row in kept.year_days])
        count += 1
    return count


# The lock-wide settings where a restore keeps the stricter of the lock's and the backup's: the fewer tries, the
# longer lockouts, the shorter strong-auth age and key-while-offline limit, the owner's PIN for remote actions.
_FEWER = ("wrong_code_entry_limit", "bio_failure_limit", "strong_auth_max_age_h", "mechanical_key_offline_limit")
_LONGER = ("user_code_temporary_disable_time_s", "lockout_escalation_factor", "lockout_max_disable_s")
# What of `access_lock` is this lock's own state, never a backup's: the keypad and biometric lockout, the operating
# mode, the owner's forced re-authentication and the link state (the PIN salt and other settings are the backup's).
_LOCK_OWN = ("mode", "wrong_code_count", "lockouts", "locked_until", "bio_fail_count", "wrong_window_count",
             "wrong_window_start", "owner_reauth_required", "online")


@dataclass(frozen=True)
class LockWide:
    """This lock's lock-wide state and use counts, for a restore to keep what an older backup would loosen."""

    lock: dict[str, Any] | None  # the access_lock row
    code_uses: tuple[tuple[str, str], ...]  # access_code_uses (code id, used at)
    credential_uses: dict[tuple[str, str, str], tuple[int, str | None, int]]  # (id, user, created): uses,
    #                                                                            first_used_at, offline_uses
    holidays: tuple[tuple[Any, ...], ...] = ()  # access_holidays rows (sched_index, start_at, end_at, mode)


def lock_wide(conn: sqlite3.Connection) -> LockWide:
    """The lock row, the offline codes' uses, each credential's use counts and the holidays (`keep_lock_wide`)."""
    row = conn.execute("SELECT * FROM access_lock WHERE id = 1").fetchone()
    return LockWide(
        None if row is None else dict(row),
        tuple((str(r[0]), str(r[1])) for r in conn.execute("SELECT code_id, used_at FROM access_code_uses")),
        {(str(r[0]), str(r[1]), str(r[2])): (int(r[3]), r[4], int(r[5])) for r in conn.execute(
            "SELECT id, user_id, created_at, uses, first_used_at, offline_uses FROM access_credentials")},
        _holidays(conn))


def _holidays(conn: sqlite3.Connection) -> tuple[tuple[Any, ...], ...]:
    return tuple(tuple(r) for r in conn.execute("SELECT sched_index, start_at, end_at, mode FROM access_holidays "
                                                "ORDER BY sched_index"))


def _keep_holidays(conn: sqlite3.Connection, before: tuple[tuple[Any, ...], ...]) -> bool:
    """Put back this lock's holidays in place of the backup's (caller's transaction); True when they differed."""
    if _holidays(conn) == before:
        return False
    conn.execute("DELETE FROM access_holidays")
    conn.executemany("INSERT INTO access_holidays(sched_index, start_at, end_at, mode) VALUES (?, ?, ?, ?)", before)
    return True


def _stricter_config(now: LockConfig, restored: LockConfig) -> LockConfig:
    fewer = {name: min(getattr(now, name), getattr(restored, name)) for name in _FEWER}
    longer = {name: max(getattr(now, name), getattr(restored, name)) for name in _LONGER}
    return replace(restored, require_pin_for_remote=now.require_pin_for_remote or restored.require_pin_for_remote,
                   **fewer, **longer)


def _earlier(now: str | None, restored: str | None) -> str | None:
    if now is None or restored is None:
        return restored if now is None else now
    return now if datetime.fromisoformat(now) < datetime.fromisoformat(restored) else restored


def keep_lock_wide(conn: sqlite3.Connection, before: LockWide) -> tuple[str, ...]:
    """After a restore loaded a backup's rows, keep this lock's own state `before` had (caller's transaction): the
    keypad lockout and its counters, the operating mode and the holidays (none on a replacement that has none: a
    backup's passage holiday would open the door at will), `owner_reauth_required`, each lock setting where it is
    stricter (`require_pin_for_remote` stays on); the offline codes' uses here join the backup's (revocations
    are the restore's `Revoked`); a credential the backup also holds keeps the higher use counts and the earlier
    first use (a used single-use code or one-use PIN stays used).  Return the names of what was kept that differed."""
    kept: list[str] = []
    if before.lock is not None:
        row = conn.execute("SELECT * FROM access_lock WHERE id = 1").fetchone()
        if row is None:
            insert_rows(conn, "access_lock", [before.lock])
            kept.append("lock_state")
        else:
            own = {name: before.lock[name] for name in _LOCK_OWN}
            own["key_offline_uses"] = max(int(before.lock["key_offline_uses"]), int(row["key_offline_uses"]))
            config = _stricter_config(config_of(before.lock["config"]), config_of(row["config"]))
            if config != config_of(row["config"]):
                own["config"] = json.dumps(asdict(config))
            changed = sorted(name for name, value in own.items() if value != row[name])
            if changed:
                conn.execute(f"UPDATE access_lock SET {', '.join(f'{n} = ?' for n in changed)} "  # noqa: S608
                             "WHERE id = 1", [own[n] for n in changed])  # names from _LOCK_OWN
                kept.extend("stricter_settings" if name == "config" else name for name in changed)
    kept += ["holidays"] if _keep_holidays(conn, before.holidays) else []
    uses = set(before.code_uses) - {(str(r[0]), str(r[1])) for r in conn.execute(
        "SELECT code_id, used_at FROM access_code_uses")}
    conn.executemany("INSERT INTO access_code_uses(code_id, used_at) VALUES (?, ?)", sorted(uses))
    kept += ["code_uses"] if uses else []
    raised = 0
    for r in conn.execute("SELECT id, user_id, created_at, uses, first_used_at, offline_uses "
                          "FROM access_credentials").fetchall():
        now = before.credential_uses.get((str(r[0]), str(r[1]), str(r[2])))
        if now is None:
            continue
        counts = (max(now[0], int(r[3])), _earlier(now[1], r[4]), max(now[2], int(r[5])))
        if counts != (int(r[3]), r[4], int(r[5])):
            raised += conn.execute("UPDATE access_credentials SET uses = ?, first_used_at = ?, offline_uses = ? "
                                   "WHERE id = ?", (*counts, r[0])).rowcount
    kept += ["credential_uses"] if raised else []
    return tuple(kept)


def disable(conn: sqlite3.Connection, user_ids: Iterable[str]) -> int:
    """Disable these users (caller's transaction); return how many were not disabled already."""
    return sum(conn.execute("UPDATE access_users SET status = ? WHERE status != ? AND user_id = ?",
                            (UserStatus.DISABLED.value, UserStatus.DISABLED.value, uid)).rowcount
               for uid in user_ids)


def revoke_codes(conn: sqlite3.Connection, code_ids: Iterable[str], at: datetime, by: str) -> int:
    """Record these offline codes as revoked (caller's transaction); return how many were not already."""
    return sum(conn.execute("INSERT OR IGNORE INTO access_code_revocations VALUES (?, ?, ?)",
                            (code_id, at.isoformat(), by)).rowcount for code_id in code_ids)


def revoked_code_ids(conn: sqlite3.Connection) -> frozenset[str]:
    return frozenset(r[0] for r in conn.execute("SELECT code_id FROM access_code_revocations"))


@dataclass(frozen=True)
class Retired:
    """What this lock refuses for good, for a restore to keep refusing it (`retired_credentials`)."""

    credentials: frozenset[tuple[str, str, str]]  # revoked or removed here: (credential id, user id, created at)
    pin_secrets: frozenset[bytes]  # PINs changed or removed here: the PIN history's stored secrets


def retired_credentials(conn: sqlite3.Connection) -> Retired:
    """The credentials revoked or removed here (`access_credential_removals`), by id, person and creation time
    (not by stored secret: a restore seals an offline-code secret again under a fresh nonce, and an old-format PIN
    is rewritten when first typed), and the stored secrets of PINs changed or removed here (the PIN history's)."""
    revoked = conn.execute("SELECT id, user_id, created_at FROM access_credentials WHERE revoked = 1").fetchall()
    removed = conn.execute("SELECT credential_id, user_id, created_at FROM access_credential_removals").fetchall()
    return Retired(
        frozenset((str(r[0]), str(r[1]), str(r[2])) for r in revoked + removed),
        frozenset(bytes(r[0]) for r in conn.execute("SELECT secret FROM access_pin_history")))


def revoke_retired(conn: sqlite3.Connection, retired: Retired) -> int:
    """Revoke the (restored) credentials that were revoked or retired here before (caller's transaction): the
    same credential (id, person, creation time), or a PIN whose stored secret was retired to the PIN history here.
    Return how many."""
    count = 0
    for r in conn.execute("SELECT id, user_id, created_at, cred_type, secret FROM access_credentials "
                          "WHERE revoked = 0").fetchall():
        if ((str(r["id"]), str(r["user_id"]), str(r["created_at"])) in retired.credentials
                or (r["cred_type"] == CredentialType.PIN.value and bytes(r["secret"]) in retired.pin_secrets)):
            count += conn.execute("UPDATE access_credentials SET revoked = 1 WHERE id = ?", (r["id"],)).rowcount
    return count


def revoke_credential_ids(conn: sqlite3.Connection, credential_ids: Iterable[str]) -> int:
    """Revoke these (restored) credentials by id (caller's transaction); return how many were not already."""
    return sum(conn.execute("UPDATE access_credentials SET revoked = 1 WHERE id = ? AND revoked = 0",
                            (credential_id,)).rowcount for credential_id in sorted(credential_ids))


def removed_user_ids(conn: sqlite3.Connection) -> frozenset[str]:
    """Users an owner removed (`access_user_removals`)."""
    return frozenset(r[0] for r in conn.execute("SELECT user_id FROM access_user_removals"))


def count_credentials(conn: sqlite3.Connection, cred_type: CredentialType | None = None) -> int:
    if cred_type is None:
        return int(conn.execute("SELECT COUNT(*) FROM access_credentials").fetchone()[0])
    return int(conn.execute("SELECT COUNT(*) FROM access_credentials WHERE cred_type = ?",
                            (cred_type.value,)).fetchone()[0])


def records_held(conn: sqlite3.Connection, user_id: str) -> dict[str, int]:
    """How many access records the lock holds of a person (for an erasure receipt), by kind."""
    tables = {"credentials": "access_credentials", "schedules_week_day": "access_week_days",
              "schedules_year_day": "access_year_days", "pin_history": "access_pin_history",
              "credential_removals": "access_credential_removals"}
    return {name: int(conn.execute(f"SELECT COUNT(*) FROM {table} WHERE user_id = ?",  # noqa: S608 - fixed names
                                   (user_id,)).fetchone()[0]) for name, table in tables.items()}


def forget_removal_traces(conn: sqlite3.Connection, user_id: str) -> int:
    """Delete the traces of a person's removed credentials (an erasure: the restore needs none of them, the
    backup's "erased" revocation drops the whole person); caller's transaction.  How many went."""
    return conn.execute("DELETE FROM access_credential_removals WHERE user_id = ?", (user_id,)).rowcount


def forget_lock_wide_codes(conn: sqlite3.Connection) -> None:
    """Delete holidays, every issued, used and revoked code and the removed credentials' traces (decommission;
    caller's transaction)."""
    for table in _LOCK_WIDE_CODES:
        conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names


def held_about(conn: sqlite3.Connection, user_id: str) -> dict[str, Any]:
    """A person's access row, credentials (metadata only: no PIN hash, tag digest or code secret), PIN history
    count, schedules and the offline codes they issued (`privacy export`)."""
    def one(sql: str) -> dict[str, Any] | None:
        row = conn.execute(sql, (user_id,)).fetchone()
        return None if row is None else dict(row)

    def every(sql: str) -> list[dict[str, Any]]:
        return [dict(r) for r in conn.execute(sql, (user_id,))]

    return {
        "access": one(f"SELECT {', '.join(_ACCESS_FIELDS)} FROM access_users WHERE user_id = ?"),  # noqa: S608
        "credentials": every(f"SELECT {', '.join(_CREDENTIAL_FIELDS)} FROM access_credentials "  # noqa: S608
                             "WHERE user_id = ? ORDER BY id"),
        "pin_history_entries": conn.execute("SELECT COUNT(*) FROM access_pin_history WHERE user_id = ?",
                                            (user_id,)).fetchone()[0],
        "schedules": {
            "week_day": every("SELECT sched_index, days_mask, start_minute, end_minute FROM access_week_days "
                              "WHERE user_id = ?"),
            "year_day": every("SELECT sched_index, start_at, end_at FROM access_year_days WHERE user_id = ?")},
        "codes_issued": every("SELECT i.code_id, i.kind, i.start_at, i.end_at, i.uses_per_day, i.issued_at, "
                              "r.revoked_at FROM access_codes_issued i JOIN access_credentials c "
                              "ON c.id = i.credential_id LEFT JOIN access_code_revocations r "
                              "ON r.code_id = i.code_id WHERE c.user_id = ?"),
    }


def backup_rows(conn: sqlite3.Connection) -> dict[str, list[sqlite3.Row]]:
    """This package's `BACKUP_TABLES`, whole (offline-code secrets as stored: the backup unseals them)."""
    return {table: table_rows(conn, table) for table in BACKUP_TABLES}


def clear_for_restore(conn: sqlite3.Connection) -> None:
    """Empty `BACKUP_TABLES` before a restore loads a backup's rows (caller's transaction)."""
    for table in BACKUP_TABLES:
        conn.execute(f"DELETE FROM {table}")  # noqa: S608 - names from BACKUP_TABLES


def restore_rows(conn: sqlite3.Connection, tables: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Insert a backup's rows of `BACKUP_TABLES` (caller's transaction, after `clear_for_restore`)."""
    return {table: insert_rows(conn, table, tables.get(table, [])) for table in BACKUP_TABLES}
