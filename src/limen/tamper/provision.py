"""Leaving lockdown: the owner re-provisions the lock (fresh vault keys, sensors re-bound).

`reprovision(conn, store, audit, owner, pin, probes, at)`:

1. the owner is authenticated by the access engine (`AccessStore.authenticate`:
   a wrong PIN counts toward the keypad lockout) and must be an *owner*;
2. a response left unfinished must have been recovered (`open_runtime` does it),
   and an owner's lockdown is refused (`Conflict`: `limen access lockdown off`
   lifts it without erasing anything);
3. the vault is zeroized if it is not already erased, then re-provisioned with
   fresh keys: every previous template is gone, users enrol again (or, in a
   later issue, restore an encrypted backup);
4. the present sensors are bound again (the swapped camera was the reason?
   the owner is the one who decides it is legitimate);
5. the enrolment records of every face and fingerprint sealed under the old keys
   are forgotten (those people show as not enrolled, and `limen status` names
   them until they enrol again), their sealed fingerprint files (which no longer
   open) erased and their fingerprint credentials removed;
6. the lockdown is cleared and a SYSTEM event `lockdown_cleared` is audited,
   naming (by id) the people who must enrol again (`re_enrol`).

Clearing does not check that the tamper condition is gone: if the case is
still open the monitor trips again at once, which is the intended behaviour.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol

from limen.audit.event import AuditSink, Event, EventKind
from limen.db import transaction
from limen.errors import BadRequest, Conflict, LimenError
from limen.people import enrolment_rows, forget_enrolment
from limen.tamper.binding import SensorProbe, bind_sensors
from limen.tamper.journal import IntentJournal
from limen.tamper.lockdown import LockdownCause, clear_lockdown, lockdown_status

log = logging.getLogger(__name__)


class ProvisionableStore(Protocol):
    def zeroize(self) -> object: ...

    def reprovision(self) -> None: ...

    def status(self) -> Any: ...


def authenticate_owner(conn: sqlite3.Connection, audit: AuditSink, owner: str, pin: str, at: datetime) -> str:
    """The owner's user id, proven by their PIN; `BadRequest` (one message) otherwise."""
    from limen.access.model import PermissionLevel
    from limen.access.store import AccessStore

    user = AccessStore(conn, audit, source="tamper").authenticate(owner, pin, at)
    if user.permission is not PermissionLevel.OWNER:
        raise BadRequest("as", "only an owner can lift a tamper lockdown")
    return user.user_id


def reprovision(conn: sqlite3.Connection, store: ProvisionableStore, audit: AuditSink, journal: IntentJournal,
                owner_id: str, at: datetime, probes: Iterable[SensorProbe] = (),
                fingers: Callable[[str], int] | None = None) -> dict[str, Any]:
    """Steps 2–6 of the module docstring for an already authenticated owner; returns what was done.

    `fingers` erases a person's sealed fingerprint files (`Runtime.erase_fingers`): sealed under the old
    keys they no longer open, and one left behind makes every finger search at the door fail."""
    if journal.pending() is not None:
        raise Conflict("a tamper response is unfinished: restart the lock so that it completes first")
    was = lockdown_status(conn)
    if was.active and was.cause is LockdownCause.COMMAND:
        raise Conflict("this is an owner's lockdown, not a tamper's: lift it with `limen access lockdown off` "
                       "(nothing is erased); re-provisioning would erase every face and fingerprint")
    if str(store.status().state) != "erased":
        store.zeroize()
    store.reprovision()
    re_enrol = _forget_enrolments(conn)
    finger_files = sum(fingers(user_id) for user_id in re_enrol) if fingers is not None else 0
    bound = bind_sensors(conn, probes, owner_id, at)
    clear_lockdown(conn, owner_id, at)
    audit.append(Event(EventKind.SYSTEM, at, actor=owner_id, subject="lock", reason="lockdown_cleared",
                       source="tamper", data={"incident": was.incident, "was_active": was.active,
                                              "vault": "reprovisioned", "sensors_bound": sorted(bound),
                                              "re_enrol": re_enrol, "finger_files_erased": finger_files}))
    _remove_finger_credentials(conn, audit, re_enrol, owner_id, at)
    return {"incident": was.incident, "was_active": was.active, "vault": str(store.status().state),
            "sensors": bound, "re_enrol": re_enrol}


def _forget_enrolments(conn: sqlite3.Connection) -> list[str]:
    """Forget every biometric enrolment (their references were sealed under the erased keys); the people's ids."""
    rows = enrolment_rows(conn)
    with transaction(conn):
        for row in rows:
            forget_enrolment(conn, str(row["user_id"]), str(row["modality"]))
    return sorted({str(row["user_id"]) for row in rows})


def _remove_finger_credentials(conn: sqlite3.Connection, audit: AuditSink, user_ids: list[str], owner_id: str,
                               at: datetime) -> None:
    """The fingerprint credentials of people whose fingers went with the old keys (enrolling again adds one)."""
    from limen.access.model import BIOMETRIC_TYPES
    from limen.access.store import AccessStore

    access = AccessStore(conn, audit, source="tamper")
    for credential in access.credentials():
        if credential.user_id in user_ids and credential.type in BIOMETRIC_TYPES:
            try:
                access.remove_credential(credential.id, owner_id, at)
            except LimenError:  # the lockdown is already lifted; the finger opens nothing without its template
                log.exception("removing credential %s after re-provisioning failed", credential.id)
