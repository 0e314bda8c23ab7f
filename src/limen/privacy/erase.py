"""Erasure on the lock: one person ("delete me") or the whole lock ("decommission").

`LockEraser.erase_person(user_id, …)` erases the person's biometric references
(vault records and their fragments, sealed fingerprint reference files), the person with every credential,
schedule, consent and enrolment (one transaction), and every local backup
file (each holds everyone's data; the next backup is made without the person),
the devices they paired for remote commands (name, public key) and the backup keys
registered for them or their devices (later backups are not encrypted to them; a hash
of each key stays on the removed list so that no restore registers it again).
The id is kept on the lock's erased list so that no older backup brings the
person back.  `decommission(…)` crypto-erases the template vault (every
template and fragment, every secret sealed under it), removes every person,
local backup, backup recipient key (and the removed keys' hashes) and paired device.  Both return counts of
what was erased (`{"vault_templates": 1, …}`), which go into the signed erasure
receipt, and write one PRIVACY audit record.  With match on sensor, `sensor_pages` deletes the person's pages
on the fingerprint module and `empty_sensor` empties its library before the crypto-erase (the module's password
is sealed under the vault); their counts (`sensor_pages_erased`, `sensor_pages_failed`, `sensor_emptied`,
`sensor_incomplete`) go into the receipt.  The audit trail itself is kept:
it is tamper-evident and records only pseudonymous ids.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from limen import people
from limen.access import holdings
from limen.audit.event import AuditSink, Event, EventKind
from limen.db import transaction
from limen.errors import BadRequest, NotFound, VaultErased
from limen.link.backup import Backups, Removal
from limen.link.commands import forget_devices
from limen.link.forward import forget_claim
from limen.privacy.scrub import forget_deleted, secure


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
    sensor_pages: Callable[[str, str, datetime], dict[str, int]] = lambda user_id, actor, at: {}  # on the module
    empty_sensor: Callable[[str, datetime], dict[str, int]] = lambda actor, at: {}  # the module's whole library

    def __post_init__(self) -> None:
        if self.backups.audit is None:  # the keys a backup's `prune` removes are audited here too
            self.backups.audit = self.audit

    def erase_person(self, user_id: str, actor: str, at: datetime) -> dict[str, int]:
        """Erase one person everywhere on the lock (see the module docstring); refused for the last owner."""
        if people.by_id(self.conn, user_id) is None:
            raise NotFound(f"no user with id {user_id}")
        if holdings.owner_ids(self.conn) == [user_id]:
            raise BadRequest("user", "the last owner cannot be erased alone: decommission the lock instead")
        secure(self.conn)  # whatever connection the caller gave: freed pages are zeroed
        try:
            templates = self.templates.delete(user_id)
        except VaultErased:
            templates = 0
        erased = {"vault_templates": templates, "fingerprint_references": self.fingers(user_id)}
        erased |= self.sensor_pages(user_id, actor, at)
        with transaction(self.conn):  # one transaction across the packages: each writes its own tables
            erased |= holdings.records_held(self.conn, user_id) | people.records_held(self.conn, user_id)
            erased["person"] = people.remove(self.conn, user_id)  # its access rows, consents, enrolments cascade
            holdings.forget_removal_traces(self.conn, user_id)  # (counted above as credential_removals)
            keys = self.backups.remove_keys_of(user_id, actor, at, Removal.ERASED)  # before their devices go
            erased["backup_keys"] = len(keys)
            erased["paired_devices"] = forget_devices(self.conn, user_id)
            self.backups.note_revocation("erased", user_id, at)
        erased["local_backups"] = self.backups.delete_local()
        forget_deleted(self.conn)  # the deleted rows leave the database's write-ahead log too
        self.audit.append(Event(EventKind.PRIVACY, at, actor=actor, subject=user_id, reason="person erased",
                                source="privacy", data=dict(erased)))
        return erased

    def decommission(self, actor: str, at: datetime) -> dict[str, int]:
        """Erase every person, template, backup, backup key and paired device of this lock."""
        secure(self.conn)
        on_sensor = self.empty_sensor(actor, at)  # while the module's sealed password can still be read
        self.templates.zeroize()  # every template, fragment and sealed secret is unreadable from here on
        everyone = people.ids(self.conn)
        erased = {"vault_zeroized": 1, "fingerprint_references": sum(self.fingers(uid) for uid in everyone)}
        erased |= on_sensor
        with transaction(self.conn):  # one transaction across the packages: each writes its own tables
            erased["people"] = people.count(self.conn)
            erased["credentials"] = holdings.count_credentials(self.conn)
            people.remove_everyone(self.conn)
            holdings.forget_lock_wide_codes(self.conn)
            erased["backup_keys"] = self.backups.forget_recipients()
            erased["paired_devices"] = forget_devices(self.conn)
            forget_claim(self.conn)
        erased["local_backups"] = self.backups.delete_local()
        forget_deleted(self.conn)
        self.audit.append(Event(EventKind.PRIVACY, at, actor=actor, subject="lock", reason="lock decommissioned",
                                source="privacy", data=dict(erased)))
        return erased

