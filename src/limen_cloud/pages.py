"""The owner's web pages: log in (Argon2id + TOTP), locks with their state, history across locks, alarms.

Server-rendered (Jinja2, no script, no CDN; one stylesheet served here).  The
session is the same bearer token the API hands out (stored as its SHA-256),
carried in a `__Host-` cookie (Secure, HttpOnly, SameSite=Strict, Path=/).
Every form carries a CSRF token derived from the session token
(HMAC-SHA256), compared in constant time; a POST whose `Origin` is another
origin, or that a browser marks `Sec-Fetch-Site: cross-site`, is refused
before anything else.  Pages answer with a strict CSP and `no-store`.

TOTP (RFC 6238, 30 s, ±1 step) is enrolled on `/account/totp` with a QR code
(segno, SVG) and then required at every log-in, on the pages and the API; a
step is accepted once (no replay).  The seed is stored as enrolled (like the
apprise URLs: the database is trusted; see docs/cloud.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import logging
import re
import secrets
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import pyotp
import segno
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, Depends, Form, Header, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session as DbSession

from limen import thresholds as T
from limen_cloud import sources
from limen_cloud.api import (
    _DUMMY_HASH,
    NO_SUCH_CLAIM,
    PASSWORD_MIN,
    SAME_PASSWORD,
    SESSION_HOURS,
    SIGN_UP_NEEDS_INVITE,
    Db,
    Limited,
    LockClaim,
    PasswordChange,
    PasswordReset,
    PushIn,
    SignUp,
    SignUpLimited,
    SignUpRefused,
    _hasher,
    _limited,
    claim,
    client_key,
    live_reset,
    my_lock,
    register,
    spend_reset,
    utcnow,
)
from limen_cloud.db import write_lock
from limen_cloud.evidence import NotReplaceable, mark_replaced, verify_archive
from limen_cloud.models import (
    Alarm,
    ArchivedChain,
    ArchivedRecord,
    FormerDestination,
    Lock,
    Owner,
    PushSubscription,
    Record,
    Session,
)
from limen_cloud.notify import Network, destination_allowed, former_push, former_webhook
from limen_cloud.statements import StatementRefused, recheck

log = logging.getLogger(__name__)

COOKIE = "__Host-limen-cloud"
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.globals["password_min"] = PASSWORD_MIN
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
NOTICES = {"acknowledged": "Alarm acknowledged.", "totp-on": "Authenticator enrolled: it is asked at every log-in.",
           "webhook-off": "Community webhook removed.", "logged-out": "Logged out.",
           "signed-up": "Account made: log in.", "claimed": "Lock claimed: it is yours now.",
           "push-on": "This browser now receives alarms.", "push-off": "That browser no longer receives alarms.",
           "others-out": "Every other session of this account ended.",
           "password-changed": "Password changed: every other session of this account ended.",
           "password-reset": "Password set: every session of the account ended; log in with the new password.",
           "replaced": "Lock marked replaced: its old chain is archived; the new lock's chain is taken from its "
                       "first record."}
STEP_UP_FAILED = "wrong password or authenticator code"
# /account runs one script of its own (push.js: "notify this browser"); every other page runs none
ACCOUNT_CSP = CSP.replace("default-src 'none';", "default-src 'none'; script-src 'self'; connect-src 'self'; "
                          "worker-src 'self';")
_STYLE = (Path(__file__).parent / "templates" / "cloud.css").read_text(encoding="utf-8")
_PUSH_JS = (Path(__file__).parent / "templates" / "push.js").read_text(encoding="utf-8")
_PUSH_SW = (Path(__file__).parent / "templates" / "push-sw.js").read_text(encoding="utf-8")


# ------------------------------------------------------------------ authentication (pages and API)

def authenticate(session: DbSession, email: str, password: str, totp: str, at: datetime) -> Owner | None:
    """The owner whose password (Argon2id) and, once enrolled, TOTP code are right; None for any failure.

    The password is checked even for an unknown e-mail (same time); an accepted TOTP step is remembered so
    the same code cannot log in twice: one conditional UPDATE takes it (the row lock, or SQLite's write lock, holds
    concurrent log-ins with the same code until this one ends; they then find the step taken).
    """
    account = session.scalar(select(Owner).where(Owner.email == email.strip().lower()))
    try:
        _hasher.verify(account.password_hash if account else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if account is None:
        return None
    if account.totp_secret is not None:
        step = totp_step(account.totp_secret, totp, at)
        if step is None:
            return None
        taken = session.execute(update(Owner).where(
            Owner.id == account.id, or_(Owner.totp_step.is_(None), Owner.totp_step < step)).values(totp_step=step))
        if int(getattr(taken, "rowcount", 0) or 0) != 1:
            return None
    return account


def totp_step(secret: str, code: str, at: datetime) -> int | None:
    """The time step (±1 around `at`) whose code is `code`, compared in constant time; None if none."""
    totp = pyotp.TOTP(secret)
    typed = code.strip().replace(" ", "").encode()
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)  # naive means UTC here (pyotp: local time)
    found = None
    for offset in (0, -1, 1):
        when = at + timedelta(seconds=offset * totp.interval)
        if hmac.compare_digest(totp.at(when).encode(), typed):
            found = int(totp.timecode(when))
    return found


def step_up(session: DbSession, owner: Owner, password: str, totp: str, at: datetime) -> bool:
    """Whether the logged-in `owner` proved it again: the password and, once enrolled, a fresh TOTP code (a step
    is taken once, as at log-in).  Asked before a sensitive action (marking a lock replaced)."""
    again = authenticate(session, owner.email, password, totp, at)
    return again is not None and again.id == owner.id


def stepped_up(request: Request, session: DbSession, owner: Owner, password: str, totp: str) -> bool:
    """`step_up` behind the log-in rate limit (each password tried is a guess); no password typed: False at once,
    nothing spent (such a request guesses nothing)."""
    if not password:
        return False
    _limited(request)
    return step_up(session, owner, password, totp, utcnow())


DESTINATION_ADDED = "alarm_destination_added"  # the owner's alarm: an apprise channel, webhook or browser was added
DESTINATION_REMOVED = "alarm_destination_removed"  # … was removed (told to it too: `notify.deliver_former`)


def has_destinations(session: DbSession, owner: Owner) -> bool:
    """Whether the account sends its alarms anywhere: an apprise channel, the community webhook or a browser."""
    return bool(json.loads(owner.alert_urls or "[]")) or owner.webhook_url is not None \
        or bool(owner_subscriptions(session, owner))


def owner_alarm(session: DbSession, owner: Owner, rule: str, detail: str, at: datetime) -> Alarm | None:
    """An alarm about the account itself, raised on its first lock (an alarm belongs to a lock: that is how it
    reaches the owner's channels, webhook and browsers, and /alarms); None when the owner has no lock."""
    first = session.scalar(select(Lock.lock_id).where(Lock.owner_id == owner.id).order_by(Lock.lock_id).limit(1))
    if first is None:
        return None
    alarm = Alarm(lock_id=first, rule=rule, raised_at=at, detail=detail[:400])
    session.add(alarm)
    return alarm


def destination_added(session: DbSession, owner: Owner, what: str, had: bool, at: datetime,
                      former: Sequence[FormerDestination] = ()) -> None:
    """The owner (stepped up) added or changed an alarm destination (`what`: its channel id, host or browser's
    name, never a token): logged, and when the account already had a destination (`had`, read before the change)
    an alarm tells it there — a stolen password and authenticator code that add the thief's own destination (to
    hear the owner's alarms, `lock:duress` among them) do not go unnoticed.  `former`: the destinations this
    change replaced (`notify.former_*`, made before it): the alarm goes to them too, since the account's
    destinations are read when it is sent — replacing the owner's only channel or webhook would otherwise tell
    the thief's alone.  The caller commits."""
    log.warning("owner %d added an alarm destination: %s", owner.id, what)
    if former:
        log.warning("owner %d removed an alarm destination: %s (replaced)", owner.id,
                    ", ".join(f.what for f in former))
    if had or former:
        replaced = f", replacing {', '.join(f.what for f in former)}, which is told this once" if former else ""
        tell_former(session, owner_alarm(
            session, owner, DESTINATION_ADDED, f"a new alarm destination was added to the account ({what}{replaced}); "
            "if it was not you, someone has the password (and authenticator code): remove it on /account, "
            "log out everywhere else", at), former)


def destination_removed(session: DbSession, owner: Owner, former: Sequence[FormerDestination], at: datetime) -> None:
    """The owner (stepped up) removed alarm destinations (`former`, made before the change): logged (ids and hosts,
    never a token), and always an alarm (`alarm_destination_removed`), told to what remains and to the removed ones
    themselves — removing every destination first (then adding one's own raises nothing: the account had none)
    must not silence the owner unheard.  The caller commits."""
    what = ", ".join(f.what for f in former)
    log.warning("owner %d removed an alarm destination: %s", owner.id, what)
    tell_former(session, owner_alarm(
        session, owner, DESTINATION_REMOVED, f"an alarm destination was removed from the account ({what}): it is told "
        "this once, then gets no alarms; if it was not you, someone has the password (and authenticator code): "
        "change the password, log out everywhere else and set it again on /account", at), former)


def tell_former(session: DbSession, alarm: Alarm | None, former: Sequence[FormerDestination]) -> None:
    """Send `alarm` also to the `former` destinations (none when the owner has no lock: no alarm at all)."""
    if alarm is None or not former:
        return
    session.flush()  # (the alarm's id)
    for destination in former:
        destination.alarm_id = alarm.id
        session.add(destination)


PASSWORD_CHANGED = "password_changed"  # noqa: S105 - the owner's alarm: the account's password was changed
AUTHENTICATOR_ENROLLED = "authenticator_enrolled"  # the owner's alarm: with the password, a stolen session
#   enrolled its own seed and no log-in worked without the thief's codes, unheard (review of 0c1695a)


def change_password(session: DbSession, owner: Owner, new: str, keep: str, at: datetime) -> int:
    """The stepped-up owner's new password (Argon2id), and every other session of the account ended, pages and API
    tokens alike (`keep`'s, the one that asked, stays): whoever stole a session or learned the old password is out.
    Logged (never a password) and told to the account's destinations (`password_changed`, on its first lock): a
    thief who changes it does not go unheard.  How many sessions ended; the caller commits."""
    owner.password_hash = _hasher.hash(new)
    ended = end_sessions(session, owner, keep=keep)
    log.warning("owner %d changed the account's password: %d other session(s) ended", owner.id, ended)
    owner_alarm(session, owner, PASSWORD_CHANGED, f"the account's password was changed and its {ended} other "
                "session(s) ended; if it was not you, someone had the password (and authenticator code) and has "
                "logged you out: ask the cloud's operator (your locks obey only commands your own devices sign)", at)
    return ended


PASSWORD_RESET = "password_reset"  # noqa: S105 - the owner's alarm: the operator's reset link was used
RESET_GONE = ("this password-reset link is unknown, expired, already used or replaced by a newer one: ask the "
              "cloud's operator for a new one")


def reset_password(session: DbSession, owner: Owner, new: str, clear_totp: bool, at: datetime) -> int:
    """The operator's reset link was used (`limen-cloud reset-password`; the token is already spent): the new
    password (Argon2id), with `clear_totp` no authenticator any more, and every session and API token of the account
    ended.  Logged (never a token or password) and told to the account's destinations (`password_reset`): an owner
    whose operator was fooled hears of it.  How many sessions ended; the caller commits."""
    owner.password_hash = _hasher.hash(new)
    if clear_totp:
        owner.totp_secret = owner.totp_step = None
    ended = end_sessions(session, owner)
    log.warning("owner %d reset the account's password with the operator's link%s: %d session(s) ended", owner.id,
                " (authenticator removed)" if clear_totp else "", ended)
    owner_alarm(session, owner, PASSWORD_RESET, "the account's password was reset with a link from the cloud's "
                "operator" + (" and its authenticator removed" if clear_totp else "") + f"; its {ended} session(s) "
                "ended; if it was not you, ask the cloud's operator at once (your locks obey only commands your own "
                "devices sign)", at)
    return ended


class ResetTokenRedacted(logging.Filter):
    """Blanks the `token` of a `/reset?token=...` link in uvicorn's access log (a live link there would let whoever
    reads the log set the account's password until it is used or expires)."""

    _TOKEN = re.compile(r"([?&]token=)[^&\s]*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, str) and "token=" in a for a in record.args):
            record.args = tuple(self._TOKEN.sub(r"\1[redacted]", a) if isinstance(a, str) else a
                                for a in record.args)
        return True


def redact_access_log() -> None:
    """Install `ResetTokenRedacted` on uvicorn's access logger (once; uvicorn's own logging setup keeps filters)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, ResetTokenRedacted) for f in access.filters):
        access.addFilter(ResetTokenRedacted())


def password_change_refused(owner: Owner) -> None:
    log.warning("owner %d: password change refused (wrong password or authenticator code); nothing changed",
                owner.id)


def replace_lock(session: DbSession, lock: Lock, owner: Owner, statement: str) -> ArchivedChain:
    """The owner's stepped-up mark (API and page), authorised by `statement` signed on a device paired on the lock:
    archive the chain, reset the head (`evidence.mark_replaced`), logged as an owner action; `NotReplaceable` when
    it cannot be done now.  A refused statement (`StatementRefused`) changes nothing but raises
    `lock_replace_refused` (a stolen password and authenticator code without the device: the owner hears of it)
    and is logged.  The caller commits in every case."""
    now = utcnow()
    try:
        chain = mark_replaced(session, lock, owner.id, now, statement)
    except StatementRefused as exc:
        log.warning("owner %d: replacement mark of lock %s refused (%s): head %d unchanged", owner.id, lock.lock_id,
                    exc.refusal, lock.head_count)
        session.add(Alarm(lock_id=lock.lock_id, rule="lock_replace_refused", raised_at=now,
                          detail=f"a replacement mark (password and authenticator right) was refused: {exc} "
                          f"({exc.refusal}); the audit chain the cloud holds is unchanged"))
        raise
    log.warning("owner %d marked lock %s replaced: chain of %d records archived (archive %d)", owner.id,
                lock.lock_id, chain.head_count, chain.id)
    return chain


def lock_archives(session: DbSession, lock_id: str) -> list[ArchivedChain]:
    return list(session.scalars(select(ArchivedChain).where(ArchivedChain.lock_id == lock_id)
                                .order_by(ArchivedChain.id.desc())))


def archive_view(session: DbSession, chain: ArchivedChain) -> dict[str, Any]:
    """An archived chain as the owner sees it, re-verified now."""
    check, signed = verify_archive(session, chain), recheck(session, chain)
    return {"id": chain.id, "lock_id": chain.lock_id, "replaced_at": chain.replaced_at.isoformat() + "Z",
            "replaced": _when(chain.replaced_at), "records": chain.head_count, "head_hash": chain.head_hash,
            "keys": sorted(json.loads(chain.audit_keys or "{}")), "verified": check.verified,
            "redacted": check.redacted, "problem": check.problem, "signed_by": chain.signed_by,
            "statement": chain.statement, "statement_verified": signed.verified,
            "statement_problem": signed.problem}


def new_session(session: DbSession, owner: Owner) -> tuple[str, datetime]:
    """A fresh bearer token for `owner` (only its SHA-256 is stored) and its expiry."""
    token = secrets.token_urlsafe(32)
    expires = utcnow() + timedelta(hours=SESSION_HOURS)
    session.add(Session(token_hash=_hash(token), owner_id=owner.id, expires_at=expires))
    return token, expires


def end_sessions(session: DbSession, owner: Owner, keep: str | None = None) -> int:
    """End the owner's sessions (all, or all but `keep`'s); how many.  The caller commits."""
    query = delete(Session).where(Session.owner_id == owner.id)
    if keep is not None:
        query = query.where(Session.token_hash != _hash(keep))
    return int(getattr(session.execute(query), "rowcount", 0) or 0)


def csrf_token(token: str) -> str:
    return hmac.new(token.encode(), b"limen-cloud csrf v1", hashlib.sha256).hexdigest()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Page:
    """The logged-in owner of a page request, with the session's token (for the CSRF token)."""

    def __init__(self, owner: Owner, token: str) -> None:
        self.owner, self.token = owner, token

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)

    def check(self, sent: str) -> None:
        if not hmac.compare_digest(self.csrf.encode(), sent.encode()):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "the form expired: reload the page")


