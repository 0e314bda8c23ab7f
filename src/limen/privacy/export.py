"""A person's data as the lock holds it (`limen privacy export NAME`): plain JSON, never a secret.

Identity, access row, credentials (metadata only: no PIN hash, RFID digest or
offline-code secret, not even a PIN's length), schedules, consents, which
biometric references exist and where (the vault in `limen.db`, or k-of-n
fragments), offline codes issued by them (ids and validity, never the digits),
their devices paired for remote commands, every audit record that names them,
and the backups that hold them (encrypted on the lock; uploaded to the cloud or
not).  The cloud's side is `GET /api/locks/{lock}/people/{user id}`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from limen.errors import NotFound

EXPORT_VERSION = 1
_CREDENTIAL_FIELDS = ("id", "cred_type", "cred_index", "revoked", "backup", "valid_from", "valid_until", "max_uses",
                      "uses", "expire_after_s", "first_used_at", "offline_uses", "offline_max_uses", "created_at",
                      "created_by")
_ACCESS_FIELDS = ("user_index", "unique_id", "status", "user_type", "credential_rule", "permission",
                  "pin_max_age_days", "last_pin_at", "created_at", "modified_at", "modified_by")


def export_person(conn: sqlite3.Connection, ref: str, records: Iterable[dict[str, Any]], at: datetime,
                  backups: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The export of the person named or identified by `ref`; `NotFound` when the lock does not know them.

    `records` are the audit records to search (all of them: `AuditLog.records()`); `backups` the lock's
    local backup files (`Backups.local_files()`), each of which holds everyone's data.
    """
    person = conn.execute("SELECT id, name, created_at, created_by FROM users WHERE id = ? OR name = ?",
                          (ref, ref)).fetchone()
    if person is None:
        raise NotFound(f"no person {ref!r} on this lock")
    uid = str(person["id"])
    return {
        "v": EXPORT_VERSION,
        "exported_at": at.isoformat(),
        "identity": dict(person),
        "access": _one(conn, f"SELECT {', '.join(_ACCESS_FIELDS)} FROM access_users WHERE user_id = ?",  # noqa: S608
                       uid),
        "credentials": _all(conn, f"SELECT {', '.join(_CREDENTIAL_FIELDS)} FROM access_credentials "  # noqa: S608
                                  "WHERE user_id = ? ORDER BY id", uid),
        "pin_history_entries": conn.execute("SELECT COUNT(*) FROM access_pin_history WHERE user_id = ?",
                                            (uid,)).fetchone()[0],
        "schedules": {
            "week_day": _all(conn, "SELECT sched_index, days_mask, start_minute, end_minute FROM access_week_days "
                                   "WHERE user_id = ?", uid),
            "year_day": _all(conn, "SELECT sched_index, start_at, end_at FROM access_year_days WHERE user_id = ?",
                             uid)},
        "consents": _all(conn, "SELECT modality, purpose, retention_days, given_at, recorded_by FROM consents "
                               "WHERE user_id = ? ORDER BY id", uid),
        "enrolments": _all(conn, "SELECT modality, samples, enrolled_at, enrolled_by FROM enrolments "
                                 "WHERE user_id = ? ORDER BY id", uid),
        "templates": [_where(r) for r in conn.execute(
            "SELECT modality, stored_at, fragments FROM vault_records WHERE user_id = ?", (uid,))],
        "codes_issued": _all(conn, "SELECT i.code_id, i.kind, i.start_at, i.end_at, i.uses_per_day, i.issued_at, "
                                   "r.revoked_at FROM access_codes_issued i JOIN access_credentials c "
                                   "ON c.id = i.credential_id LEFT JOIN access_code_revocations r "
                                   "ON r.code_id = i.code_id WHERE c.user_id = ?", uid),
        "paired_devices": _devices(conn, uid),
        "audit_records": [r for r in records if _names(r, uid)],
        "backups": [{**b, "holds": "everyone's access data, encrypted to the owner's keys (no templates)"}
                    for b in (backups or [])],
    }


def _names(record: dict[str, Any], uid: str) -> bool:
    data = record.get("data")
    return uid in (record.get("actor"), record.get("subject")) or (isinstance(data, dict) and data.get("user") == uid)


def _where(row: sqlite3.Row) -> dict[str, Any]:
    if row["fragments"]:
        index = json.loads(row["fragments"])
        where = f"{index.get('k', '?')}-of-{index.get('n', '?')} fragments in separate storage locations"
    else:
        where = "the template vault (sealed, in limen.db)"
    return {"modality": row["modality"], "stored_at": row["stored_at"], "where": where, "form": "protected template"}


def _devices(conn: sqlite3.Connection, uid: str) -> list[dict[str, Any]]:
    try:
        return _all(conn, "SELECT name, paired_at FROM link_devices WHERE owner = ?", uid)
    except sqlite3.OperationalError:  # the link was never used on this lock: no such table
        return []


def _one(conn: sqlite3.Connection, sql: str, uid: str) -> dict[str, Any] | None:
    row = conn.execute(sql, (uid,)).fetchone()
    return None if row is None else dict(row)


def _all(conn: sqlite3.Connection, sql: str, uid: str) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(sql, (uid,))]
