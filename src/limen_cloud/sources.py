"""Where an owner's commands come from: the cloud's half of the anomaly rule "command from an unknown device or
address".

The lock alarms on a command signed by a device it never paired (`device_known`, `limen.audit.anomaly`); only
the cloud sees the address a command was handed to it from.  An account knows the addresses it claimed a lock
from and those its earlier commands came from (`command_sources`, keyed as `api.client_key` keys a client: an
IPv6 one by its /64).  A command relayed from any other address raises `remote_unknown_source` — the lock's rule,
on the lock the command is for, sent to the owner's destinations like the lock's own alarms — and the address is
known from then on (one alarm per new address, not one per command).  The command is relayed all the same: the
lock verifies it and the cloud cannot; the alarm tells the owner that someone else may hold the session.
Behind a reverse proxy every client has the proxy's address unless uvicorn trusts its X-Forwarded-For
(`api.client_key`): then nothing is ever new.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from limen.audit.anomaly import Rule
from limen_cloud.models import Alarm, CommandSource

REMOTE_UNKNOWN = Rule.REMOTE_UNKNOWN.value
log = logging.getLogger(__name__)


def _known(session: Session, owner_id: int, address: str) -> CommandSource | None:
    return session.scalar(select(CommandSource).where(CommandSource.owner_id == owner_id,
                                                      CommandSource.address == address))


def _remember(session: Session, owner_id: int, address: str, now: datetime) -> bool:
    """Record `address` for the account; False when it was known already (or another request just recorded it)."""
    address = address[:64]
    row = _known(session, owner_id, address)
    if row is not None:
        row.last_seen = now
        return False
    try:
        with session.begin_nested():
            session.add(CommandSource(owner_id=owner_id, address=address, first_seen=now, last_seen=now))
    except IntegrityError:  # a concurrent request of the same account recorded it first
        return False
    return True


def claimed_from(session: Session, owner_id: int, address: str, now: datetime) -> None:
    """The owner claimed a lock from `address` (with the code the lock showed): a known address.  Caller commits."""
    _remember(session, owner_id, address, now)


def command_from(session: Session, owner_id: int, lock_id: str, address: str, now: datetime) -> Alarm | None:
    """A command for `lock_id` is being relayed for the account from `address`: the alarm raised when the account
    never saw that address (None otherwise).  Logged with the address; the caller commits."""
    if not _remember(session, owner_id, address, now):
        return None
    log.warning("owner %d: a command for lock %s came from an address never seen for the account (%s)", owner_id,
                lock_id, address)
    alarm = Alarm(lock_id=lock_id, rule=REMOTE_UNKNOWN, raised_at=now,
                  detail=f"a command for this lock was sent to the cloud from an address never seen for your account "
                  f"({address}); if it was not you, someone holds your session: log out everywhere and change the "
                  "password (the lock still obeys only commands your own devices sign)")
    session.add(alarm)
    return alarm