def _same_origin(request: Request) -> None:
    """Refuse a state-changing request another site made (before any other check)."""
    if request.method in ("GET", "HEAD"):
        return
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    if (origin is not None and origin != own) or request.headers.get("sec-fetch-site") == "cross-site":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-origin request refused")


def _page(request: Request, session: Db) -> Page:
    token = request.cookies.get(COOKIE, "")
    row = session.get(Session, _hash(token)) if token else None
    if row is None or row.expires_at < utcnow():
        raise HTTPException(status.HTTP_303_SEE_OTHER, "log in first", headers={"Location": "/login"})
    owner = session.get(Owner, row.owner_id)
    assert owner is not None
    return Page(owner, token)


def _write(request: Request) -> Iterator[DbSession]:
    """A session for a form's change: the handler commits before it answers (the browser follows the redirect
    at once, before a dependency's own exit would have committed); anything uncommitted is rolled back."""
    with request.app.state.sessions() as session:
        yield session


Me = Annotated[Page, Depends(_page)]
Write = Annotated[DbSession, Depends(_write)]
SameOrigin = Depends(_same_origin)


def render(request: Request, template: str, code: int = 200, /, **values: Any) -> Response:
    values.setdefault("notice", NOTICES.get(request.query_params.get("done", ""), ""))
    values.setdefault("page", None)
    response = TEMPLATES.TemplateResponse(request, template, values, status_code=code)
    _secured(response)
    if template == "account.html":
        response.headers["Content-Security-Policy"] = ACCOUNT_CSP
    return response


