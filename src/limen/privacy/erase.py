"""Erasure on the lock: one person ("delete me") or the whole lock ("decommission").

`LockEraser.erase_person(user_id, …)` erases the person's biometric references
(vault records and their fragments, sealed fingerprint reference files), the person with every credential,
schedule, consent and enrolment (one transaction), and every local backup
file (each holds everyone's data; the next backup is made without the person),
and the devices they paired for remote commands (name, public key).
The id is kept on the lock's erased list so that no older backup brings the
person back.  `decommission(…)` crypto-erases the template vault (every
template and fragment, every secret sealed under it), removes every person,
local backup, backup recipient key and paired device.  Both return counts of
what was erased (`{"vault_templates": 1, …}`), which go into the signed erasure
receipt, and write one PRIVACY audit record.  The audit trail itself is kept:
it is tamper-evident and records only pseudonymous ids.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from limen.audit.event import AuditSink, Event, EventKind
from limen.db import transaction
from limen.errors import BadRequest, NotFound, VaultErased
from limen.link.backup import Backups

# What a person's erasure counts, table by table (all cascade from `users`).
_PERSON_TABLES = {"credentials": "access_credentials", "schedules_week_day": "access_week_days",
                  "schedules_year_day": "access_year_days", "pin_history": "access_pin_history",
                  "consents": "consents", "enrolments": "enrolments"}


class ErasableTemplates(Protocol):
    def delete(self, user_id: str) -> int:
        """Erase every reference of `user_id`; return how many (raises VaultErased after a zeroize)."""
        ...

    def zeroize(self) -> object:
        """Crypto-erase the whole vault."""
        ...


@dataclass
class LockEraser:
    conn: sqlite3.Connection
    templates: ErasableTemplates
    audit: AuditSink
    backups: Backups
    fingers: Callable[[str], int] = lambda user_id: 0  # erases a person's fingerprint reference files

    def erase_person(self, user_id: str, actor: str, at: datetime) -> dict[str, int]:
        """Erase one person everywhere on the lock (see the module docstring); refused for the last owner."""
        if self.conn.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchone() is None:
            raise NotFound(f"no user with id {user_id}")
        owners = [r[0] for r in self.conn.execute("SELECT user_id FROM access_users WHERE permission = 'owner'")]
        if owners == [user_id]:
            raise BadRequest("user", "the last owner cannot be erased alone: decommission the lock instead")
        try:
            templates = self.templates.delete(user_id)
        except VaultErased:
            templates = 0
        erased = {"vault_templates": templates, "fingerprint_references": self.fingers(user_id)}
        with transaction(self.conn):
            for name, table in _PERSON_TABLES.items():
                erased[name] = int(self.conn.execute(f"SELECT COUNT(*) FROM {table} WHERE user_id = ?",  # noqa: S608
                                                     (user_id,)).fetchone()[0])
            erased["person"] = self.conn.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount
            erased["paired_devices"] = self.conn.execute("DELETE FROM link_devices WHERE owner = ?",
                                                         (user_id,)).rowcount
            self.backups.note_revocation("erased", user_id, at)
        erased["local_backups"] = self.backups.delete_local()
        self.audit.append(Event(EventKind.PRIVACY, at, actor=actor, subject=user_id, reason="person erased",
                                source="privacy", data=dict(erased)))
        return erased

    def decommission(self, actor: str, at: datetime) -> dict[str, int]:
        """Erase every person, template, backup, backup key and paired device of this lock."""
        self.templates.zeroize()  # first: every template, fragment and sealed secret is unreadable from here on
        people = [r[0] for r in self.conn.execute("SELECT id FROM users")]
        erased = {"vault_zeroized": 1, "fingerprint_references": sum(self.fingers(uid) for uid in people)}
        with transaction(self.conn):
            erased["people"] = int(self.conn.execute("SELECT COUNT(*) FROM users").fetchone()[0])
            erased["credentials"] = int(self.conn.execute("SELECT COUNT(*) FROM access_credentials").fetchone()[0])
            self.conn.execute("DELETE FROM users")
            for table in ("access_holidays", "access_code_uses", "access_code_revocations", "access_codes_issued"):
                self.conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
            erased["backup_keys"] = self.conn.execute("DELETE FROM backup_recipients").rowcount
            erased["paired_devices"] = self.conn.execute("DELETE FROM link_devices").rowcount
            self.conn.execute("DELETE FROM link_claim")
        erased["local_backups"] = self.backups.delete_local()
        self.audit.append(Event(EventKind.PRIVACY, at, actor=actor, subject="lock", reason="lock decommissioned",
                                source="privacy", data=dict(erased)))
        return erased

