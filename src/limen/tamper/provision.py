"""Leaving lockdown: the owner re-provisions the lock (fresh vault keys, sensors re-bound).

`reprovision(conn, store, audit, owner, pin, probes, at)`:

1. the owner is authenticated by the access engine (`AccessStore.authenticate`:
   a wrong PIN counts toward the keypad lockout) and must be an *owner*;
2. a response left unfinished must have been recovered (`open_runtime` does it);
3. the vault is zeroized if it is not already erased, then re-provisioned with
   fresh keys: every previous template is gone, users enrol again (or, in a
   later issue, restore an encrypted backup);
4. the present sensors are bound again (the swapped camera was the reason?
   the owner is the one who decides it is legitimate);
5. the lockdown is cleared and a SYSTEM event `lockdown_cleared` is audited.

Clearing does not check that the tamper condition is gone: if the case is
still open the monitor trips again at once, which is the intended behaviour.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from limen.audit.event import AuditSink, Event, EventKind
from limen.errors import BadRequest, Conflict
from limen.tamper.binding import SensorProbe, bind_sensors
from limen.tamper.journal import IntentJournal
from limen.tamper.lockdown import clear_lockdown, lockdown_status


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
                owner_id: str, at: datetime, probes: Iterable[SensorProbe] = ()) -> dict[str, Any]:
    """Steps 2–5 of the module docstring for an already authenticated owner; returns what was done."""
    if journal.pending() is not None:
        raise Conflict("a tamper response is unfinished: restart the lock so that it completes first")
    was = lockdown_status(conn)
    if str(store.status().state) != "erased":
        store.zeroize()
    store.reprovision()
    bound = bind_sensors(conn, probes, owner_id, at)
    clear_lockdown(conn, owner_id, at)
    audit.append(Event(EventKind.SYSTEM, at, actor=owner_id, subject="lock", reason="lockdown_cleared",
                       source="tamper", data={"incident": was.incident, "was_active": was.active,
                                              "vault": "reprovisioned", "sensors_bound": sorted(bound)}))
    return {"incident": was.incident, "was_active": was.active, "vault": str(store.status().state),
            "sensors": bound}