def _secured(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"  # no-referrer would make the browser send Origin: null
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def _back(path: str, done: str = "") -> Response:
    return _secured(RedirectResponse(f"{path}?done={done}" if done else path, status_code=303))


# ------------------------------------------------------------------ what the pages show

def lock_rows(session: DbSession, owner: Owner, now: datetime) -> list[dict[str, Any]]:
    """The owner's locks with the state their forwarded trail last reported (lock, door, tamper) and liveness."""
    locks = session.scalars(select(Lock).where(Lock.owner_id == owner.id).order_by(Lock.name, Lock.lock_id)).all()
    pending = dict(session.execute(select(Alarm.lock_id, func.count()).join(Lock).where(
        Lock.owner_id == owner.id, Alarm.acknowledged_at.is_(None)).group_by(Alarm.lock_id)).all())
    rows = []
    for lock in locks:
        last = {kind: _latest(session, lock.lock_id, kind) for kind in ("lock_state", "door_state", "tamper")}
        online = lock.last_seen is not None and (now - lock.last_seen).total_seconds() <= T.CLOUD_LOCK_ONLINE_S
        rows.append({"id": lock.lock_id, "name": lock.name, "online": online, "last_seen": _when(lock.last_seen),
                     "lock": _state(last["lock_state"]), "door": _state(last["door_state"]),
                     "tamper": last["tamper"].get("at", "") if last["tamper"] else "",
                     "records": lock.head_count, "reported": lock.reported_count,
                     "behind": max(0, lock.reported_count - lock.head_count), "alarms": pending.get(lock.lock_id, 0)})
    return rows


def _latest(session: DbSession, lock_id: str, kind: str) -> dict[str, Any] | None:
    body = session.scalar(select(Record.body).where(Record.lock_id == lock_id, Record.kind == kind)
                          .order_by(Record.idx.desc()).limit(1))
    return _body(body) if body is not None else None


def _body(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _state(record: dict[str, Any] | None) -> str:
    data = record.get("data") if record else None
    return str(data.get("state", "unknown")) if isinstance(data, dict) else "unknown"


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else "never"


def _lock_when(at: str | None) -> str | None:
    """The lock's own time of a record (ISO 8601, as it wrote it), shown as `_when` shows the cloud's; None when
    there is none or it does not parse."""
    try:
        parsed = datetime.fromisoformat(at) if at else None
        if parsed is None:
            return None
        return _when((parsed.astimezone(UTC) if parsed.tzinfo else parsed).replace(tzinfo=None))
    except (ValueError, OverflowError):  # the lock's clock is any string its chain hashes: 9999-12-31T23:59-01:00
        return None


def history_rows(session: DbSession, owner: Owner, lock_id: str | None, before: int | None) -> list[dict[str, Any]]:
    """The newest forwarded records across the owner's locks (or one), `CLOUD_HISTORY_PAGE` at a time."""
    query = select(Record, Lock.name).join(Lock).where(Lock.owner_id == owner.id)
    if lock_id:
        query = query.where(Record.lock_id == lock_id)
    if before is not None:
        query = query.where(Record.id < before)
    rows = session.execute(query.order_by(Record.id.desc()).limit(T.CLOUD_HISTORY_PAGE)).all()
    out = []
    for record, name in rows:
        body = _body(record.body)
        out.append({"id": record.id, "lock": name, "index": record.idx, "at": record.at, "kind": record.kind,
                    "actor": body.get("actor") or "", "outcome": body.get("outcome") or "",
                    "reason": body.get("reason") or "", "redacted": "redacted" in body})
    return out


def archived_rows(session: DbSession, chain: ArchivedChain, name: str, before: int | None
                  ) -> list[dict[str, Any]]:
    """An archived chain's records, newest first, labelled "before replacement on <date>"."""
    query = select(ArchivedRecord).where(ArchivedRecord.chain_id == chain.id)
    if before is not None:
        query = query.where(ArchivedRecord.id < before)
    label = f"before replacement on {chain.replaced_at.strftime('%Y-%m-%d')}"
    out = []
    for record in session.scalars(query.order_by(ArchivedRecord.id.desc()).limit(T.CLOUD_HISTORY_PAGE)):
        body = _body(record.body)
        out.append({"id": record.id, "lock": name, "index": record.idx, "at": record.at, "kind": record.kind,
                    "actor": body.get("actor") or "", "outcome": body.get("outcome") or "",
                    "reason": body.get("reason") or "", "redacted": "redacted" in body, "chain": label})
    return out


def alarm_rows(session: DbSession, owner: Owner) -> list[dict[str, Any]]:
    rows = session.execute(select(Alarm, Lock.name).join(Lock).where(
        Lock.owner_id == owner.id, Alarm.acknowledged_at.is_(None)).order_by(Alarm.id.desc()).limit(500)).all()
    return [{"id": a.id, "lock": name, "rule": a.rule, "detail": a.detail, "unverified": a.unverified,
             "raised": _lock_when(a.lock_at) or _when(a.raised_at), "received": _when(a.raised_at),
             "lock_acknowledged": (_lock_when(a.lock_acknowledged_at) or "a time its clock wrote unreadably")
             if a.lock_acknowledged_at is not None else None,
             "delivered": a.notified_at is not None, "error": a.delivery_error or ""} for a, name in rows]


def webhook_problem(url: str, allow: tuple[Network, ...] = ()) -> str | None:
    """Why `url` cannot be a community webhook, or None: a public https:// address; an address literal must be
    public or allow-listed by the operator, and plain http:// only goes to an allow-listed address literal.
    (A name is checked again, resolved, whenever a connection to it is opened — at least every
    `CLOUD_WEBHOOK_KEEPALIVE_S`: `notify.post_webhook`'s connection pool.)"""
    parts = urlsplit(url)
    if len(url) > 500 or parts.scheme not in ("https", "http") or not parts.hostname or parts.username:
        return "an https:// address, no user name"
    try:
        _ = parts.port
    except ValueError:
        return "an https:// address with a valid port"
    try:
        literal = ipaddress.ip_address(parts.hostname) is not None
    except ValueError:
        literal = False
    if parts.hostname == "localhost" or (literal and not destination_allowed(parts.hostname, allow)):
        return "a public address (this cloud's own machine and private networks are refused)"
    if parts.scheme == "http" and not literal:
        return "plain http:// only to an address the operator allowed (use https://)"
    return None


# ------------------------------------------------------------------ web push subscriptions (pages and API)

class PushRefused(Exception):
    def __init__(self, reason: str, status_code: int = 422) -> None:
        super().__init__(reason)
        self.status = status_code


def _b64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error) as exc:
        raise PushRefused("the subscription's keys are not base64url") from exc


def check_subscription(body: PushIn, allow: tuple[Network, ...]) -> None:
    """`PushRefused` (422) unless the endpoint is usable (`webhook_problem`) and the keys are a P-256 point and a
    16-byte secret: checked before the step-up, so a malformed subscription spends no password try or code."""
    problem = webhook_problem(body.endpoint, allow)
    if problem is not None:
        raise PushRefused(f"not a usable push endpoint: {problem}")
    point, secret = _b64url(body.keys.p256dh), _b64url(body.keys.auth)
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError as exc:
        raise PushRefused("the subscription's p256dh is not a P-256 public key") from exc
    if len(point) != 65 or len(secret) != 16:
        raise PushRefused("the subscription's keys have the wrong length")


def save_subscription(session: DbSession, owner: Owner, body: PushIn, allow: tuple[Network, ...],
                      now: datetime) -> PushSubscription:
    """Store (or refresh, or move to `owner` from the browser's previous account) a browser's push subscription;
    it starts after the newest alarm.

    The endpoint must be an https:// URL (plain http:// only to an address literal the operator allow-listed,
    like the community webhook); it is checked again at every push (`notify.egress_guard`).  The keys must be a
    P-256 point and a 16-byte secret.  The caller commits."""
    check_subscription(body, allow)
    newest = session.scalar(select(func.max(Alarm.id))) or 0
    sub = session.scalar(select(PushSubscription).where(PushSubscription.endpoint == body.endpoint))
    if sub is None:
        held = session.scalar(select(func.count()).select_from(PushSubscription)
                              .where(PushSubscription.owner_id == owner.id)) or 0
        if held >= T.CLOUD_PUSH_MAX_SUBSCRIPTIONS:
            raise PushRefused(f"at most {T.CLOUD_PUSH_MAX_SUBSCRIPTIONS} browsers: remove one first", 409)
        sub = PushSubscription(endpoint=body.endpoint, created_at=now)
        session.add(sub)
    elif sub.owner_id != owner.id and not hmac.compare_digest(sub.auth.encode(), body.keys.auth.encode()):
        # another owner's browser: only that browser itself (it holds the auth secret) may hand it over, e.g.
        # a second owner logging in there; the endpoint alone does not take someone's alarms away
        raise PushRefused("this browser is subscribed for another account", 409)
    sub.owner_id, sub.p256dh, sub.auth = owner.id, body.keys.p256dh, body.keys.auth
    sub.label = body.label.strip()[:100] or "a browser"
    sub.cursor, sub.attempts, sub.next_at, sub.last_error = newest, 0, None, None
    session.flush()
    return sub


def add_subscription(session: DbSession, owner: Owner, body: PushIn, allow: tuple[Network, ...],
                     now: datetime) -> PushSubscription:
    """`save_subscription` for the stepped-up owner (API and page), logged and told to the destinations the
    account had (`destination_added`); `PushRefused` as it.  The caller commits."""
    had = has_destinations(session, owner)
    sub = save_subscription(session, owner, body, allow, now)
    destination_added(session, owner, f"web push browser {sub.label!r} via {urlsplit(sub.endpoint).hostname}",
                      had, now)
    return sub


def owner_subscriptions(session: DbSession, owner: Owner) -> list[PushSubscription]:
    return list(session.scalars(select(PushSubscription).where(PushSubscription.owner_id == owner.id)
                                .order_by(PushSubscription.id)))


def remove_subscription(session: DbSession, owner: Owner, sub_id: int, at: datetime) -> bool:
    """Stop pushing to that browser of the stepped-up owner (API and page); it and the rest hear of it
    (`destination_removed`).  The caller commits."""
    sub = session.get(PushSubscription, sub_id)
    if sub is None or sub.owner_id != owner.id:
        return False
    former = former_push(sub)
    session.delete(sub)
    destination_removed(session, owner, [former], at)
    return True


def subscription_view(sub: PushSubscription) -> dict[str, Any]:
    """What the owner sees of a subscription (never its endpoint or keys: the endpoint is a capability)."""
    return {"id": sub.id, "label": sub.label, "service": urlsplit(sub.endpoint).hostname or "",
            "created_at": sub.created_at.isoformat() + "Z",
            "last_ok_at": sub.last_ok_at.isoformat() + "Z" if sub.last_ok_at else None, "error": sub.last_error}


# ------------------------------------------------------------------ routes

def router() -> APIRouter:
    pages = APIRouter(include_in_schema=False, dependencies=[SameOrigin])
    redact_access_log()

    @pages.get("/cloud.css")
    def stylesheet() -> Response:
        return Response(_STYLE, media_type="text/css", headers={"Cache-Control": "max-age=3600",
                                                                "X-Content-Type-Options": "nosniff"})

    @pages.get("/push.js")
    def push_script() -> Response:
        return Response(_PUSH_JS, media_type="text/javascript", headers={"Cache-Control": "max-age=3600",
                                                                          "X-Content-Type-Options": "nosniff"})

    @pages.get("/push-sw.js")
    def push_worker() -> Response:
        """The service worker (scope /): shows each pushed alarm as a notification that opens /alarms."""
        return Response(_PUSH_SW, media_type="text/javascript", headers={"Cache-Control": "no-cache",
                                                                          "X-Content-Type-Options": "nosniff"})

    @pages.post("/account/push", status_code=201)
    def subscribe(request: Request, session: Write, me: Me, body: PushIn,
                  x_csrf_token: Annotated[str, Header(max_length=64)] = "") -> Response:
        """The subscription push.js makes in this browser (JSON; the CSRF token in `X-CSRF-Token`), with the
        password (and authenticator code) the owner typed beside the button: the browser will receive the alarms."""
        me.check(x_csrf_token)
        if request.app.state.push_key is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "web push is not set up on this cloud")
        write_lock(session)
        owner = session.get(Owner, me.owner.id)
        assert owner is not None
        try:
            check_subscription(body, request.app.state.webhook_allow)
            if not stepped_up(request, session, owner, body.password, body.totp):
                session.rollback()
                raise HTTPException(status.HTTP_403_FORBIDDEN, STEP_UP_FAILED)
            sub = add_subscription(session, owner, body, request.app.state.webhook_allow, utcnow())
        except PushRefused as exc:
            session.rollback()
            raise HTTPException(exc.status, str(exc)) from exc
        session.commit()
        return _secured(JSONResponse({"id": sub.id}, 201))

    @pages.post("/account/push/{sub_id}/delete")
    def unsubscribe(request: Request, sub_id: int, session: Write, me: Me, csrf: Annotated[str, Form(max_length=64)],
                    password: Annotated[str, Form(max_length=200)] = "",
                    totp: Annotated[str, Form(max_length=10)] = "") -> Response:
        """Stop pushing alarms to that browser: it silences it, so the password (and authenticator code) again."""
        me.check(csrf)
        write_lock(session)
        if not any(s.id == sub_id for s in owner_subscriptions(session, me.owner)):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such browser")
        if not stepped_up(request, session, me.owner, password, totp):
            session.rollback()
            return render(request, "account.html", 403, page=me, error=STEP_UP_FAILED[0].upper()
                          + STEP_UP_FAILED[1:] + ": that browser still receives alarms.",
                          **push_values(request, session, me))
        remove_subscription(session, me.owner, sub_id, utcnow())
        session.commit()
        return _back("/account", "push-off")

    @pages.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> Response:
        return render(request, "login.html")

    @pages.get("/signup", response_class=HTMLResponse)
    def signup_form(request: Request) -> Response:
        return render(request, "signup.html", open_signup=request.app.state.open_signup)

    @pages.post("/signup", dependencies=[SignUpLimited])
    def sign_up(request: Request, session: Write, email: Annotated[str, Form(max_length=254)],
                password: Annotated[str, Form(max_length=200)],
                invite: Annotated[str, Form(max_length=100)] = "") -> Response:
        """The owner's account, with the operator's one-time invite unless the cloud runs with --open-signup."""
        open_signup = bool(request.app.state.open_signup)
        try:
            body = SignUp(email=email, password=password, invite=invite)
        except ValidationError:
            return render(request, "signup.html", 422, open_signup=open_signup, email=email[:254],
                          error="An e-mail address and a password of at least 12 characters.")
        write_lock(session)
        try:
            register(session, body, open_signup, utcnow())
        except SignUpRefused as exc:
            session.rollback()
            error = "This e-mail has an account." if exc.reason == "taken" else SIGN_UP_NEEDS_INVITE.capitalize() + "."
            return render(request, "signup.html", 409 if exc.reason == "taken" else 403, open_signup=open_signup,
                          email=email[:254], error=error)
        session.commit()
        return _back("/login", "signed-up")

    @pages.post("/login", dependencies=[Limited])
    def log_in(request: Request, session: Write, email: Annotated[str, Form(max_length=254)],
               password: Annotated[str, Form(max_length=200)],
               totp: Annotated[str, Form(max_length=10)] = "") -> Response:
        write_lock(session)
        owner = authenticate(session, email, password, totp, utcnow())
        if owner is None:
            return render(request, "login.html", 401, error="Wrong e-mail, password or authenticator code.",
                          email=email[:254])
        token, expires = new_session(session, owner)
        session.commit()
        response = _back("/locks")
        response.set_cookie(COOKIE, token, max_age=SESSION_HOURS * 3600, path="/", secure=True, httponly=True,
                            samesite="strict")
        return response

    @pages.post("/logout")
    def log_out(session: Write, me: Me, csrf: Annotated[str, Form(max_length=64)]) -> Response:
        me.check(csrf)
        write_lock(session)
        row = session.get(Session, _hash(me.token))
        if row is not None:
            session.delete(row)
        session.commit()
        response = _back("/login", "logged-out")
        response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    @pages.post("/account/sessions/end")
    def end_other_sessions(session: Write, me: Me, csrf: Annotated[str, Form(max_length=64)]) -> Response:
        """Log out everywhere else: every other session of the account (pages and API tokens) ends now — a stolen
        one otherwise acted until it expired (`SESSION_HOURS`), whatever the owner did."""
        me.check(csrf)
        write_lock(session)
        end_sessions(session, me.owner, keep=me.token)
        session.commit()
        return _back("/account", "others-out")

    @pages.post("/account/password")
    def change_password_form(request: Request, session: Write, me: Me, csrf: Annotated[str, Form(max_length=64)],
                             current: Annotated[str, Form(max_length=200)] = "",
                             new: Annotated[str, Form(max_length=200)] = "",
                             totp: Annotated[str, Form(max_length=10)] = "") -> Response:
        """A new password (by sign-up's rules) with the current one and, once enrolled, a fresh authenticator code:
        every other session of the account ends (this browser stays logged in), the destinations hear of it."""
        me.check(csrf)
        try:
            body = PasswordChange(current=current, new=new, totp=totp)
        except ValidationError as exc:
            weak = any(e["loc"] and e["loc"][0] == "new" for e in exc.errors())
            return render(request, "account.html", 422 if weak else 403, page=me, error=(
                f"The new password needs at least {PASSWORD_MIN} characters" if weak else
                STEP_UP_FAILED[0].upper() + STEP_UP_FAILED[1:]) + ": the password is unchanged.",
                **push_values(request, session, me))
        if body.new == body.current:
            return render(request, "account.html", 422, page=me, error=SAME_PASSWORD[0].upper()
                          + SAME_PASSWORD[1:] + ": the password is unchanged.", **push_values(request, session, me))
        write_lock(session)
        owner = session.get(Owner, me.owner.id)
        assert owner is not None
        if not stepped_up(request, session, owner, body.current, body.totp):
            session.rollback()
            password_change_refused(me.owner)
            return render(request, "account.html", 403, page=me, error=STEP_UP_FAILED[0].upper()
                          + STEP_UP_FAILED[1:] + ": the password is unchanged.", **push_values(request, session, me))
        change_password(session, owner, body.new, me.token, utcnow())
        session.commit()
        return _back("/account", "password-changed")

    @pages.get("/reset", response_class=HTMLResponse, dependencies=[Limited])
    def reset_form(request: Request, session: Db, token: Annotated[str, Query(max_length=100)] = "") -> Response:
        """The operator's one-time reset link: the new-password form while the token is live (nothing spent)."""
        if live_reset(session, token, utcnow()) is None:
            return render(request, "reset.html", 410, error=RESET_GONE[0].upper() + RESET_GONE[1:] + ".")
        return render(request, "reset.html", token=token)

    @pages.post("/reset", dependencies=[Limited])
    def reset(request: Request, session: Write, token: Annotated[str, Form(max_length=100)] = "",
              new: Annotated[str, Form(max_length=200)] = "", again: Annotated[str, Form(max_length=200)] = ""
              ) -> Response:
        """Set the new password (sign-up's rules, typed twice) with the live token, spent here; otherwise nothing
        changes.  Every session of the account ends, the destinations hear of it (`password_reset`)."""
        try:
            body = PasswordReset(token=token, new=new)
        except ValidationError as exc:
            if not any(e["loc"] and e["loc"][0] == "new" for e in exc.errors()):
                return render(request, "reset.html", 410, error=RESET_GONE[0].upper() + RESET_GONE[1:] + ".")
            return render(request, "reset.html", 422, token=token, error=f"The new password needs at least "
                          f"{PASSWORD_MIN} characters: the password is unchanged.")
        if new != again:
            return render(request, "reset.html", 422, token=token,
                          error="The two passwords differ: the password is unchanged.")
        write_lock(session)
        now = utcnow()
        spent = spend_reset(session, body.token, now)
        owner = session.get(Owner, spent.owner_id) if spent is not None and spent.owner_id is not None else None
        if spent is None or owner is None:
            session.rollback()
            log.warning("a password reset was refused: the link is unknown, expired, used or superseded")
            return render(request, "reset.html", 410, error=RESET_GONE[0].upper() + RESET_GONE[1:] + ".")
        reset_password(session, owner, body.new, spent.clear_totp, now)
        session.commit()
        response = _back("/login", "password-reset")
        response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    @pages.get("/locks", response_class=HTMLResponse)
    def locks(request: Request, session: Db, me: Me) -> Response:
        return render(request, "locks.html", page=me, locks=lock_rows(session, me.owner, utcnow()))

    @pages.post("/locks/claim", dependencies=[Limited])
    def claim_lock(request: Request, session: Write, me: Me, csrf: Annotated[str, Form(max_length=64)],
                   lock_id: Annotated[str, Form(max_length=64)], name: Annotated[str, Form(max_length=100)],
                   claim_code: Annotated[str, Form(max_length=64)]) -> Response:
        """Claim a lock with the one-time code it showed (`limen link claim-code`): the same check as the API,
        rate-limited with it, one answer for every failure."""
        me.check(csrf)
        form = {"lock_id": lock_id.strip(), "name": name.strip()}
        try:
            body = LockClaim(lock_id=form["lock_id"], name=form["name"], claim_code=claim_code.strip())
        except ValidationError:
            return render(request, "locks.html", 422, page=me, locks=lock_rows(session, me.owner, utcnow()),
                          claim=form, error="The lock's id (letters, digits, . _ -), a name for it and the code "
                          "it showed.")
        write_lock(session)
        if not claim(session, me.owner, body):
            session.rollback()
            return render(request, "locks.html", 404, page=me, locks=lock_rows(session, me.owner, utcnow()),
                          claim=form, error=NO_SUCH_CLAIM[0].upper() + NO_SUCH_CLAIM[1:] + ".")
        sources.claimed_from(session, me.owner.id, client_key(request), utcnow())
        session.commit()
        return _back("/locks", "claimed")

    @pages.get("/history", response_class=HTMLResponse)
    def history(request: Request, session: Db, me: Me, lock: str | None = None, before: int | None = None,
                chain: int | None = None) -> Response:
        return _history(request, session, me, lock, before, chain)

    @pages.post("/locks/{lock_id}/replaced", dependencies=[Limited])
    def mark_lock_replaced(request: Request, lock_id: str, session: Write, me: Me,
                           csrf: Annotated[str, Form(max_length=64)], password: Annotated[str, Form(max_length=200)],
                           statement: Annotated[str, Form(max_length=T.LINK_MAX_PAYLOAD_BYTES)],
                           totp: Annotated[str, Form(max_length=10)] = "") -> Response:
        """The owner says this lock was replaced (new hardware under its id): a statement signed on a device paired
        on the lock (`limen-cloud sign-replacement`), the password (and authenticator code) again, then the old
        chain is archived and the new one taken from its first record."""
        me.check(csrf)
        write_lock(session)
        lock = my_lock(session, me.owner, lock_id)
        if not step_up(session, me.owner, password, totp, utcnow()):
            session.rollback()
            return _history(request, session, me, lock_id, None, None, 403,
                            error=STEP_UP_FAILED[0].upper() + STEP_UP_FAILED[1:] + ": nothing changed.")
        try:
            replace_lock(session, lock, me.owner, statement.strip())
        except NotReplaceable as exc:
            session.rollback()
            return _history(request, session, me, lock_id, None, None, 409, error=str(exc).capitalize() + ".")
        except StatementRefused as exc:
            session.commit()  # the owner's alarm (and the authenticator step taken)
            return _history(request, session, me, lock_id, None, None, 403,
                            error=f"Not marked: {exc} ({exc.refusal}). Nothing changed.")
        session.commit()
        return _secured(RedirectResponse(f"/history?lock={lock_id}&done=replaced", status_code=303))

    @pages.get("/alarms", response_class=HTMLResponse)
    def alarms(request: Request, session: Db, me: Me) -> Response:
        return render(request, "alarms.html", page=me, alarms=alarm_rows(session, me.owner))

    @pages.post("/alarms/{alarm_id}/ack")
    def acknowledge(alarm_id: int, session: Write, me: Me, csrf: Annotated[str, Form(max_length=64)]) -> Response:
        me.check(csrf)
        write_lock(session)
        alarm = session.get(Alarm, alarm_id)
        if alarm is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such alarm")
        my_lock(session, me.owner, alarm.lock_id)
        alarm.acknowledged_at = alarm.acknowledged_at or utcnow()
        session.commit()
        return _back("/alarms", "acknowledged")

    @pages.get("/account", response_class=HTMLResponse)
    def account(request: Request, session: Db, me: Me) -> Response:
        return render(request, "account.html", page=me, **push_values(request, session, me))

    @pages.get("/account/totp", response_class=HTMLResponse)
    def totp_form(request: Request, me: Me) -> Response:
        if me.owner.totp_secret is not None:
            return _back("/account")
        return _totp_page(request, me, pyotp.random_base32())

    @pages.post("/account/totp")
    def totp_enrol(request: Request, session: Write, me: Me, csrf: Annotated[str, Form(max_length=64)],
                   secret: Annotated[str, Form(min_length=32, max_length=32, pattern="^[A-Z2-7]+$")],
                   code: Annotated[str, Form(max_length=10)],
                   password: Annotated[str, Form(max_length=200)] = "") -> Response:
        """Enrol the seed the page showed once the owner typed a code it makes (proof the phone holds it) and the
        password again: a stolen session alone would enrol its own seed and lock the owner out (no log-in without
        it, and no page removes one)."""
        me.check(csrf)
        write_lock(session)
        owner = session.get(Owner, me.owner.id)
        assert owner is not None
        if owner.totp_secret is not None:
            return _back("/account")
        if not stepped_up(request, session, owner, password, ""):
            session.rollback()
            return _totp_page(request, me, secret, "Wrong password: no authenticator enrolled.", 403)
        step = totp_step(secret, code, utcnow())
        if step is None:
            return _totp_page(request, me, secret, "That code does not match: type the one shown now.", 422)
        owner.totp_secret, owner.totp_step = secret, step
        log.warning("owner %d enrolled an authenticator", owner.id)
        owner_alarm(session, owner, AUTHENTICATOR_ENROLLED, "an authenticator was enrolled on the account: logging in "
                    "now needs its codes; if it was not you, someone has the password and you can no longer log in: "
                    "ask the cloud's operator (limen-cloud reset-password --clear-totp)", utcnow())
        session.commit()
        return _back("/account", "totp-on")

    @pages.post("/account/webhook")
    def set_webhook(request: Request, session: Write, me: Me, csrf: Annotated[str, Form(max_length=64)],
                    url: Annotated[str, Form(max_length=500)] = "", password: Annotated[str, Form(max_length=200)] = "",
                    totp: Annotated[str, Form(max_length=10)] = "") -> Response:
        """The community security webhook: alarms are POSTed there signed with a secret shown once.  Setting one
        sends the alarms to its receiver, changing or removing one (its secret changes too) silences the old one:
        the password (and authenticator code) again for each; a webhook set or changed is told to the destinations
        the account had (`alarm_destination_added`), a removal too (`alarm_destination_removed`), and a removed or
        replaced one itself is told, signed with the secret it holds (`notify.deliver_former`)."""
        me.check(csrf)
        write_lock(session)
        owner = session.get(Owner, me.owner.id)
        assert owner is not None
        if not url.strip() and owner.webhook_url is None:  # nothing held, nothing asked
            return _back("/account", "webhook-off")
        problem = webhook_problem(url.strip(), request.app.state.webhook_allow) if url.strip() else None
        if problem is not None:
            return render(request, "account.html", 422, page=me, error=f"Not a usable webhook: {problem}.",
                          **push_values(request, session, me))
        if not stepped_up(request, session, owner, password, totp):
            session.rollback()
            return render(request, "account.html", 403, page=me, error=STEP_UP_FAILED[0].upper()
                          + STEP_UP_FAILED[1:] + ": the webhook is unchanged.", **push_values(request, session, me))
        # the webhook as its receiver knows it (URL and secret): told of its removal or replacement
        former = [former_webhook(owner.webhook_url, owner.webhook_secret)] \
            if owner.webhook_url is not None and owner.webhook_secret is not None else []
        if not url.strip():
            owner.webhook_url = owner.webhook_secret = None
            destination_removed(session, owner, former, utcnow())
            session.commit()
            return _back("/account", "webhook-off")
        had = has_destinations(session, owner)
        owner.webhook_url, owner.webhook_secret = url.strip(), secrets.token_hex(32)
        destination_added(session, owner, f"community webhook to {urlsplit(url.strip()).hostname}", had, utcnow(),
                          former)
        session.commit()
        me.owner = owner
        return render(request, "account.html", page=me, webhook_secret=owner.webhook_secret,
                      notice="Webhook saved. Give its receiver this secret now: it is not shown again.",
                      **push_values(request, session, me))

    return pages


