"""Attempts against the stored state: one snapshot for the policy, the judgement and its counters in one transaction.

`decide` is the door path (`AccessController` calls it); `authenticate` is the
same PIN check for an owner or administrator acting on the CLI or console, and
counts toward the same keypad lockout; `step_up` is a remote unlock's PIN check
for a signed command that makes a way in (`policy.remote_step_up`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import datetime

from limen.access import lockout, pins, rows
from limen.access.attempt import Attempt, PinEntry
from limen.access.context import AccessContext
from limen.access.credentials import PinTaken, upgrade_pin
from limen.access.directory import find_user, list_users
from limen.access.model import (
    AccessState,
    AccessUser,
    CodeUse,
    CredentialType,
    LockConfig,
    LockoutState,
    OperatingMode,
    UserStatus,
)
from limen.access.policy import AssuranceRule, Judgement, Update, find_pin, judge, remote_step_up
from limen.access.sealing import opened
from limen.audit.event import EventKind
from limen.db import transaction
from limen.errors import BadRequest
from limen.tamper.lockdown import lockdown_cause


def load_state(ctx: AccessContext) -> AccessState:
    """Everything `policy.evaluate` needs (inside the caller's transaction, for one snapshot)."""
    c = ctx.conn
    lock = c.execute("SELECT * FROM access_lock WHERE id = 1").fetchone()
    held, config = _lockout_of(lock)
    cause = lockdown_cause(c)
    creds = tuple(opened(c, [rows.credential_of(r) for r in
                             c.execute("SELECT * FROM access_credentials ORDER BY cred_index")]))
    return AccessState(
        users={u.user_id: u for u in list_users(c)},
        credentials=creds,
        week_days=tuple(rows.week_day_of(r) for r in c.execute("SELECT * FROM access_week_days")),
        year_days=tuple(rows.year_day_of(r) for r in c.execute("SELECT * FROM access_year_days")),
        holidays=tuple(rows.holiday_of(r) for r in c.execute("SELECT * FROM access_holidays")),
        mode=OperatingMode(lock["mode"]),
        lockout=held,
        config=config,
        pin_salt=bytes(lock["pin_salt"]),
        pin_hasher=pins.PinHasher(ctx.pepper, bytes(lock["pin_salt"])),
        online=bool(lock["online"]),
        lockdown=cause is not None,
        lockdown_cause=cause,
        owner_reauth_required=bool(lock["owner_reauth_required"]),
        key_offline_uses=lock["key_offline_uses"],
        code_uses=tuple(CodeUse(r["code_id"], rows.req_dt(r["used_at"]))
                        for r in c.execute("SELECT code_id, used_at FROM access_code_uses")),
        revoked_codes=frozenset(r[0] for r in c.execute("SELECT code_id FROM access_code_revocations")),
    )


def _lockout_of(lock: sqlite3.Row) -> tuple[LockoutState, LockConfig]:
    """The keypad lockout and the lock's settings from its `access_lock` row."""
    return (LockoutState(lock["wrong_code_count"], lock["lockouts"], rows.dt(lock["locked_until"]),
                         lock["bio_fail_count"], lock["wrong_window_count"], rows.dt(lock["wrong_window_start"])),
            rows.config_of(lock["config"]))


@contextlib.contextmanager
def issuing_pin(ctx: AccessContext, actor: str, at: datetime) -> Iterator[None]:
    """Around a change that stores a PIN.  A PIN another person holds is refused (`PinTaken`), which tells the
    issuer a PIN that opens the door: a right guess.  For an API token (`ctx.token`: manage + unlock) that
    refusal spends a keypad try (recorded once the refused change has rolled back, and audited), and the token
    stores no PIN while the keypad is locked out: it guesses no faster than the keypad allows.  The owner (their
    session confirmed by password, their PIN on the CLI) is not held back: wrong codes typed at the door must
    not stop them adding a guest."""
    if ctx.token is None:
        yield
        return
    held, _ = _lockout_of(ctx.conn.execute("SELECT * FROM access_lock WHERE id = 1").fetchone())
    if lockout.is_locked_out(held, at):
        raise BadRequest("pin", "the keypad is locked out after wrong codes: set the PIN once it ends (or an "
                                "owner clears the lockout)")
    try:
        yield
    except PinTaken:
        with transaction(ctx.conn):
            held, config = _lockout_of(ctx.conn.execute("SELECT * FROM access_lock WHERE id = 1").fetchone())
            apply(ctx, Update(lockout=lockout.after_wrong_code(held, config, at)), at)
        ctx.emit(EventKind.CREDENTIAL_CHANGE, at, actor, None, "PIN refused: another person's (a wrong keypad "
                 "entry counted)")
        raise


def decide(ctx: AccessContext, attempt: Attempt, at: datetime, rule: AssuranceRule | None = None) -> Judgement:
    """Judge `attempt` and persist its counters in one transaction (no two attempts interleave)."""
    with transaction(ctx.conn):
        state = load_state(ctx)
        judgement = judge(attempt, state, at, rule)
        apply(ctx, judgement.update, at)
        if judgement.decision.accepted:
            _upgrade_pins(ctx, attempt, state, judgement.update)
    return judgement


def step_up(ctx: AccessContext, attempt: Attempt, at: datetime) -> Judgement:
    """`policy.remote_step_up` against the stored state, its lockout count persisted in the same transaction; a
    DURESS grant (a forced owner) audited with `duress: true`, from which the audit raises its silent alarm."""
    with transaction(ctx.conn):
        state = load_state(ctx)
        judgement = remote_step_up(attempt, state, at)
        apply(ctx, judgement.update, at)
    if "duress" in judgement.update.alarms:  # a forced owner's PIN: the action goes on, the alarm is silent
        d = judgement.decision  # `duress: true`, as a remote unlock's UNLOCK_ATTEMPT: the audit's duress rule
        ctx.emit(EventKind.REMOTE_COMMAND, at, d.user_id or "remote", d.credential_id, d.reason.value,
                 duress=True, detail="the owner's PIN for a remote action, given by a duress (forced) owner")
    return judgement


def _upgrade_pins(ctx: AccessContext, attempt: Attempt, state: AccessState, update: Update) -> None:
    entries = [f.digits for f in attempt.factors if isinstance(f, PinEntry)]
    used = set(update.credentials_used)
    for cred in state.credentials:
        if cred.id in used and cred.type is CredentialType.PIN and pins.needs_upgrade(cred.secret):
            for digits in entries:
                upgrade_pin(ctx, cred, digits)


def authenticate(ctx: AccessContext, ref: str, pin: str, at: datetime) -> AccessUser:
    """The owner/administrator `ref`, proven by their PIN.

    A wrong PIN counts toward the keypad lockout, and a locked-out keypad
    refuses this check too, so the CLI is no way around the lockout.
    """
    user = find_user(ctx.conn, ref)
    with transaction(ctx.conn):  # lockout read, PIN check and counter update: one writer at a time
        state = load_state(ctx)
        locked = lockout.is_locked_out(state.lockout, at)
        found = None if locked else find_pin(pin, state, user_id=user.user_id)
        if found is None and not locked:
            apply(ctx, Update(lockout=lockout.after_wrong_code(state.lockout, state.config, at)), at)
        elif found is not None:
            upgrade_pin(ctx, found, pin)
    if locked:
        raise BadRequest("as", "locked out after wrong codes; try again later")
    if found is None or not user.permission.programs or user.status is not UserStatus.ENABLED:
        raise BadRequest("as", "not an owner or administrator, or wrong PIN")
    return user


def apply(ctx: AccessContext, update: Update, at: datetime) -> None:
    """Persist the counters an attempt changed (inside the caller's transaction)."""
    c = ctx.conn
    if update.lockout is not None:
        lk = update.lockout
        c.execute("UPDATE access_lock SET wrong_code_count = ?, lockouts = ?, locked_until = ?, "
                  "bio_fail_count = ?, wrong_window_count = ?, wrong_window_start = ? WHERE id = 1",
                  (lk.wrong_code_count, lk.lockouts, rows.iso(lk.locked_until), lk.bio_fail_count,
                   lk.window_count, rows.iso(lk.window_start)))
    online = bool(c.execute("SELECT online FROM access_lock WHERE id = 1").fetchone()[0])
    for cred_id in update.credentials_used:
        c.execute("UPDATE access_credentials SET uses = uses + 1, offline_uses = offline_uses + ?, "
                  "first_used_at = COALESCE(first_used_at, ?) WHERE id = ?",
                  (0 if online else 1, rows.iso(at), cred_id))
    if update.pin_used_by:
        c.execute("UPDATE access_users SET last_pin_at = ? WHERE user_id = ?", (rows.iso(at), update.pin_used_by))
    if update.code_use is not None:
        c.execute("INSERT INTO access_code_uses(code_id, used_at) VALUES (?, ?)",
                  (update.code_use.code_id, rows.iso(update.code_use.at)))
    if update.revoke_code is not None:
        c.execute("INSERT OR IGNORE INTO access_code_revocations VALUES (?, ?, ?)",
                  (update.revoke_code, rows.iso(at), "clear-code"))
    if update.key_offline_uses is not None:
        c.execute("UPDATE access_lock SET key_offline_uses = ? WHERE id = 1", (update.key_offline_uses,))
    if update.mode is not None:
        c.execute("UPDATE access_lock SET mode = ? WHERE id = 1", (update.mode.value,))
    if update.owner_reauth_required is not None:
        c.execute("UPDATE access_lock SET owner_reauth_required = ? WHERE id = 1",
                  (int(update.owner_reauth_required),))
