"""Owner accounts of the web service: one-time setup token, passwords, TOTP, sessions, API tokens.

There is no default password.  The first start creates a random setup token
(`secrets.token_urlsafe`), stores only its SHA-256 and returns it once for the
console; using it creates the first owner account and burns it.  Passwords are
hashed with Argon2id (64 MiB each: one computation at a time in the process,
`PASSWORD_CHECKS_AT_ONCE`, so a burst of logins cannot add hundreds of MB);
session ids and API tokens are 256-bit random values
stored hashed, never logged.  An API token (`lmn_<id>_<secret>`) is found by
its id and its hash compared in constant time; it carries scopes (`Scope`) and
an expiry, and can never mint tokens or change PINs: those need the owner's
session confirmed by password (+ TOTP) within `SERVICE_STEP_UP_S` (`step_up`).
A TOTP time step is accepted once per account (no replay within its window).

Thread-safety: every method takes the instance lock; the instance owns its
SQLite connection (the `service` migrations applied when `Accounts` opens).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from limen import thresholds as T
from limen.clock import Clock, SystemClock
from limen.db import migrate, transaction
from limen.errors import BadRequest, Conflict, LimenError, NotFound, VaultErased
from limen.service.schema import MIGRATIONS
from limen.vault.secrets import box_for

log = logging.getLogger(__name__)
_HASHER = PasswordHasher()  # Argon2id with argon2-cffi's RFC 9106 low-memory profile (m = 64 MiB, t = 3, p = 4)
# Password hashes at once within the PIN path's Argon2id memory budget (at least one): five logins allowed by the
# rate limiter's burst otherwise took 5 × 64 MiB at once (+320 MB RSS); the excess waits.
PASSWORD_CHECKS_AT_ONCE = max(1, T.PIN_ARGON2_MEMORY_BUDGET_KIB // _HASHER.memory_cost)
_PASSWORD_SLOTS = threading.BoundedSemaphore(PASSWORD_CHECKS_AT_ONCE)
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))  # verified for unknown users: same cost either way
MAX_USERNAME = 64
MAX_PASSWORD = 1024
MAX_TOKEN_NAME = 64
LOCAL_SCREEN = "this lock's own screen"  # name of the door screens paired from loopback
TOUCH_EVERY_S = 30  # last-seen times are written at most this often (each write is a synchronous commit)


@dataclass(frozen=True)
class Owner:
    """A web account; `user_id` is the access-engine user (an owner) it acts as."""

    id: str
    username: str
    user_id: str
    totp: bool


class Scope(StrEnum):
    """What an API token may do.  No scope mints tokens or changes PINs, passwords or TOTP."""

    READ = "read"  # lock state, users, codes, audit, alarms, tokens (lists)
    MANAGE = "manage"  # lock the door, schedules, enrolment, revocations (with UNLOCK: users with a PIN, codes)
    UNLOCK = "unlock"  # remote unlock (the owner's PIN asked); with MANAGE, PINs and codes that die with the token


@dataclass(frozen=True)
class Session:
    owner: Owner
    csrf: str
    expires_at: datetime
    stepped_up_until: datetime | None = None

    def stepped_up(self, now: datetime) -> bool:
        return self.stepped_up_until is not None and now < self.stepped_up_until


@dataclass(frozen=True)
class TokenGrant:
    """A valid API token: the owner it acts for, what it may do, until when."""

    owner: Owner
    token_id: str
    scopes: frozenset[Scope]
    expires_at: datetime


def digest(secret: str) -> str:
    """SHA-256 of a random secret (session id, token): what is stored and looked up."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def validate_username(username: str) -> str:
    name = (username or "").strip()
    if not 1 <= len(name) <= MAX_USERNAME or not name.isprintable():
        raise BadRequest("username", f"1-{MAX_USERNAME} printable characters")
    return name


