"""`AccessStore`: the access model in SQLite, changed atomically and audited.

Every change runs in one `BEGIN IMMEDIATE … COMMIT` transaction: bad input
raises before anything is written, and a failure mid-way rolls everything back.
Only owners and administrators change users (an administrator cannot touch an
owner or create one); each change is then appended to the audit sink as an
event naming the actor, the subject and what changed (never a PIN or secret).
The very first user must be an owner with a PIN they typed: there is no default.

Face-enrolled users (a `users` row without an access row) are treated as
enabled, unrestricted members with a single-credential rule; `ensure_user`
gives them a real access row.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
from dataclasses import asdict, fields, replace
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

from limen.access import lockout, offline, pins
from limen.access.attempt import Attempt, PinEntry
from limen.access.model import (
    AccessState,
    AccessUser,
    CodeUse,
    Credential,
    CredentialRule,
    CredentialType,
    Day,
    HolidaySchedule,
    LockConfig,
    LockoutState,
    OperatingMode,
    PermissionLevel,
    UserStatus,
    UserType,
    WeekDaySchedule,
    YearDaySchedule,
)
from limen.access.policy import AssuranceRule, Judgement, Update, find_pin, judge, rfid_digest
from limen.access.schedules import validate_holiday, validate_week_day, validate_year_day, zone
from limen.audit.event import AuditSink, Event, EventKind
from limen.db import transaction
from limen.errors import BadRequest, Conflict, KeyStoreError, LimenError, NotFound, VaultErased
from limen.people import unknown_user, validate_name
from limen.tamper.lockdown import command_lockdown_in, is_locked_down, lift_command_lockdown_in
from limen.vault.secrets import box_for, is_sealed, pepper_for

log = logging.getLogger(__name__)


def sealed_secret(stored: bytes) -> bool:
    """Whether an offline-code secret is stored sealed under the vault (else: in the clear, from before)."""
    return is_sealed(stored, offline.SECRET_BYTES)

MAX_USERS = 65534
MAX_NAME = 64
BOOTSTRAP_ACTOR = "bootstrap"


def ensure_user(conn: sqlite3.Connection, user_id: str, actor: str, at: datetime | None = None) -> None:
    """Give a core user (e.g. just face-enrolled) an access row: enabled unrestricted member."""
    at = at or datetime.now(UTC)
    with transaction(conn):
        if conn.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchone() is None:
            raise NotFound(f"no user with id {user_id}")
        if conn.execute("SELECT 1 FROM access_users WHERE user_id = ?", (user_id,)).fetchone() is None:
            _insert_access_user(conn, user_id, _next_index(conn), PermissionLevel.MEMBER, UserType.UNRESTRICTED,
                                CredentialRule.SINGLE, None, actor, at)


class AccessStore:
    """The access engine's persistent state.  One instance per connection; not thread-safe."""

    def __init__(self, conn: sqlite3.Connection, audit: AuditSink, source: str = "cli",
                 pepper: pins.Pepper | None = None) -> None:
        """`pepper`: the key store's PIN pepper; by default the ``pin-pepper`` key file beside the database."""
        self.conn = conn
        self.audit = audit
        self.source = source
        self.pepper = pepper or _default_pepper(conn)
        with transaction(conn):
            if conn.execute("SELECT 1 FROM access_lock WHERE id = 1").fetchone() is None:
                conn.execute(
                    "INSERT INTO access_lock(id, mode, pin_salt, config) VALUES (1, ?, ?, ?)",
                    (OperatingMode.NORMAL.value, pins.new_salt(), json.dumps(asdict(LockConfig()))),
                )
            self._seal_clear_offline_secrets()

    # ------------------------------------------------------------------ offline secrets sealed under the vault

    def _seal_clear_offline_secrets(self) -> None:
        """Seal offline-code secrets stored in the clear (before the vault sealed them), once a vault is open."""
        box = box_for(self.conn)
        if box is None or box.closed:
            return
        rows = self.conn.execute("SELECT id, secret FROM access_credentials WHERE cred_type = ?",
                                 (CredentialType.OFFLINE_CODE.value,)).fetchall()
        for row in rows:
            if not sealed_secret(bytes(row["secret"])):
                try:
                    blob = box.seal(f"offline-code:{row['id']}", bytes(row["secret"]))
                except LimenError:
                    return  # an erased vault: nothing to seal under (the clear secrets stay usable)
                self.conn.execute("UPDATE access_credentials SET secret = ? WHERE id = ?", (blob, row["id"]))

    def _opened(self, creds: list[Credential]) -> list[Credential]:
        """Credentials with offline secrets unsealed; one that cannot be opened is left out (fail closed)."""
        out, box = [], box_for(self.conn)
        for cred in creds:
            if cred.type is CredentialType.OFFLINE_CODE and sealed_secret(cred.secret):
                try:
                    if box is None:
                        raise VaultErased("no vault is open to unseal offline-code secrets")
                    cred = replace(cred, secret=box.unseal(f"offline-code:{cred.id}", cred.secret))
                except LimenError as exc:  # erased or closed vault, or a forged row
                    log.warning("offline-code secret %s unavailable (%s): its codes are refused", cred.id,
                                type(exc).__name__)
                    continue
            out.append(cred)
        return out

    # ------------------------------------------------------------------ reading

    def load_state(self) -> AccessState:
        """Everything `policy.evaluate` needs, read in one snapshot."""
        with transaction(self.conn):
            return self._load_state()

    def _load_state(self) -> AccessState:
        c = self.conn
        lock = c.execute("SELECT * FROM access_lock WHERE id = 1").fetchone()
        users = {u.user_id: u for u in self._users()}
        creds = tuple(self._opened([_credential(r) for r in
                                    c.execute("SELECT * FROM access_credentials ORDER BY cred_index")]))
        return AccessState(
            users=users,
            credentials=creds,
            week_days=tuple(_week_day(r) for r in c.execute("SELECT * FROM access_week_days")),
            year_days=tuple(_year_day(r) for r in c.execute("SELECT * FROM access_year_days")),
            holidays=tuple(_holiday(r) for r in c.execute("SELECT * FROM access_holidays")),
            mode=OperatingMode(lock["mode"]),
            lockout=LockoutState(lock["wrong_code_count"], lock["lockouts"], _dt(lock["locked_until"]),
                                 lock["bio_fail_count"]),
            config=_config(lock["config"]),
            pin_salt=bytes(lock["pin_salt"]),
            pin_hasher=pins.PinHasher(self.pepper, bytes(lock["pin_salt"])),
            online=bool(lock["online"]),
            lockdown=is_locked_down(c),
            owner_reauth_required=bool(lock["owner_reauth_required"]),
            key_offline_uses=lock["key_offline_uses"],
            code_uses=tuple(CodeUse(r["code_id"], _req_dt(r["used_at"]))
                            for r in c.execute("SELECT code_id, used_at FROM access_code_uses")),
            revoked_codes=frozenset(r[0] for r in c.execute("SELECT code_id FROM access_code_revocations")),
        )

    def _users(self) -> list[AccessUser]:
        rows = self.conn.execute(
            "SELECT u.id, u.name, a.* FROM users u LEFT JOIN access_users a ON a.user_id = u.id ORDER BY u.name"
        ).fetchall()
        return [_user(r) for r in rows]

    def users(self) -> list[AccessUser]:
        return self._users()

    def user(self, ref: str) -> AccessUser:
        """A user by name, id or Matter index."""
        for u in self._users():
            if ref in (u.name, u.user_id) or (ref.isdigit() and u.index == int(ref)):
                return u
        raise NotFound(unknown_user(ref))

    def credentials(self, user_id: str | None = None) -> list[Credential]:
        rows = self.conn.execute("SELECT * FROM access_credentials ORDER BY cred_type, cred_index").fetchall()
        return self._opened([_credential(r) for r in rows if user_id is None or r["user_id"] == user_id])

    def week_days(self, user_id: str) -> list[WeekDaySchedule]:
        return [_week_day(r) for r in self.conn.execute(
            "SELECT * FROM access_week_days WHERE user_id = ? ORDER BY sched_index", (user_id,))]

    def year_days(self, user_id: str) -> list[YearDaySchedule]:
        return [_year_day(r) for r in self.conn.execute(
            "SELECT * FROM access_year_days WHERE user_id = ? ORDER BY sched_index", (user_id,))]

    def holidays(self) -> list[HolidaySchedule]:
        return [_holiday(r) for r in self.conn.execute("SELECT * FROM access_holidays ORDER BY sched_index")]

    def has_users(self) -> bool:
        return self.conn.execute("SELECT 1 FROM access_users LIMIT 1").fetchone() is not None

    def is_enabled_owner(self, user_id: str) -> bool:
        """Whether `user_id` (an id, not a name) is an enabled owner of this lock."""
        row = self.conn.execute("SELECT status, permission FROM access_users WHERE user_id = ?",
                                (user_id,)).fetchone()
        return row is not None and row["status"] == UserStatus.ENABLED.value and \
            row["permission"] == PermissionLevel.OWNER.value

    def has_owner(self) -> bool:
        """Whether an owner exists: until one does, the next user added is the first owner (bootstrap).

        A face enrolled before any owner gives its person a member row; that must not block the first owner.
        """
        return self.conn.execute("SELECT 1 FROM access_users WHERE permission = 'owner' LIMIT 1").fetchone() \
            is not None

    def clear_lockout(self, actor: str, at: datetime) -> None:
        """An owner ends the keypad lockout and the biometric failure count now (audited)."""
        with transaction(self.conn):
            self._actor(actor, touching=PermissionLevel.OWNER)
            self.conn.execute("UPDATE access_lock SET wrong_code_count = 0, locked_until = NULL, bio_fail_count = 0 "
                              "WHERE id = 1")
        self._emit(EventKind.CONFIG_CHANGE, at, actor, "lockout", "lockout cleared")

    def claim_first_owner(self, ref: str, pin: str, at: datetime) -> AccessUser:
        """Make an existing person (e.g. enrolled by face before any owner) the first owner, with `pin`.

        Only while the lock has no owner: the explicit bootstrap step for a face-first person.
        """
        pins.validate_pin(pin)
        with transaction(self.conn):
            if self.has_owner():
                raise Conflict("this lock already has an owner")
            user = self.user(ref)
            self._ensure_row(user, BOOTSTRAP_ACTOR, at)
            self.conn.execute("UPDATE access_users SET permission = ?, status = ?, modified_at = ?, modified_by = ? "
                              "WHERE user_id = ?", (PermissionLevel.OWNER.value, UserStatus.ENABLED.value, _iso(at),
                                                    BOOTSTRAP_ACTOR, user.user_id))
            self.conn.execute("DELETE FROM access_credentials WHERE user_id = ? AND cred_type = 'pin'",
                              (user.user_id,))
            self._insert_pin(user.user_id, pin, BOOTSTRAP_ACTOR, at)
        self._emit(EventKind.USER_CHANGE, at, BOOTSTRAP_ACTOR, user.user_id, "first owner claimed",
                   permission=PermissionLevel.OWNER.value, with_pin=True)
        return self.user(user.user_id)

    # ------------------------------------------------------------------ identity of the actor

    def authenticate(self, ref: str, pin: str, at: datetime) -> AccessUser:
        """The owner/administrator `ref`, proven by their PIN.

        A wrong PIN counts toward the keypad lockout, and a locked-out keypad
        refuses this check too, so the CLI is no way around the lockout.
        """
        user = self.user(ref)
        with transaction(self.conn):  # lockout read, PIN check and counter update: one writer at a time
            state = self._load_state()
            locked = lockout.is_locked_out(state.lockout, at)
            found = None if locked else find_pin(pin, state, user_id=user.user_id)
            if found is None and not locked:
                self._apply(Update(lockout=lockout.after_wrong_code(state.lockout, state.config, at)), at)
            elif found is not None:
                self._upgrade_pin(found, pin)
        if locked:
            raise BadRequest("as", "locked out after wrong codes; try again later")
        if found is None or not user.permission.programs or user.status is not UserStatus.ENABLED:
            raise BadRequest("as", "not an owner or administrator, or wrong PIN")
        return user

    def _actor(self, actor_id: str, touching: PermissionLevel | None = None) -> str:
        if actor_id == BOOTSTRAP_ACTOR:
            raise BadRequest("as", "the lock already has an owner")
        row = self.conn.execute(
            "SELECT permission, status FROM access_users WHERE user_id = ?", (actor_id,)).fetchone()
        if row is None or row["status"] != UserStatus.ENABLED.value:
            raise BadRequest("as", "acting user is not an enabled user of this lock")
        permission = PermissionLevel(row["permission"])
        if not permission.programs:
            raise BadRequest("as", "only owners and administrators change the lock")
        senior = (PermissionLevel.OWNER, PermissionLevel.ADMINISTRATOR)
        if touching in senior and permission is not PermissionLevel.OWNER:
            raise BadRequest("as", "only an owner changes owners and administrators")
        return actor_id

    def _emit(self, kind: EventKind, at: datetime, actor: str, subject: str | None, reason: str,
              **data: Any) -> None:
        self.audit.append(Event(kind, at, actor=actor, subject=subject, reason=reason, source=self.source,
                                data=data))

    # ------------------------------------------------------------------ users

    def add_user(
        self,
        name: str,
        actor: str,
        at: datetime,
        *,
        pin: str | None = None,
        permission: PermissionLevel = PermissionLevel.MEMBER,
        user_type: UserType = UserType.UNRESTRICTED,
        credential_rule: CredentialRule = CredentialRule.SINGLE,
        unique_id: str | None = None,
        index: int | None = None,
    ) -> AccessUser:
        """Create a core user and its access row (and PIN).  The first user must be an owner with a PIN."""
        name = validate_name(name)
        if unique_id is not None and (not unique_id.isprintable() or len(unique_id) > 64):
            raise BadRequest("unique_id", "1-64 printable characters")
        if pin is not None:
            pins.validate_pin(pin)
        with transaction(self.conn):
            bootstrap = not self.has_owner()
            if bootstrap:
                if permission is not PermissionLevel.OWNER or pin is None:
                    raise BadRequest("permission", "the first user must be an owner with a PIN they choose")
                actor = BOOTSTRAP_ACTOR
            else:
                self._actor(actor, touching=permission)
            if self.conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise Conflict(f"a user named {name!r} exists")
            if index is not None and not 1 <= index <= MAX_USERS:
                raise BadRequest("index", f"user index must be 1..{MAX_USERS}")
            if index is not None and self.conn.execute(
                    "SELECT 1 FROM access_users WHERE user_index = ?", (index,)).fetchone():
                raise Conflict(f"user index {index} is taken")
            user_id = secrets.token_hex(16)
            self.conn.execute("INSERT INTO users(id, name, created_at, created_by) VALUES (?, ?, ?, ?)",
                              (user_id, name, _iso(at), actor))
            _insert_access_user(self.conn, user_id, index or _next_index(self.conn), permission, user_type,
                                credential_rule, unique_id, actor, at)
            if pin is not None:
                self._insert_pin(user_id, pin, actor, at)
        user = self.user(user_id)
        self._emit(EventKind.USER_CHANGE, at, actor, user_id, "user added", name=name, index=user.index,
                   permission=permission.value, user_type=user_type.value, rule=credential_rule.value,
                   with_pin=pin is not None)
        return user

    def modify_user(self, ref: str, actor: str, at: datetime, **changes: Any) -> AccessUser:
        """Change name, status, user_type, credential_rule, permission, unique_id or pin_max_age_days."""
        allowed = {"name", "status", "user_type", "credential_rule", "permission", "unique_id", "pin_max_age_days"}
        unknown = set(changes) - allowed
        if unknown:
            raise BadRequest(sorted(unknown)[0], "cannot be changed")
        changes = {k: v for k, v in changes.items() if v is not None}
        if "name" in changes:
            changes["name"] = validate_name(changes["name"])
        if "pin_max_age_days" in changes and not 1 <= int(changes["pin_max_age_days"]) <= 3650:
            raise BadRequest("pin_max_age_days", "must be 1..3650")
        with transaction(self.conn):
            user = self.user(ref)
            self._ensure_row(user, actor, at)
            touching = changes.get("permission", user.permission)
            if user.permission is PermissionLevel.OWNER:
                touching = PermissionLevel.OWNER
            self._actor(actor, touching=touching)
            if user.permission is PermissionLevel.OWNER and changes.get("permission", user.permission) \
                    is not PermissionLevel.OWNER or changes.get("status") is UserStatus.DISABLED:
                self._keep_an_owner(user.user_id)
            if "name" in changes:
                if self.conn.execute("SELECT 1 FROM users WHERE name = ? AND id != ?",
                                     (changes["name"], user.user_id)).fetchone():
                    raise Conflict(f"a user named {changes['name']!r} exists")
                self.conn.execute("UPDATE users SET name = ? WHERE id = ?", (changes["name"], user.user_id))
            columns = {k: (v.value if hasattr(v, "value") else v) for k, v in changes.items() if k != "name"}
            for column, value in columns.items():
                self.conn.execute(f"UPDATE access_users SET {column} = ? WHERE user_id = ?",  # noqa: S608
                                  (value, user.user_id))
            self.conn.execute("UPDATE access_users SET modified_at = ?, modified_by = ? WHERE user_id = ?",
                              (_iso(at), actor, user.user_id))
        self._emit(EventKind.USER_CHANGE, at, actor, user.user_id, "user modified",
                   changes={k: (v.value if hasattr(v, "value") else v) for k, v in changes.items()})
        return self.user(user.user_id)

    def _keep_an_owner(self, user_id: str) -> None:
        others = self.conn.execute(
            "SELECT COUNT(*) FROM access_users WHERE permission = 'owner' AND status = 'enabled' AND user_id != ?",
            (user_id,)).fetchone()[0]
        if not others:
            raise BadRequest("permission", "the lock must keep at least one enabled owner")

    def _ensure_row(self, user: AccessUser, actor: str, at: datetime) -> None:
        if user.implicit:
            _insert_access_user(self.conn, user.user_id, _next_index(self.conn), PermissionLevel.MEMBER,
                                UserType.UNRESTRICTED, CredentialRule.SINGLE, None, actor, at)

    def set_status(self, ref: str, status: UserStatus, actor: str, at: datetime) -> AccessUser:
        return self.modify_user(ref, actor, at, status=status)

    def remove_user(self, ref: str, actor: str, at: datetime) -> None:
        """Delete the user everywhere (core row, access row, credentials, schedules: cascade)."""
        with transaction(self.conn):
            user = self.user(ref)
            self._actor(actor, touching=user.permission)
            if user.permission is PermissionLevel.OWNER:
                self._keep_an_owner(user.user_id)
            if user.user_id == actor:
                raise BadRequest("user", "you cannot remove yourself")
            self.conn.execute("DELETE FROM users WHERE id = ?", (user.user_id,))
        self._emit(EventKind.USER_CHANGE, at, actor, user.user_id, "user removed", index=user.index)

    # ------------------------------------------------------------------ credentials

    def add_credential(
        self,
        ref: str,
        ctype: CredentialType,
        actor: str,
        at: datetime,
        *,
        secret: str | None = None,
        backup: bool = False,
        offline_max_uses: int | None = None,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
        max_uses: int | None = None,
        expire_after_s: int | None = None,
    ) -> Credential:
        """Link a credential to a user.  `secret` is the PIN or RFID UID (never stored in the clear)."""
        if valid_from and valid_until and valid_until <= valid_from:
            raise BadRequest("valid_until", "must be after valid_from")
        for field_name, value, high in (("max_uses", max_uses, 1_000_000),
                                        ("expire_after_s", expire_after_s, 366 * 86400),
                                        ("offline_max_uses", offline_max_uses, 1000)):
            if value is not None and not 1 <= value <= high:
                raise BadRequest(field_name, f"must be 1..{high}")
        if ctype is CredentialType.PIN:
            pins.validate_pin(secret or "")
        elif ctype is CredentialType.RFID and not (secret and secret.isprintable() and 4 <= len(secret) <= 64):
            raise BadRequest("uid", "an RFID UID has 4-64 printable characters")
        elif ctype is CredentialType.MECHANICAL_KEY:
            raise BadRequest("type", "the mechanical key is not enrolled; its sensor is recorded")
        with transaction(self.conn):
            user = self.user(ref)
            self._ensure_row(user, actor, at)
            self._actor(actor, touching=user.permission if user.user_id != actor else None)
            if user.user_type is UserType.DISPOSABLE:
                max_uses = 1
            if user.user_type is UserType.EXPIRING and expire_after_s is None:
                raise BadRequest("expire_after_s", "an expiring user's credential needs --expires-after")
            if backup and offline_max_uses is None:
                from limen import thresholds as T

                offline_max_uses = T.BACKUP_PIN_OFFLINE_USES
            if ctype is CredentialType.PIN:
                cred_id = self._insert_pin(user.user_id, secret or "", actor, at)
            else:
                stored = self._secret_for(ctype, secret)
                cred_id = self._insert_credential(user.user_id, ctype, stored, None, actor, at)
            self.conn.execute(
                "UPDATE access_credentials SET backup = ?, offline_max_uses = ?, valid_from = ?, valid_until = ?,"
                " max_uses = ?, expire_after_s = ? WHERE id = ?",
                (int(backup), offline_max_uses, _iso(valid_from), _iso(valid_until), max_uses, expire_after_s,
                 cred_id))
        cred = next(c for c in self.credentials(user.user_id) if c.id == cred_id)
        self._emit(EventKind.CREDENTIAL_CHANGE, at, actor, user.user_id, "credential added",
                   credential_id=cred.id, type=ctype.value, index=cred.index, backup=backup,
                   max_uses=max_uses, valid_until=_iso(valid_until))
        return cred

    def _secret_for(self, ctype: CredentialType, secret: str | None) -> bytes:
        if ctype is CredentialType.RFID:
            salt = self.conn.execute("SELECT pin_salt FROM access_lock WHERE id = 1").fetchone()[0]
            return rfid_digest(secret or "", bytes(salt))
        if ctype is CredentialType.OFFLINE_CODE:
            return offline.new_secret()
        return b"\x00"  # face / fingerprint: a link; the template lives in the vault

    def _insert_pin(self, user_id: str, pin: str, actor: str, at: datetime) -> str:
        from limen import thresholds as T

        salt = bytes(self.conn.execute("SELECT pin_salt FROM access_lock WHERE id = 1").fetchone()[0])
        hasher = pins.PinHasher(self.pepper, salt)
        matcher = hasher.matcher()
        history = self.conn.execute(
            "SELECT secret FROM access_pin_history WHERE user_id = ? ORDER BY id DESC LIMIT ?",
            (user_id, T.PIN_HISTORY_DEPTH)).fetchall()
        if any(matcher.matches(pin, bytes(r[0])) for r in history):
            raise BadRequest("pin", f"this PIN was used recently (last {T.PIN_HISTORY_DEPTH} are refused)")
        taken = self.conn.execute("SELECT secret FROM access_credentials WHERE cred_type = 'pin' AND pin_length = ?",
                                  (len(pin),)).fetchall()
        if any(matcher.matches(pin, bytes(r[0])) for r in taken):
            raise Conflict("duplicate credential: choose another PIN")
        return self._insert_credential(user_id, CredentialType.PIN, hasher.secret_for(pin), len(pin), actor, at)

    def _upgrade_pin(self, cred: Credential, digits: str) -> None:
        """Rewrite an old-format PIN hash (lock-wide salt, no pepper) now that its PIN was just entered."""
        if cred.type is not CredentialType.PIN or not pins.needs_upgrade(cred.secret) or not cred.pin_length:
            return
        salt = bytes(self.conn.execute("SELECT pin_salt FROM access_lock WHERE id = 1").fetchone()[0])
        hasher = pins.PinHasher(self.pepper, salt)
        for candidate in pins.entry_candidates(digits, {cred.pin_length}):
            if hasher.matcher().matches(candidate, cred.secret):
                self.conn.execute("UPDATE access_credentials SET secret = ? WHERE id = ?",
                                  (hasher.secret_for(candidate), cred.id))
                return

    def _insert_credential(self, user_id: str, ctype: CredentialType, secret: bytes, pin_length: int | None,
                           actor: str, at: datetime) -> str:
        index = self.conn.execute("SELECT COALESCE(MAX(cred_index), 0) + 1 FROM access_credentials "
                                  "WHERE cred_type = ?", (ctype.value,)).fetchone()[0]
        if index > MAX_USERS:
            raise BadRequest("index", "no free credential slot")
        cred_id = f"{ctype.value}:{index}"
        box = box_for(self.conn)
        if ctype is CredentialType.OFFLINE_CODE and box is not None:
            secret = box.seal(f"offline-code:{cred_id}", secret)  # VaultErased after a zeroize: one clear error
        try:
            self.conn.execute(
                "INSERT INTO access_credentials(id, user_id, cred_type, cred_index, secret, pin_length,"
                " created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (cred_id, user_id, ctype.value, index, secret, pin_length, _iso(at), actor))
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"duplicate credential ({ctype.value})") from exc
        return cred_id

    def remove_credential(self, cred_id: str, actor: str, at: datetime) -> None:
        """Delete a credential; a removed PIN joins the user's PIN history (reuse is refused)."""
        with transaction(self.conn):
            row = self.conn.execute("SELECT * FROM access_credentials WHERE id = ?", (cred_id,)).fetchone()
            if row is None:
                raise NotFound(f"no credential {cred_id!r}")
            owner = self.conn.execute("SELECT permission FROM access_users WHERE user_id = ?",
                                      (row["user_id"],)).fetchone()
            touching = PermissionLevel(owner["permission"]) if owner and row["user_id"] != actor else None
            self._actor(actor, touching=touching)
            if row["cred_type"] == CredentialType.PIN.value:
                self.conn.execute("INSERT INTO access_pin_history(user_id, secret, retired_at) VALUES (?, ?, ?)",
                                  (row["user_id"], row["secret"], _iso(at)))
            self.conn.execute("DELETE FROM access_credentials WHERE id = ?", (cred_id,))
        self._emit(EventKind.CREDENTIAL_CHANGE, at, actor, row["user_id"], "credential removed",
                   credential_id=cred_id, type=row["cred_type"])

    def revoke_credential(self, cred_id: str, actor: str, at: datetime) -> None:
        """Keep the credential on record but refuse it from the next attempt on."""
        with transaction(self.conn):
            row = self.conn.execute("SELECT user_id FROM access_credentials WHERE id = ?", (cred_id,)).fetchone()
            if row is None:
                raise NotFound(f"no credential {cred_id!r}")
            self._actor(actor)
            self.conn.execute("UPDATE access_credentials SET revoked = 1 WHERE id = ?", (cred_id,))
        self._emit(EventKind.CREDENTIAL_CHANGE, at, actor, row["user_id"], "credential revoked",
                   credential_id=cred_id)

    def change_pin(self, ref: str, new_pin: str, actor: str, at: datetime) -> Credential:
        """Replace the user's PINs by `new_pin` (history enforced), atomically."""
        pins.validate_pin(new_pin)
        with transaction(self.conn):
            user = self.user(ref)
            self._actor(actor, touching=user.permission if user.user_id != actor else None)
            old = self.conn.execute("SELECT id, secret FROM access_credentials WHERE user_id = ? AND "
                                    "cred_type = 'pin'", (user.user_id,)).fetchall()
            for row in old:
                self.conn.execute("INSERT INTO access_pin_history(user_id, secret, retired_at) VALUES (?, ?, ?)",
                                  (user.user_id, row["secret"], _iso(at)))
                self.conn.execute("DELETE FROM access_credentials WHERE id = ?", (row["id"],))
            cred_id = self._insert_pin(user.user_id, new_pin, actor, at)
        self._emit(EventKind.CREDENTIAL_CHANGE, at, actor, user.user_id, "PIN changed", credential_id=cred_id)
        return next(c for c in self.credentials(user.user_id) if c.id == cred_id)

    # ------------------------------------------------------------------ schedules

    def add_week_day(self, ref: str, index: int, days: Day, start: time, end: time, actor: str,
                     at: datetime) -> WeekDaySchedule:
        """Add or replace a week-day schedule; an unrestricted user becomes schedule-restricted (Matter)."""
        with transaction(self.conn):
            user = self.user(ref)
            schedule = validate_week_day(WeekDaySchedule(user.user_id, index, days, start, end))
            self._schedule_target(user, actor, at)
            self.conn.execute(
                "INSERT OR REPLACE INTO access_week_days VALUES (?, ?, ?, ?, ?)",
                (user.user_id, index, int(days), start.hour * 60 + start.minute, end.hour * 60 + end.minute))
        self._emit(EventKind.SCHEDULE_CHANGE, at, actor, user.user_id, "week-day schedule set", index=index,
                   days=int(days), start=start.isoformat("minutes"), end=end.isoformat("minutes"))
        return schedule

    def add_year_day(self, ref: str, index: int, start: datetime, end: datetime, actor: str,
                     at: datetime) -> YearDaySchedule:
        with transaction(self.conn):
            user = self.user(ref)
            schedule = validate_year_day(YearDaySchedule(user.user_id, index, start, end))
            self._schedule_target(user, actor, at)
            self.conn.execute("INSERT OR REPLACE INTO access_year_days VALUES (?, ?, ?, ?)",
                              (user.user_id, index, _iso(start), _iso(end)))
        self._emit(EventKind.SCHEDULE_CHANGE, at, actor, user.user_id, "year-day schedule set", index=index,
                   start=_iso(start), end=_iso(end))
        return schedule

    def _schedule_target(self, user: AccessUser, actor: str, at: datetime) -> None:
        self._ensure_row(user, actor, at)
        self._actor(actor, touching=user.permission)
        if user.user_type is UserType.UNRESTRICTED:
            self.conn.execute("UPDATE access_users SET user_type = ? WHERE user_id = ?",
                              (UserType.SCHEDULE_RESTRICTED.value, user.user_id))

    def add_holiday(self, index: int, start: datetime, end: datetime, mode: OperatingMode, actor: str,
                    at: datetime) -> HolidaySchedule:
        schedule = validate_holiday(HolidaySchedule(index, start, end, mode))
        with transaction(self.conn):
            self._actor(actor)
            self.conn.execute("INSERT OR REPLACE INTO access_holidays VALUES (?, ?, ?, ?)",
                              (index, _iso(start), _iso(end), mode.value))
        self._emit(EventKind.SCHEDULE_CHANGE, at, actor, None, "holiday schedule set", index=index,
                   start=_iso(start), end=_iso(end), mode=mode.value)
        return schedule

    def remove_schedule(self, kind: str, index: int, actor: str, at: datetime, ref: str | None = None) -> None:
        tables = {"week-day": "access_week_days", "year-day": "access_year_days", "holiday": "access_holidays"}
        if kind not in tables:
            raise BadRequest("kind", "one of week-day, year-day, holiday")
        with transaction(self.conn):
            self._actor(actor)
            if kind == "holiday":
                cur = self.conn.execute("DELETE FROM access_holidays WHERE sched_index = ?", (index,))
                subject = None
            else:
                if ref is None:
                    raise BadRequest("user", "name the user whose schedule to remove")
                subject = self.user(ref).user_id
                cur = self.conn.execute(f"DELETE FROM {tables[kind]} WHERE user_id = ? AND sched_index = ?",  # noqa: S608
                                        (subject, index))
            if cur.rowcount == 0:
                raise NotFound(f"no {kind} schedule {index}")
        self._emit(EventKind.SCHEDULE_CHANGE, at, actor, subject, f"{kind} schedule removed", index=index)

    # ------------------------------------------------------------------ lock-wide settings

    def set_mode(self, mode: OperatingMode, actor: str, at: datetime) -> None:
        with transaction(self.conn):
            self._actor(actor)
            self.conn.execute("UPDATE access_lock SET mode = ? WHERE id = 1", (mode.value,))
        self._emit(EventKind.CONFIG_CHANGE, at, actor, "lock", "operating mode set", mode=mode.value)

    def set_config(self, actor: str, at: datetime, **changes: Any) -> LockConfig:
        """Change lock settings (names of `LockConfig` fields), validated."""
        names = {f.name for f in fields(LockConfig)}
        for key, value in changes.items():
            if key not in names:
                raise BadRequest(key, "unknown lock setting")
            if key == "timezone":
                zone(str(value))
            elif isinstance(value, bool) or key == "require_pin_for_remote":
                continue
            elif not 1 <= int(value) <= 10_000_000:
                raise BadRequest(key, "out of range")
        with transaction(self.conn):
            self._actor(actor, touching=PermissionLevel.OWNER)
            current = _config(self.conn.execute("SELECT config FROM access_lock WHERE id = 1").fetchone()[0])
            new = replace(current, **changes)
            self.conn.execute("UPDATE access_lock SET config = ? WHERE id = 1", (json.dumps(asdict(new)),))
        self._emit(EventKind.CONFIG_CHANGE, at, actor, "lock", "lock settings changed", changes=changes)
        return new

    def set_online(self, online: bool) -> None:
        """Record link status (the link package calls this); offline limits apply while False."""
        with transaction(self.conn):
            self.conn.execute("UPDATE access_lock SET online = ? WHERE id = 1", (int(online),))

    def set_lockdown(self, on: bool, actor: str, at: datetime) -> None:
        """A lockdown command: biometric/code unlocks refused; key and owner recovery still work.

        Kept in the lock's one lockdown flag (`limen.tamper.lockdown`).  Lifting
        it needs an owner, and a tamper lockdown is not lifted here
        (`LockdownActive`: only re-provisioning lifts it).
        """
        with transaction(self.conn):
            if on:
                command_lockdown_in(self.conn, actor, at)
            else:
                self._actor(actor, touching=PermissionLevel.OWNER)
                lift_command_lockdown_in(self.conn, actor, at)
        # CONFIG_CHANGE, not TAMPER: the tamper package records (and alarms on) what tripped
        self._emit(EventKind.CONFIG_CHANGE, at, actor, "lock", "lockdown on" if on else "lockdown off")

    # ------------------------------------------------------------------ offline codes

    def offline_secret(self, ref: str, actor: str, at: datetime) -> Credential:
        """The user's offline-code secret credential, created on first use (owner/administrator only)."""
        user = self.user(ref)
        existing = [c for c in self.credentials(user.user_id)
                    if c.type is CredentialType.OFFLINE_CODE and not c.revoked]  # a revoked secret stays dead
        if existing:
            return existing[0]
        return self.add_credential(ref, CredentialType.OFFLINE_CODE, actor, at)

    def issue_code(self, kind: offline.CodeKind, actor: str, at: datetime, *, start: datetime | None = None,
                   hours: int = 24, days: int = 7, uses_per_day: int = 1) -> tuple[str, offline.OfflineGrant]:
        """Issue an offline code with the actor's secret (as the owner's app would) and record it."""
        issuer = self.user(actor)
        if not issuer.permission.programs:
            raise BadRequest("as", "only owners and administrators issue codes")
        cred = self.offline_secret(actor, actor, at)
        start = start or at
        with transaction(self.conn):
            issued = {r[0] for r in self.conn.execute("SELECT code_id FROM access_codes_issued")}
            code, grant = None, None
            for seq in range(100 if kind is offline.CodeKind.SINGLE_USE else 10):
                if kind is offline.CodeKind.SINGLE_USE:
                    code = offline.issue_single_use(cred.secret, start, seq)
                elif kind is offline.CodeKind.LIMITED:
                    code = offline.issue_limited(cred.secret, start, hours, seq)
                else:
                    code = offline.issue_period_quota(cred.secret, start, days, uses_per_day, seq)
                found = offline.verify(cred.secret, code, start)
                if isinstance(found, offline.OfflineGrant) and found.code_id not in issued:
                    grant = found
                    break
            if code is None or grant is None:
                raise Conflict("no free sequence number for this window; try another start")
            self.conn.execute(
                "INSERT INTO access_codes_issued VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (grant.code_id, cred.id, kind.value, code, _iso(grant.start), _iso(grant.end), grant.uses_per_day,
                 _iso(at), actor))
        self._emit(EventKind.CODE_CHANGE, at, actor, cred.user_id, "offline code issued", code_id=grant.code_id,
                   code_kind=kind.value, start=_iso(grant.start), end=_iso(grant.end))
        return code, grant

    def list_codes(self) -> list[dict[str, Any]]:
        revoked = {r[0] for r in self.conn.execute("SELECT code_id FROM access_code_revocations")}
        uses: dict[str, int] = {}
        for r in self.conn.execute("SELECT code_id, COUNT(*) FROM access_code_uses GROUP BY code_id"):
            uses[r[0]] = r[1]
        return [
            {"code_id": r["code_id"], "kind": r["kind"], "code": r["code"], "start": r["start_at"],
             "end": r["end_at"], "uses_per_day": r["uses_per_day"], "issued_by": r["issued_by"],
             "uses": uses.get(r["code_id"], 0), "revoked": r["code_id"] in revoked}
            for r in self.conn.execute("SELECT * FROM access_codes_issued ORDER BY issued_at")
        ]

    def revoke_code(self, code_or_id: str, actor: str, at: datetime) -> str:
        """Add a code (typed digits or its id) to the revocation list; effective on the next attempt."""
        code_id = code_or_id
        if code_or_id.isdigit():
            matches = [r["code_id"] for r in self.conn.execute("SELECT code_id, code FROM access_codes_issued")
                       if r["code"] == code_or_id]
            if not matches:
                raise NotFound("no issued code with these digits")
            code_id = matches[0]
        with transaction(self.conn):
            self._actor(actor)
            self.conn.execute("INSERT OR IGNORE INTO access_code_revocations VALUES (?, ?, ?)",
                              (code_id, _iso(at), actor))
        self._emit(EventKind.CODE_CHANGE, at, actor, None, "offline code revoked", code_id=code_id)
        return code_id

    def sync_revocations(self, code_ids: list[str], actor: str, at: datetime) -> int:
        """Merge a synchronised revocation list (from the owner's app or cloud); returns how many were new."""
        with transaction(self.conn):
            before = self.conn.execute("SELECT COUNT(*) FROM access_code_revocations").fetchone()[0]
            for code_id in code_ids:
                self.conn.execute("INSERT OR IGNORE INTO access_code_revocations VALUES (?, ?, ?)",
                                  (code_id, _iso(at), actor))
            added = int(self.conn.execute("SELECT COUNT(*) FROM access_code_revocations").fetchone()[0] - before)
        self._emit(EventKind.CODE_CHANGE, at, actor, None, "revocation list synchronised", added=added)
        return added

    # ------------------------------------------------------------------ attempts

    def decide(self, attempt: Attempt, at: datetime, rule: AssuranceRule | None = None) -> Judgement:
        """Judge `attempt` and persist its counters in one transaction (no two attempts interleave)."""
        with transaction(self.conn):
            state = self._load_state()
            judgement = judge(attempt, state, at, rule)
            self._apply(judgement.update, at)
            if judgement.decision.accepted:
                self._upgrade_pins(attempt, state, judgement.update)
        return judgement

    def _upgrade_pins(self, attempt: Attempt, state: AccessState, update: Update) -> None:
        entries = [f.digits for f in attempt.factors if isinstance(f, PinEntry)]
        used = set(update.credentials_used)
        for cred in state.credentials:
            if cred.id in used and cred.type is CredentialType.PIN and pins.needs_upgrade(cred.secret):
                for digits in entries:
                    self._upgrade_pin(cred, digits)

    def apply(self, update: Update, at: datetime) -> None:
        """Persist the counters an attempt changed (one transaction; survives restarts)."""
        with transaction(self.conn):
            self._apply(update, at)

    def _apply(self, update: Update, at: datetime) -> None:
        c = self.conn
        if update.lockout is not None:
            lk = update.lockout
            c.execute("UPDATE access_lock SET wrong_code_count = ?, lockouts = ?, locked_until = ?, "
                      "bio_fail_count = ? WHERE id = 1",
                      (lk.wrong_code_count, lk.lockouts, _iso(lk.locked_until), lk.bio_fail_count))
        online = bool(c.execute("SELECT online FROM access_lock WHERE id = 1").fetchone()[0])
        for cred_id in update.credentials_used:
            c.execute("UPDATE access_credentials SET uses = uses + 1, offline_uses = offline_uses + ?, "
                      "first_used_at = COALESCE(first_used_at, ?) WHERE id = ?",
                      (0 if online else 1, _iso(at), cred_id))
        if update.pin_used_by:
            c.execute("UPDATE access_users SET last_pin_at = ? WHERE user_id = ?", (_iso(at), update.pin_used_by))
        if update.code_use is not None:
            c.execute("INSERT INTO access_code_uses(code_id, used_at) VALUES (?, ?)",
                      (update.code_use.code_id, _iso(update.code_use.at)))
        if update.revoke_code is not None:
            c.execute("INSERT OR IGNORE INTO access_code_revocations VALUES (?, ?, ?)",
                      (update.revoke_code, _iso(at), "clear-code"))
        if update.key_offline_uses is not None:
            c.execute("UPDATE access_lock SET key_offline_uses = ? WHERE id = 1", (update.key_offline_uses,))
        if update.mode is not None:
            c.execute("UPDATE access_lock SET mode = ? WHERE id = 1", (update.mode.value,))
        if update.owner_reauth_required is not None:
            c.execute("UPDATE access_lock SET owner_reauth_required = ? WHERE id = 1",
                      (int(update.owner_reauth_required),))


