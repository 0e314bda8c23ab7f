"""A person's data as the lock holds it (`limen privacy export NAME`): plain JSON, never a secret.

Identity, access row, credentials (metadata only: no PIN hash, RFID digest or
offline-code secret, not even a PIN's length), schedules, consents, which
biometric references exist and where (the vault in `limen.db`, or k-of-n
fragments), offline codes issued by them (ids and validity, never the digits),
their devices paired for remote commands, the backup keys registered for them
(public keys), their web-console account (user name, authenticator enrolled or
not, open sessions, API tokens' names, scopes and last use: never a password,
secret or token), every audit record that names them, and the backups that hold
them (encrypted on the lock; uploaded to the cloud or not).  The cloud's side is
`GET /api/locks/{lock}/people/{user id}`.

Each package reads its own tables (`people`, `access.holdings`, `vault.records`, `link.commands`,
`link.backup`, `service.holdings`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from limen import people
from limen.access import holdings
from limen.errors import NotFound
from limen.link.backup import keys_of
from limen.link.commands import devices_of
from limen.service.holdings import account_of
from limen.vault.records import references_of

EXPORT_VERSION = 1


def export_person(conn: sqlite3.Connection, ref: str, records: Iterable[dict[str, Any]], at: datetime,
                  backups: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The export of the person named or identified by `ref`; `NotFound` when the lock does not know them.

    `records` are the audit records to search (all of them: `AuditLog.records()`); `backups` the lock's
    local backup files (`Backups.local_files()`), each of which holds everyone's data.
    """
    person = people.lookup(conn, ref)
    if person is None:
        raise NotFound(f"no person {ref!r} on this lock")
    uid = person.id
    access = holdings.held_about(conn, uid)
    registry = people.held_about(conn, uid)
    return {
        "v": EXPORT_VERSION,
        "exported_at": at.isoformat(),
        "identity": asdict(person),
        "access": access["access"],
        "credentials": access["credentials"],
        "pin_history_entries": access["pin_history_entries"],
        "schedules": access["schedules"],
        "consents": registry["consents"],
        "enrolments": registry["enrolments"],
        "templates": [_where(modality, stored_at, index) for modality, stored_at, index in references_of(conn, uid)],
        "codes_issued": access["codes_issued"],
        "paired_devices": devices_of(conn, uid),
        "backup_keys": keys_of(conn, uid),
        "web_account": account_of(conn, uid),
        "audit_records": [r for r in records if _names(r, uid)],
        "backups": [{**b, "holds": "everyone's access data, encrypted to the owner's keys (no templates)"}
                    for b in (backups or [])],
    }


def _names(record: dict[str, Any], uid: str) -> bool:
    data = record.get("data")
    return uid in (record.get("actor"), record.get("subject")) or (isinstance(data, dict) and data.get("user") == uid)


def _where(modality: str, stored_at: str, index: dict[str, object] | None) -> dict[str, Any]:
    if index is not None:
        where = f"{index.get('k', '?')}-of-{index.get('n', '?')} fragments in separate storage locations"
    else:
        where = "the template vault (sealed, in limen.db)"
    return {"modality": modality, "stored_at": stored_at, "where": where, "form": "protected template"}
