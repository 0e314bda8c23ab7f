"""Owner accounts of the web service: one-time setup token, passwords, TOTP, sessions, API tokens.

There is no default password.  The first start creates a random setup token
(`secrets.token_urlsafe`), stores only its SHA-256 and returns it once for the
console; using it creates the first owner account and burns it.  Passwords are
hashed with Argon2id; session ids and API tokens are 256-bit random values
stored hashed, compared through their hash (a database lookup), never logged.

Thread-safety: every method takes the instance lock; the instance owns its
SQLite connection (migrations applied by `limen.db.open_db`).
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from limen import thresholds as T
from limen.clock import Clock, SystemClock
from limen.db import transaction
from limen.errors import BadRequest, Conflict, NotFound

_HASHER = PasswordHasher()  # Argon2id with argon2-cffi's RFC 9106 low-memory profile
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))  # verified for unknown users: same cost either way
MAX_USERNAME = 64
MAX_PASSWORD = 1024
MAX_TOKEN_NAME = 64
TOUCH_EVERY_S = 30  # last-seen times are written at most this often (each write is a synchronous commit)


@dataclass(frozen=True)
class Owner:
    """A web account; `user_id` is the access-engine user (an owner) it acts as."""

    id: str
    username: str
    user_id: str
    totp: bool


@dataclass(frozen=True)
class Session:
    owner: Owner
    csrf: str
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
        password_hash = _HASHER.hash(password)
        with self._lock, transaction(self.conn):
            if self._setup_row(token) is None:
                raise BadRequest("token", "the setup link is invalid or was already used")
            self.conn.execute("UPDATE service_setup SET used_at = ? WHERE id = 1", (self._now(),))
            return self._insert_owner(username, password_hash, user_id, totp_secret)

    def add_owner(self, username: str, password: str, user_id: str, totp_secret: str | None = None) -> Owner:
        """Another account (created by a logged-in owner for a user the access engine made an owner)."""
        username, password = validate_username(username), validate_password(password)
        password_hash = _HASHER.hash(password)
        with self._lock, transaction(self.conn):
            return self._insert_owner(username, password_hash, user_id, totp_secret)

    def _insert_owner(self, username: str, password_hash: str, user_id: str, totp_secret: str | None) -> Owner:
        if self.conn.execute("SELECT 1 FROM service_owners WHERE username = ?", (username,)).fetchone():
            raise Conflict(f"an account named {username!r} exists")
        owner_id = secrets.token_hex(16)
        self.conn.execute("INSERT INTO service_owners(id, username, user_id, password_hash, totp_secret, created_at)"
                          " VALUES (?, ?, ?, ?, ?, ?)",
                          (owner_id, username, user_id, password_hash, totp_secret, self._now()))
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
        if row["totp_secret"] and not pyotp.TOTP(row["totp_secret"]).verify(totp_code or "", valid_window=1):
            return None
        return _owner(row)

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
                "SELECT s.csrf, s.seen_at, s.expires_at, o.* FROM service_sessions s "
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
        return Session(_owner(row), row["csrf"], expires)

    def close_session(self, sid: str) -> None:
        with self._lock, transaction(self.conn):
            self.conn.execute("DELETE FROM service_sessions WHERE id_hash = ?", (digest(sid or ""),))

    # ------------------------------------------------------------------ API tokens
    def issue_token(self, owner: Owner, name: str) -> tuple[str, str]:
        """A new API token for integrations: (id, token); the token is shown once and stored hashed."""
        name = (name or "").strip()
        if not 1 <= len(name) <= MAX_TOKEN_NAME or not name.isprintable():
            raise BadRequest("name", f"1-{MAX_TOKEN_NAME} printable characters")
        token_id, token = secrets.token_hex(8), "lmn_" + secrets.token_urlsafe(32)
        with self._lock, transaction(self.conn):
            self.conn.execute("INSERT INTO service_tokens(id, token_hash, owner_id, name, created_at) "
                              "VALUES (?, ?, ?, ?, ?)", (token_id, digest(token), owner.id, name, self._now()))
        return token_id, token

    def tokens(self, owner: Owner) -> list[dict[str, object]]:
        with self._lock:
            rows = self.conn.execute("SELECT id, name, created_at, last_used, revoked FROM service_tokens "
                                     "WHERE owner_id = ? ORDER BY created_at", (owner.id,)).fetchall()
        return [{**dict(r), "revoked": bool(r["revoked"])} for r in rows]

    def revoke_token(self, owner: Owner, token_id: str) -> None:
        with self._lock, transaction(self.conn):
            cur = self.conn.execute("UPDATE service_tokens SET revoked = 1 WHERE id = ? AND owner_id = ?",
                                    (token_id, owner.id))
            if cur.rowcount == 0:
                raise NotFound(f"no API token {token_id!r}")

    def token_owner(self, token: str) -> Owner | None:
        if not token or len(token) > 256:
            return None
        with self._lock:
            row = self.conn.execute("SELECT t.id AS token_id, t.last_used, o.* FROM service_tokens t JOIN "
                                    "service_owners o ON o.id = t.owner_id WHERE t.token_hash = ? AND t.revoked = 0",
                                    (digest(token),)).fetchone()
            if row is None:
                return None
            now = self.clock.now()
            last = datetime.fromisoformat(row["last_used"]) if row["last_used"] else None
            if last is None or now - last > timedelta(seconds=TOUCH_EVERY_S):
                with transaction(self.conn):
                    self.conn.execute("UPDATE service_tokens SET last_used = ? WHERE id = ?",
                                      (now.isoformat(), row["token_id"]))
        return _owner(row)

    # ------------------------------------------------------------------ paired door screens
    def pair_kiosk(self, owner: Owner, name: str) -> tuple[str, str]:
        """A pairing token for a door screen reached from another machine: (id, token), shown once."""
        name = (name or "").strip()
        if not 1 <= len(name) <= MAX_TOKEN_NAME or not name.isprintable():
            raise BadRequest("name", f"1-{MAX_TOKEN_NAME} printable characters")
        kiosk_id, token = secrets.token_hex(8), secrets.token_urlsafe(32)
        with self._lock, transaction(self.conn):
            self.conn.execute("INSERT INTO service_kiosks(id, token_hash, name, created_at, created_by) "
                              "VALUES (?, ?, ?, ?, ?)", (kiosk_id, digest(token), name, self._now(), owner.id))
        return kiosk_id, token

    def kiosk_paired(self, token: str) -> bool:
        if not token or len(token) > 256:
            return False
        with self._lock:
            return self.conn.execute("SELECT 1 FROM service_kiosks WHERE token_hash = ? AND revoked = 0",
                                     (digest(token),)).fetchone() is not None

    def kiosks(self) -> list[dict[str, object]]:
        with self._lock:
            rows = self.conn.execute("SELECT id, name, created_at, revoked FROM service_kiosks "
                                     "ORDER BY created_at").fetchall()
        return [{**dict(r), "revoked": bool(r["revoked"])} for r in rows]

    def unpair_kiosk(self, kiosk_id: str) -> None:
        with self._lock, transaction(self.conn):
            if self.conn.execute("UPDATE service_kiosks SET revoked = 1 WHERE id = ?", (kiosk_id,)).rowcount == 0:
                raise NotFound(f"no door screen {kiosk_id!r}")

    def _now(self) -> str:
        return self.clock.now().isoformat()


def _verify(password_hash: str, password: str) -> bool:
    try:
        return bool(_HASHER.verify(password_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _owner(row: sqlite3.Row) -> Owner:
    return Owner(row["id"], row["username"], row["user_id"], row["totp_secret"] is not None)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name="Limen")