# ---------------------------------------------------------------------- rows ↔ values


def _insert_access_user(conn: sqlite3.Connection, user_id: str, index: int, permission: PermissionLevel,
                        user_type: UserType, rule: CredentialRule, unique_id: str | None, actor: str,
                        at: datetime) -> None:
    conn.execute(
        "INSERT INTO access_users(user_id, user_index, unique_id, status, user_type, credential_rule, permission,"
        " created_at, modified_at, modified_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (user_id, index, unique_id, UserStatus.ENABLED.value, user_type.value, rule.value, permission.value,
         _iso(at), _iso(at), actor),
    )


def _next_index(conn: sqlite3.Connection) -> int:
    used = {r[0] for r in conn.execute("SELECT user_index FROM access_users")}
    for index in range(1, MAX_USERS + 1):
        if index not in used:
            return index
    raise BadRequest("index", "no free user slot")


def _default_pepper(conn: sqlite3.Connection) -> pins.Pepper:
    """The lock's PIN pepper: the token's (registered by the open vault) on a PKCS#11 lock, else the
    ``pin-pepper`` key file beside the database; an in-memory database gets a throwaway key."""
    from limen.vault.keystore.sidekeys import PIN_PEPPER, TOKEN_PEPPER_MARKER, file_side_key

    files = [row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main" and row[2]]
    if not files:
        return pins.NO_PEPPER
    keys_dir = Path(files[0]).parent / "keys"
    if (keys_dir / TOKEN_PEPPER_MARKER).exists():
        return pepper_for(conn) or _TokenPepperMissing()
    return file_side_key(keys_dir, PIN_PEPPER)


class _TokenPepperMissing:
    """A PKCS#11 lock's store built without its vault: PIN work is refused with one clear error."""

    def mac(self, data: bytes) -> bytes:
        raise KeyStoreError("this lock's PIN pepper is in the PKCS#11 token: open the lock through its runtime")


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _req_dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _config(text: str) -> LockConfig:
    data = json.loads(text)
    known = {f.name for f in fields(LockConfig)}
    return LockConfig(**{k: v for k, v in data.items() if k in known})


def _user(r: sqlite3.Row) -> AccessUser:
    if r["user_id"] is None:
        return AccessUser(user_id=r["id"], index=0, name=r["name"], implicit=True)
    return AccessUser(
        user_id=r["id"],
        index=r["user_index"],
        name=r["name"],
        status=UserStatus(r["status"]),
        user_type=UserType(r["user_type"]),
        credential_rule=CredentialRule(r["credential_rule"]),
        permission=PermissionLevel(r["permission"]),
        unique_id=r["unique_id"],
        pin_max_age_days=r["pin_max_age_days"],
        last_pin_at=_dt(r["last_pin_at"]),
    )


def _credential(r: sqlite3.Row) -> Credential:
    return Credential(
        id=r["id"],
        user_id=r["user_id"],
        type=CredentialType(r["cred_type"]),
        index=r["cred_index"],
        secret=bytes(r["secret"]),
        pin_length=r["pin_length"],
        revoked=bool(r["revoked"]),
        backup=bool(r["backup"]),
        created_at=_dt(r["created_at"]),
        valid_from=_dt(r["valid_from"]),
        valid_until=_dt(r["valid_until"]),
        max_uses=r["max_uses"],
        uses=r["uses"],
        expire_after_first_use_s=r["expire_after_s"],
        first_used_at=_dt(r["first_used_at"]),
        offline_uses=r["offline_uses"],
        offline_max_uses=r["offline_max_uses"],
    )


def _week_day(r: sqlite3.Row) -> WeekDaySchedule:
    def minute(m: int) -> time:
        return time.max if m >= 1440 else time(m // 60, m % 60)

    return WeekDaySchedule(r["user_id"], r["sched_index"], Day(r["days_mask"]), minute(r["start_minute"]),
                           minute(r["end_minute"]))


def _year_day(r: sqlite3.Row) -> YearDaySchedule:
    return YearDaySchedule(r["user_id"], r["sched_index"], _req_dt(r["start_at"]), _req_dt(r["end_at"]))


def _holiday(r: sqlite3.Row) -> HolidaySchedule:
    return HolidaySchedule(r["sched_index"], _req_dt(r["start_at"]), _req_dt(r["end_at"]),
                           OperatingMode(r["mode"]))

