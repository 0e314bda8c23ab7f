"""`AccessStore`: the access model in SQLite, changed atomically and audited — a thin facade.

The work is split by job, one module each, all sharing one `AccessContext`
(connection, audit sink, event source, PIN pepper):

    directory    who is who (users by name, id or index; owners)   authority   who may change what
    users        add, modify, remove users; the first owner        credentials PINs, RFID, code secrets
    timetable    week-day, year-day and holiday schedules          codes       offline codes and revocations
    lockwide     mode, config, link status, lockout, lockdown      attempts    state snapshot, decide, authenticate
    rows         rows ↔ model values                               sealing     secrets under the vault, PIN pepper

Every change runs in one `BEGIN IMMEDIATE … COMMIT` transaction: bad input
raises before anything is written, and a failure mid-way rolls everything back.
Each change is then appended to the audit sink as an event naming the actor,
the subject and what changed (never a PIN or secret).  The very first user must
be an owner with a PIN they typed: there is no default.

Face-enrolled users (a `users` row without an access row) are treated as
enabled, unrestricted members with a single-credential rule; `ensure_user`
gives them a real access row.
"""

from __future__ import annotations

import contextlib
import sqlite3
from contextlib import AbstractContextManager
from datetime import datetime, time
from typing import Any

from limen.access import attempts, codes, credentials, directory, lockwide, offline, pins, timetable, users
from limen.access.attempt import Attempt
from limen.access.authority import BOOTSTRAP_ACTOR
from limen.access.context import AccessContext, TokenIssuer
from limen.access.directory import ensure_user
from limen.access.model import (
    AccessState,
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
from limen.access.policy import AssuranceRule, Judgement, Update
from limen.access.rows import MAX_USERS
from limen.access.sealing import default_pepper, sealed_secret
from limen.audit.event import AuditSink
from limen.db import transaction
from limen.people import MAX_NAME
from limen.tamper.lockdown import LockdownCause

__all__ = ["BOOTSTRAP_ACTOR", "MAX_NAME", "MAX_USERS", "AccessStore", "ensure_user", "sealed_secret"]


class AccessStore:
    """The access engine's persistent state.  One instance per connection; not thread-safe."""

    def __init__(self, conn: sqlite3.Connection, audit: AuditSink, source: str = "cli",
                 pepper: pins.Pepper | None = None) -> None:
        """`pepper`: the key store's PIN pepper; by default the ``pin-pepper`` key file beside the database."""
        self._ctx = AccessContext(conn, audit, source, pepper or default_pepper(conn))
        lockwide.initialise(self._ctx)
        codes.digest_clear_codes(self._ctx)  # digits of codes issued before only MACs were kept

    @property
    def conn(self) -> sqlite3.Connection:
        return self._ctx.conn

    @property
    def audit(self) -> AuditSink:
        return self._ctx.audit

    @property
    def source(self) -> str:
        return self._ctx.source

    @property
    def pepper(self) -> pins.Pepper:
        return self._ctx.pepper

    @pepper.setter
    def pepper(self, value: pins.Pepper) -> None:
        """Replace the pepper (a restored backup brings its own)."""
        self._ctx.pepper = value

    def issuing(self, token: TokenIssuer | None) -> AbstractContextManager[None]:
        """Changes made inside are an API token's: new credentials and codes record it, end by its expiry and are
        revoked with it (`revoke_issued_by`); the audit records name the token (None: a person acts)."""
        return self._ctx.issuing(token)

    def revoke_issued_by(self, token_id: str, actor: str, at: datetime) -> list[str]:
        """Revoke every credential and offline code the API token issued; their ids."""
        return credentials.revoke_issued_by(self._ctx, token_id, actor, at)

    # ------------------------------------------------------------------ reading
    def load_state(self) -> AccessState:
        """Everything `policy.evaluate` needs, read in one snapshot."""
        with transaction(self.conn):
            return attempts.load_state(self._ctx)

    def users(self) -> list[AccessUser]:
        return directory.list_users(self.conn)

    def user(self, ref: str) -> AccessUser:
        """A user by name, id or Matter index."""
        return directory.find_user(self.conn, ref)

    def credentials(self, user_id: str | None = None) -> list[Credential]:
        return credentials.list_credentials(self.conn, user_id)

    def week_days(self, user_id: str) -> list[WeekDaySchedule]:
        return timetable.week_days(self.conn, user_id)

    def year_days(self, user_id: str) -> list[YearDaySchedule]:
        return timetable.year_days(self.conn, user_id)

    def holidays(self) -> list[HolidaySchedule]:
        return timetable.holidays(self.conn)

    def has_users(self) -> bool:
        return directory.has_users(self.conn)

    def is_enabled_owner(self, user_id: str) -> bool:
        """Whether `user_id` (an id, not a name) is an enabled owner of this lock."""
        return directory.is_enabled_owner(self.conn, user_id)

    def has_owner(self) -> bool:
        """Whether an owner exists: until one does, the next user added is the first owner (bootstrap)."""
        return directory.has_owner(self.conn)

    # ------------------------------------------------------------------ the actor
    def authenticate(self, ref: str, pin: str, at: datetime) -> AccessUser:
        """The owner/administrator `ref`, proven by their PIN (a wrong one counts toward the lockout)."""
        return attempts.authenticate(self._ctx, ref, pin, at)

    # ------------------------------------------------------------------ users
    def add_user(self, name: str, actor: str, at: datetime, *, pin: str | None = None,
                 permission: PermissionLevel = PermissionLevel.MEMBER,
                 user_type: UserType = UserType.UNRESTRICTED, credential_rule: CredentialRule = CredentialRule.SINGLE,
                 unique_id: str | None = None, index: int | None = None) -> AccessUser:
        """Create a core user and its access row (and PIN).  The first user must be an owner with a PIN."""
        with attempts.issuing_pin(self._ctx, actor, at) if pin is not None else contextlib.nullcontext():
            return users.add_user(self._ctx, name, actor, at, pin=pin, permission=permission, user_type=user_type,
                                  credential_rule=credential_rule, unique_id=unique_id, index=index)

    def modify_user(self, ref: str, actor: str, at: datetime, **changes: Any) -> AccessUser:
        """Change name, status, user_type, credential_rule, permission, unique_id or pin_max_age_days."""
        return users.modify_user(self._ctx, ref, actor, at, **changes)

    def set_status(self, ref: str, status: UserStatus, actor: str, at: datetime) -> AccessUser:
        return users.modify_user(self._ctx, ref, actor, at, status=status)

    def remove_user(self, ref: str, actor: str, at: datetime) -> None:
        """Delete the user everywhere (core row, access row, credentials, schedules: cascade)."""
        users.remove_user(self._ctx, ref, actor, at)

    def claim_first_owner(self, ref: str, pin: str, at: datetime) -> AccessUser:
        """Make an existing person the first owner, with `pin` (only while the lock has no owner)."""
        return users.claim_first_owner(self._ctx, ref, pin, at)

    # ------------------------------------------------------------------ credentials
    def add_credential(self, ref: str, ctype: CredentialType, actor: str, at: datetime, *,
                       secret: str | None = None, backup: bool = False, offline_max_uses: int | None = None,
                       valid_from: datetime | None = None, valid_until: datetime | None = None,
                       max_uses: int | None = None, expire_after_s: int | None = None) -> Credential:
        """Link a credential to a user.  `secret` is the PIN or RFID UID (never stored in the clear)."""
        pin = ctype is CredentialType.PIN
        with attempts.issuing_pin(self._ctx, actor, at) if pin else contextlib.nullcontext():
            return credentials.add_credential(self._ctx, ref, ctype, actor, at, secret=secret, backup=backup,
                                              offline_max_uses=offline_max_uses, valid_from=valid_from,
                                              valid_until=valid_until, max_uses=max_uses,
                                              expire_after_s=expire_after_s)

    def remove_credential(self, cred_id: str, actor: str, at: datetime) -> None:
        """Delete a credential; a removed PIN joins the user's PIN history (reuse is refused)."""
        credentials.remove_credential(self._ctx, cred_id, actor, at)

    def revoke_credential(self, cred_id: str, actor: str, at: datetime) -> None:
        """Keep the credential on record but refuse it from the next attempt on."""
        credentials.revoke_credential(self._ctx, cred_id, actor, at)

    def change_pin(self, ref: str, new_pin: str, actor: str, at: datetime) -> Credential:
        """Replace the user's PINs by `new_pin` (history enforced), atomically."""
        with attempts.issuing_pin(self._ctx, actor, at):  # a token's try at another person's PIN: a keypad try
            return credentials.change_pin(self._ctx, ref, new_pin, actor, at)

    # ------------------------------------------------------------------ schedules
    def add_week_day(self, ref: str, index: int, days: Day, start: time, end: time, actor: str,
                     at: datetime) -> WeekDaySchedule:
        """Add or replace a week-day schedule; an unrestricted user becomes schedule-restricted (Matter)."""
        return timetable.add_week_day(self._ctx, ref, index, days, start, end, actor, at)

    def add_year_day(self, ref: str, index: int, start: datetime, end: datetime, actor: str,
                     at: datetime) -> YearDaySchedule:
        return timetable.add_year_day(self._ctx, ref, index, start, end, actor, at)

    def add_holiday(self, index: int, start: datetime, end: datetime, mode: OperatingMode, actor: str,
                    at: datetime) -> HolidaySchedule:
        return timetable.add_holiday(self._ctx, index, start, end, mode, actor, at)

    def remove_schedule(self, kind: str, index: int, actor: str, at: datetime, ref: str | None = None) -> None:
        timetable.remove_schedule(self._ctx, kind, index, actor, at, ref)

    # ------------------------------------------------------------------ lock-wide settings
    def clear_lockout(self, actor: str, at: datetime) -> None:
        """An owner ends the keypad lockout and the biometric failure count now (audited)."""
        lockwide.clear_lockout(self._ctx, actor, at)

    def set_mode(self, mode: OperatingMode, actor: str, at: datetime) -> None:
        lockwide.set_mode(self._ctx, mode, actor, at)

    def set_config(self, actor: str, at: datetime, **changes: Any) -> LockConfig:
        """Change lock settings (names of `LockConfig` fields), validated."""
        return lockwide.set_config(self._ctx, actor, at, **changes)

    def set_online(self, online: bool) -> None:
        """Record link status (the link package calls this); offline limits apply while False."""
        lockwide.set_online(self._ctx, online)

    def set_lockdown(self, on: bool, actor: str, at: datetime) -> LockdownCause | None:
        """A lockdown command (the lock's one lockdown flag); lifting needs an owner, never lifts a tamper's.

        Nothing is erased; returns the cause of the lockdown in force afterwards (None: none)."""
        return lockwide.set_lockdown(self._ctx, on, actor, at)

    # ------------------------------------------------------------------ offline codes
    def offline_secret(self, ref: str, actor: str, at: datetime) -> Credential:
        """The user's offline-code secret credential, created on first use (owner/administrator only)."""
        return codes.offline_secret(self._ctx, ref, actor, at)

    def issue_code(self, kind: offline.CodeKind, actor: str, at: datetime, *, start: datetime | None = None,
                   hours: int = 24, days: int = 7, uses_per_day: int = 1) -> tuple[str, offline.OfflineGrant]:
        """Issue an offline code with the actor's secret (as the owner's app would) and record it."""
        return codes.issue_code(self._ctx, kind, actor, at, start=start, hours=hours, days=days,
                                uses_per_day=uses_per_day)

    def list_codes(self) -> list[dict[str, Any]]:
        return codes.list_codes(self.conn)

    def revoke_code(self, code_or_id: str, actor: str, at: datetime) -> str:
        """Add a code (typed digits or its id) to the revocation list; effective on the next attempt."""
        return codes.revoke_code(self._ctx, code_or_id, actor, at)

    def sync_revocations(self, code_ids: list[str], actor: str, at: datetime) -> int:
        """Merge a synchronised revocation list (from the owner's app or cloud); returns how many were new."""
        return codes.sync_revocations(self._ctx, code_ids, actor, at)

    # ------------------------------------------------------------------ attempts
    def decide(self, attempt: Attempt, at: datetime, rule: AssuranceRule | None = None) -> Judgement:
        """Judge `attempt` and persist its counters in one transaction (no two attempts interleave)."""
        return attempts.decide(self._ctx, attempt, at, rule)

    def step_up(self, attempt: Attempt, at: datetime) -> Judgement:
        """A remote unlock's PIN check (`remote_attempt`) without the door, for a remote action that makes a way in:
        the owner's PIN while `require_pin_for_remote` is on, a wrong one counted toward the keypad lockout."""
        return attempts.step_up(self._ctx, attempt, at)

    def apply(self, update: Update, at: datetime) -> None:
        """Persist the counters an attempt changed (one transaction; survives restarts)."""
        with transaction(self.conn):
            attempts.apply(self._ctx, update, at)