def validate_password(password: str) -> str:
    if not T.SERVICE_PASSWORD_MIN_LENGTH <= len(password or "") <= MAX_PASSWORD:
        raise BadRequest("password", f"at least {T.SERVICE_PASSWORD_MIN_LENGTH} characters")
    return password


class Accounts:
    """The owner accounts, sessions and API tokens in the `service_*` tables."""

    def __init__(self, conn: sqlite3.Connection, clock: Clock | None = None) -> None:
        self.conn = conn
        self.clock = clock or SystemClock()
        self._lock = threading.RLock()
        self._step_up_failures: dict[str, int] = {}  # account id → wrong confirmations in a row (this process)
        migrate(conn, "service", MIGRATIONS)  # the service owns its tables (no-op once applied)
        self._seal_clear_totp_secrets()

    # ------------------------------------------------------------------ first run
    def has_owner(self) -> bool:
        with self._lock:
            return self.conn.execute("SELECT 1 FROM service_owners LIMIT 1").fetchone() is not None

    def new_setup_token(self) -> str:
        """A fresh one-time setup token (any earlier unused one stops working); returned once."""
        token = secrets.token_urlsafe(32)
        with self._lock, transaction(self.conn):
            self.conn.execute("INSERT OR REPLACE INTO service_setup(id, token_hash, created_at, used_at) "
                              "VALUES (1, ?, ?, NULL)", (digest(token), self._now()))
        return token

    def setup_token_valid(self, token: str) -> bool:
        with self._lock:
            return self._setup_row(token) is not None

    def _setup_row(self, token: str) -> sqlite3.Row | None:
        if not token or len(token) > 256 or self.has_owner():
            return None
        return self.conn.execute("SELECT * FROM service_setup WHERE id = 1 AND token_hash = ? AND used_at IS NULL",
                                 (digest(token),)).fetchone()

    def create_first_owner(self, token: str, username: str, password: str, user_id: str,
                           totp_secret: str | None = None) -> Owner:
        """Create the first account with the setup token, burning it (all or nothing)."""
        username, password = validate_username(username), validate_password(password)
        password_hash = _hash(password)
        with self._lock, transaction(self.conn):
            if self._setup_row(token) is None:
                raise BadRequest("token", "the setup link is invalid or was already used")
            self.conn.execute("UPDATE service_setup SET used_at = ? WHERE id = 1", (self._now(),))
            return self._insert_owner(username, password_hash, user_id, totp_secret)

    def burn_totp_step(self, owner: Owner, step: int) -> None:
        """Record a TOTP time step as used: the code typed at setup cannot log in or step up again."""
        with self._lock, transaction(self.conn):
            self.conn.execute("UPDATE service_owners SET totp_last_step = MAX(totp_last_step, ?) WHERE id = ?",
                              (step, owner.id))

    def _insert_owner(self, username: str, password_hash: str, user_id: str, totp_secret: str | None) -> Owner:
        if self.conn.execute("SELECT 1 FROM service_owners WHERE username = ?", (username,)).fetchone():
            raise Conflict(f"an account named {username!r} exists")
        owner_id = secrets.token_hex(16)
        stored = None if totp_secret is None else _seal_totp(self.conn, owner_id, totp_secret)
        self.conn.execute("INSERT INTO service_owners(id, username, user_id, password_hash, totp_secret, created_at)"
                          " VALUES (?, ?, ?, ?, ?, ?)",
                          (owner_id, username, user_id, password_hash, stored, self._now()))
        return Owner(owner_id, username, user_id, totp_secret is not None)

    # ------------------------------------------------------------------ login
    def login(self, username: str, password: str, totp_code: str = "") -> Owner | None:
        """The owner if the password (and TOTP code when enabled) is right, else None (one answer)."""
        with self._lock:
            row = self.conn.execute("SELECT * FROM service_owners WHERE username = ?",
                                    ((username or "").strip()[:MAX_USERNAME],)).fetchone()
        ok = _verify(row["password_hash"] if row else _DUMMY_HASH, (password or "")[:MAX_PASSWORD])
        if row is None or not ok:
            return None
        if row["totp_secret"] and not self._use_totp(row, totp_code):
            return None
        return _owner(row)

    def step_up(self, sid: str, password: str, totp_code: str = "") -> bool:
        """Confirm the session's owner (password, + TOTP when enabled) for `SERVICE_STEP_UP_S`; False if wrong."""
        session = self.session(sid)
        if session is None:
            return False
        with self._lock:
            row = self.conn.execute("SELECT * FROM service_owners WHERE id = ?", (session.owner.id,)).fetchone()
        if (row is None or not _verify(row["password_hash"], (password or "")[:MAX_PASSWORD])
                or (row["totp_secret"] and not self._use_totp(row, totp_code))):
            self._step_up_failed(session.owner, sid)
            return False
        with self._lock:
            self._step_up_failures.pop(session.owner.id, None)
        until = self.clock.now() + timedelta(seconds=T.SERVICE_STEP_UP_S)
        with self._lock, transaction(self.conn):
            self.conn.execute("UPDATE service_sessions SET stepped_up_until = ? WHERE id_hash = ?",
                              (until.isoformat(), digest(sid)))
        return True

    def _step_up_failed(self, owner: Owner, sid: str) -> None:
        """One more wrong confirmation for the account (any of its sessions); at
        `SERVICE_STEP_UP_MAX_FAILURES` in a row the asking session ends (a stolen cookie guesses no further)."""
        with self._lock:
            failures = self._step_up_failures.get(owner.id, 0) + 1
            self._step_up_failures[owner.id] = failures
            if failures < T.SERVICE_STEP_UP_MAX_FAILURES:
                return
            del self._step_up_failures[owner.id]  # a new login (the password again) starts from none
            with transaction(self.conn):
                self.conn.execute("DELETE FROM service_sessions WHERE id_hash = ?", (digest(sid),))
        log.warning("session of account %s ended after %d wrong password confirmations", owner.id, failures)

    def _use_totp(self, row: sqlite3.Row, code: str) -> bool:
        """Whether `code` is the owner's current TOTP (±1 step) and its time step was never used before."""
        secret = self._totp_secret(row)
        step = None if secret is None else totp_step(secret, code or "", self.clock.now())
        if step is None:
            return False
        with self._lock, transaction(self.conn):  # atomic: two requests with one code cannot both pass
            cur = self.conn.execute("UPDATE service_owners SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?",
                                    (step, row["id"], step))
        return cur.rowcount == 1

    def _totp_secret(self, row: sqlite3.Row) -> str | None:
        """The owner's TOTP seed, unsealed; None (the code is refused) when the vault cannot open it."""
        stored = str(row["totp_secret"])
        if not stored.startswith(_SEALED_TOTP):
            return stored  # stored before TOTP seeds were sealed, and no vault open since
        box = box_for(self.conn)
        try:
            if box is None:
                raise VaultErased("no vault is open to unseal the TOTP seed")
            return box.unseal(f"totp:{row['id']}", base64.b64decode(stored[len(_SEALED_TOTP):])).decode("ascii")
        except (LimenError, ValueError) as exc:
            log.warning("TOTP seed of account %s unavailable (%s): its codes are refused", row["id"],
                        type(exc).__name__)
            return None

    def _seal_clear_totp_secrets(self) -> None:
        """Seal TOTP seeds stored in the clear (before they were sealed), once a vault is open."""
        clear = ("SELECT 1 FROM service_owners WHERE totp_secret IS NOT NULL AND totp_secret NOT LIKE 'sealed:%' "
                 "LIMIT 1")
        if box_for(self.conn) is None or self.conn.execute(clear).fetchone() is None:
            return
        with self._lock, transaction(self.conn):
            rows = self.conn.execute("SELECT id, totp_secret FROM service_owners WHERE totp_secret IS NOT NULL "
                                     "AND totp_secret NOT LIKE 'sealed:%'").fetchall()
            for row in rows:
                try:
                    sealed = _seal_totp(self.conn, row["id"], row["totp_secret"])
                except LimenError:
                    return  # an erased vault: nothing to seal under
                self.conn.execute("UPDATE service_owners SET totp_secret = ? WHERE id = ?", (sealed, row["id"]))

    def open_session(self, owner: Owner) -> tuple[str, Session]:
        """A new session for `owner`: (session id for the cookie, session with its CSRF token)."""
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock.now()
        expires = now + timedelta(seconds=T.SERVICE_SESSION_TTL_S)
        with self._lock, transaction(self.conn):
            self.conn.execute("INSERT INTO service_sessions(id_hash, owner_id, csrf, created_at, seen_at, expires_at)"
                              " VALUES (?, ?, ?, ?, ?, ?)",
                              (digest(sid), owner.id, csrf, now.isoformat(), now.isoformat(), expires.isoformat()))
            self.conn.execute("DELETE FROM service_sessions WHERE expires_at < ?", (now.isoformat(),))
        return sid, Session(owner, csrf, expires)

    def session(self, sid: str) -> Session | None:
        """The live session for cookie value `sid`; expired or idle sessions are deleted and give None."""
        if not sid or len(sid) > 256:
            return None
        now = self.clock.now()
        with self._lock:
            row = self.conn.execute(
                "SELECT s.csrf, s.seen_at, s.expires_at, s.stepped_up_until, o.* FROM service_sessions s "
                "JOIN service_owners o ON o.id = s.owner_id WHERE s.id_hash = ?", (digest(sid),)).fetchone()
            if row is None:
                return None
            idle = now - datetime.fromisoformat(row["seen_at"]) > timedelta(seconds=T.SERVICE_SESSION_IDLE_S)
            expires = datetime.fromisoformat(row["expires_at"])
            if idle or now >= expires:
                with transaction(self.conn):
                    self.conn.execute("DELETE FROM service_sessions WHERE id_hash = ?", (digest(sid),))
                return None
            if now - datetime.fromisoformat(row["seen_at"]) > timedelta(seconds=TOUCH_EVERY_S):
                with transaction(self.conn):
                    self.conn.execute("UPDATE service_sessions SET seen_at = ? WHERE id_hash = ?",
                                      (now.isoformat(), digest(sid)))
        stepped = datetime.fromisoformat(row["stepped_up_until"]) if row["stepped_up_until"] else None
        return Session(_owner(row), row["csrf"], expires, stepped)

    def close_session(self, sid: str) -> None:
        with self._lock, transaction(self.conn):
            self.conn.execute("DELETE FROM service_sessions WHERE id_hash = ?", (digest(sid or ""),))

    # ------------------------------------------------------------------ API tokens
    def issue_token(self, owner: Owner, name: str, scopes: frozenset[Scope] | set[Scope], days: int) -> tuple[str, str]:
        """A new API token: (id, token); shown once, stored hashed.  Callers check the owner's step-up first."""
        name = (name or "").strip()
        if not 1 <= len(name) <= MAX_TOKEN_NAME or not name.isprintable():
            raise BadRequest("name", f"1-{MAX_TOKEN_NAME} printable characters")
        if not scopes:
            raise BadRequest("scopes", "at least one of read, manage, unlock")
        if not 1 <= days <= T.SERVICE_TOKEN_MAX_DAYS:
            raise BadRequest("days", f"1-{T.SERVICE_TOKEN_MAX_DAYS}")
        token_id = secrets.token_hex(8)
        token = f"lmn_{token_id}_{secrets.token_urlsafe(32)}"
        now = self.clock.now()
        expires = now + timedelta(days=days)
        with self._lock, transaction(self.conn):
            self.conn.execute("INSERT INTO service_tokens(id, token_hash, owner_id, name, created_at, scopes, "
                              "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                              (token_id, digest(token), owner.id, name, now.isoformat(),
                               ",".join(sorted(Scope(s).value for s in scopes)), expires.isoformat()))
        return token_id, token

    def tokens(self, owner: Owner) -> list[dict[str, object]]:
        now = self.clock.now()
        with self._lock:
            rows = self.conn.execute("SELECT id, name, scopes, created_at, expires_at, last_used, revoked "
                                     "FROM service_tokens WHERE owner_id = ? ORDER BY created_at",
                                     (owner.id,)).fetchall()
        return [{**dict(r), "scopes": [x for x in r["scopes"].split(",") if x], "revoked": bool(r["revoked"]),
                 "expired": now >= datetime.fromisoformat(r["expires_at"])} for r in rows]

    def revoke_token(self, owner: Owner, token_id: str) -> None:
        with self._lock, transaction(self.conn):
            cur = self.conn.execute("UPDATE service_tokens SET revoked = 1 WHERE id = ? AND owner_id = ?",
                                    (token_id, owner.id))
            if cur.rowcount == 0:
                raise NotFound(f"no API token {token_id!r}")

    def token_grant(self, token: str) -> TokenGrant | None:
        """The grant behind a presented token, or None if unknown, wrong, revoked, expired or scope-less."""
        parts = (token or "").split("_", 2)
        if len(token or "") > 256 or len(parts) != 3 or parts[0] != "lmn" or len(parts[1]) != 16:
            return None
        now = self.clock.now()
        with self._lock:
            row = self.conn.execute("SELECT t.id AS token_id, t.token_hash, t.revoked, t.scopes, t.expires_at, "
                                    "t.last_used, o.* FROM service_tokens t JOIN service_owners o "
                                    "ON o.id = t.owner_id WHERE t.id = ?", (parts[1],)).fetchone()
            if row is None or not hmac.compare_digest(digest(token).encode(), row["token_hash"].encode()):
                return None
            expires = datetime.fromisoformat(row["expires_at"])
            scopes = frozenset(Scope(x) for x in row["scopes"].split(",") if x)
            if row["revoked"] or now >= expires or not scopes:
                return None
            last = datetime.fromisoformat(row["last_used"]) if row["last_used"] else None
            if last is None or now - last > timedelta(seconds=TOUCH_EVERY_S):
                with transaction(self.conn):
                    self.conn.execute("UPDATE service_tokens SET last_used = ? WHERE id = ?",
                                      (now.isoformat(), row["token_id"]))
        return TokenGrant(_owner(row), row["token_id"], scopes, expires)

    # ------------------------------------------------------------------ paired door screens
    def pair_kiosk(self, owner: Owner, name: str) -> tuple[str, str]:
        """A pairing link token for a door screen on another machine: (id, token), shown once.

        It works once, within `SERVICE_PAIRING_TTL_S`; redeeming it (`redeem_pairing`) gives the
        screen a different, long-lived cookie secret, so the link seen on the owner's page opens nothing.
        """
        name = (name or "").strip()
        if not 1 <= len(name) <= MAX_TOKEN_NAME or not name.isprintable():
            raise BadRequest("name", f"1-{MAX_TOKEN_NAME} printable characters")
        kiosk_id, token = secrets.token_hex(8), secrets.token_urlsafe(32)
        now = self.clock.now()
        expires = now + timedelta(seconds=T.SERVICE_PAIRING_TTL_S)
        with self._lock, transaction(self.conn):
            self.conn.execute("INSERT INTO service_kiosks(id, token_hash, name, created_at, created_by, pair_hash, "
                              "pair_expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                              (kiosk_id, "unpaired:" + secrets.token_hex(16), name, now.isoformat(), owner.id,
                               digest(token), expires.isoformat()))
        return kiosk_id, token

    def redeem_pairing(self, token: str) -> str | None:
        """Use a pairing link once: the door screen's cookie secret, or None (unknown, used, expired, revoked)."""
        if not token or len(token) > 256:
            return None
        cookie = secrets.token_urlsafe(32)
        now = self.clock.now()
        with self._lock, transaction(self.conn):
            cur = self.conn.execute("UPDATE service_kiosks SET token_hash = ?, paired_at = ?, pair_hash = NULL "
                                    "WHERE pair_hash = ? AND paired_at IS NULL AND revoked = 0 AND pair_expires_at > ?",
                                    (digest(cookie), now.isoformat(), digest(token), now.isoformat()))
        return cookie if cur.rowcount == 1 else None

    def pair_local_screen(self) -> str:
        """A cookie secret for a browser on the lock itself (its own door screen); older ones beyond the cap are deleted
        (each GET /kiosk of an unpaired local browser makes one: revoking them only would grow the table forever)."""
        cookie = secrets.token_urlsafe(32)
        now = self._now()
        with self._lock, transaction(self.conn):
            self.conn.execute("INSERT INTO service_kiosks(id, token_hash, name, created_at, created_by, paired_at) "
                              "VALUES (?, ?, ?, ?, 'loopback', ?)",
                              (secrets.token_hex(8), digest(cookie), LOCAL_SCREEN, now, now))
            self.conn.execute("DELETE FROM service_kiosks WHERE name = ? AND created_by = 'loopback' AND id NOT IN "
                              "(SELECT id FROM service_kiosks WHERE name = ? AND revoked = 0 "
                              "ORDER BY created_at DESC, rowid DESC LIMIT ?)",
                              (LOCAL_SCREEN, LOCAL_SCREEN, T.SERVICE_MAX_LOCAL_SCREENS))
        return cookie

    def kiosk_paired(self, token: str) -> bool:
        if not token or len(token) > 256:
            return False
        with self._lock:
            return self.conn.execute("SELECT 1 FROM service_kiosks WHERE token_hash = ? AND revoked = 0 "
                                     "AND paired_at IS NOT NULL", (digest(token),)).fetchone() is not None

    def kiosks(self) -> list[dict[str, object]]:
        with self._lock:
            rows = self.conn.execute("SELECT id, name, created_at, paired_at, pair_expires_at, revoked "
                                     "FROM service_kiosks ORDER BY created_at").fetchall()
        return [{**dict(r), "revoked": bool(r["revoked"])} for r in rows]

    def unpair_kiosk(self, kiosk_id: str) -> None:
        with self._lock, transaction(self.conn):
            if self.conn.execute("UPDATE service_kiosks SET revoked = 1 WHERE id = ?", (kiosk_id,)).rowcount == 0:
                raise NotFound(f"no door screen {kiosk_id!r}")

    def _now(self) -> str:
        return self.clock.now().isoformat()


def _hash(password: str) -> str:
    with _PASSWORD_SLOTS:
        return _HASHER.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        with _PASSWORD_SLOTS:
            return bool(_HASHER.verify(password_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _owner(row: sqlite3.Row) -> Owner:
    return Owner(row["id"], row["username"], row["user_id"], row["totp_secret"] is not None)


_SEALED_TOTP = "sealed:v1:"


def _seal_totp(conn: sqlite3.Connection, owner_id: str, seed: str) -> str:
    """The TOTP seed sealed under the vault (AES-GCM, bound to the account); in the clear without a vault."""
    box = box_for(conn)
    if box is None:
        return seed
    return _SEALED_TOTP + base64.b64encode(box.seal(f"totp:{owner_id}", seed.encode("ascii"))).decode("ascii")


def totp_step(secret: str, code: str, at: datetime) -> int | None:
    """The time step (±1 around `at`) whose TOTP is `code`, compared in constant time; None if none."""
    totp = pyotp.TOTP(secret)
    for offset in (0, -1, 1):
        when = at + timedelta(seconds=offset * totp.interval)
        if hmac.compare_digest(totp.at(when).encode(), code.strip().encode()):
            return int(totp.timecode(when))
    return None


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name="Limen")