def _history(request: Request, session: DbSession, me: Page, lock: str | None, before: int | None,
             chain: int | None, code: int = 200, error: str = "") -> Response:
    """The history page: across locks, one lock (with its archived chains and the replacement form), or one
    archived chain of a lock (`chain`)."""
    found = my_lock(session, me.owner, lock) if lock else None
    archives = [archive_view(session, c) for c in lock_archives(session, found.lock_id)] if found is not None else []
    archive = None
    if chain is not None:
        held = session.get(ArchivedChain, chain)
        if found is None or held is None or held.lock_id != found.lock_id:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such archived chain")
        archive = archive_view(session, held)
        rows = archived_rows(session, held, found.name, before)
    else:
        rows = history_rows(session, me.owner, lock, before)
    more = rows[-1]["id"] if len(rows) == T.CLOUD_HISTORY_PAGE else None
    names = session.execute(select(Lock.lock_id, Lock.name).where(Lock.owner_id == me.owner.id)
                            .order_by(Lock.name)).all()
    return render(request, "history.html", code, page=me, rows=rows, lock=lock or "", more=more, locks=names,
                  archives=archives, archive=archive, chain=chain or "", error=error,
                  replaced=_when(found.replaced_at) if found is not None and found.replaced_at else "",
                  totp=me.owner.totp_secret is not None, held=found)


def push_values(request: Request, session: DbSession, me: Page) -> dict[str, Any]:
    return {"push_key": request.app.state.push_key,
            "browsers": [subscription_view(s) for s in owner_subscriptions(session, me.owner)]}


def _totp_page(request: Request, me: Page, secret: str, error: str = "", code: int = 200) -> Response:
    uri = pyotp.TOTP(secret).provisioning_uri(name=me.owner.email, issuer_name="Limen cloud")
    qr = str(segno.make(uri, error="m").svg_data_uri(scale=4, border=2))
    return render(request, "totp.html", code, page=me, secret=secret, qr=qr, error=error)
