"""The owner's REST API (OpenAPI at /docs) and a minimal page.

Owners sign up with an e-mail and a password (Argon2id) — only with a one-time invite
(`limen-cloud invite`, or the setup token `limen-cloud serve` prints while no owner exists)
unless the cloud was started with `--open-signup` — log in for a bearer
token (stored as its SHA-256; `SESSION_HOURS`), claim their locks with the
one-time code each lock showed (`limen link claim-code`), read
the forwarded history across locks, list and acknowledge alarms, and hand the
cloud signed commands to relay: the cloud checks only the size and the lock
(it cannot sign, and the lock verifies everything).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import apprise
from argon2 import PasswordHasher
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import Depends, FastAPI, Header, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from limen import thresholds as T
from limen.audit.channels import channel_id
from limen.errors import LinkError
from limen.link.forward import claim_hash
from limen.service.bodylimit import BodyLimitMiddleware
from limen.service.ratelimit import RateLimiter
from limen_cloud import sources
from limen_cloud.db import sessions, write_lock
from limen_cloud.evidence import NotReplaceable
from limen_cloud.models import (
    Alarm,
    ArchivedChain,
    ArchivedRecord,
    CommandLog,
    Invite,
    Lock,
    Owner,
    Record,
    Session,
)
from limen_cloud.statements import StatementRefused

SESSION_HOURS = T.CLOUD_SESSION_HOURS
Relay = Callable[[str, bytes], None]  # (lock id, signed payload) → published to the lock
_hasher = PasswordHasher()  # Argon2id, argon2-cffi's defaults (RFC 9106 low-memory profile)
_DUMMY_HASH = _hasher.hash("not a password of anyone")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


PASSWORD_MIN = 12  # an account's password, at sign-up and at each change (`Password`)
Password = Annotated[str, Field(min_length=PASSWORD_MIN, max_length=200)]


class Credentials(BaseModel):
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    password: Password
    totp: str = Field(default="", max_length=10)  # the authenticator's code, once the owner enrolled one (/account)


SIGN_UP_NEEDS_INVITE = ("sign-up needs a valid, unused invite (limen-cloud invite, or the setup token printed at "
                        "the first start)")


class SignUp(Credentials):
    invite: str = Field(default="", max_length=100)  # `limen-cloud invite` or the setup token (not with --open-signup)


def new_invite(session: DbSession, now: datetime) -> str:
    """A one-time sign-up token valid `CLOUD_INVITE_HOURS` (only its SHA-256 is stored); the caller commits."""
    token = secrets.token_urlsafe(24)
    session.add(Invite(token_hash=hashlib.sha256(token.encode()).hexdigest(), created_at=now,
                       expires_at=now + timedelta(hours=T.CLOUD_INVITE_HOURS)))
    return token


def spend_invite(session: DbSession, token: str, now: datetime) -> bool:
    """Mark `token` used if it is a live, unused invite (one conditional UPDATE: two sign-ups cannot share it)."""
    if not token:
        return False
    spent = session.execute(update(Invite).where(
        Invite.token_hash == hashlib.sha256(token.encode()).hexdigest(), Invite.used_at.is_(None),
        Invite.owner_id.is_(None), Invite.expires_at > now).values(used_at=now))  # a reset link makes no account
    return int(getattr(spent, "rowcount", 0)) == 1


RESET_MINUTES = T.CLOUD_RESET_MINUTES
RESET_MINUTES_MAX = T.CLOUD_RESET_MINUTES_MAX


class PasswordReset(BaseModel):
    """The reset page's form: the operator's one-time token and the new password by sign-up's rules (`Password`)."""

    token: str = Field(min_length=1, max_length=100)
    new: Password


def new_reset(session: DbSession, owner: Owner, now: datetime, minutes: int = RESET_MINUTES,
              clear_totp: bool = False) -> str:
    """A one-time password-reset token of `owner` (an invite naming the account: 256 random bits, only its SHA-256
    stored) valid `minutes` (1..`RESET_MINUTES_MAX`); the account's older unused resets end with it.  The caller
    commits."""
    if not 1 <= minutes <= RESET_MINUTES_MAX:
        raise ValueError(f"a reset link is valid 1 to {RESET_MINUTES_MAX} minutes")
    session.execute(update(Invite).where(Invite.owner_id == owner.id, Invite.used_at.is_(None)).values(used_at=now))
    token = secrets.token_urlsafe(32)
    session.add(Invite(token_hash=hashlib.sha256(token.encode()).hexdigest(), created_at=now,
                       expires_at=now + timedelta(minutes=minutes), owner_id=owner.id, clear_totp=clear_totp))
    return token


def live_reset(session: DbSession, token: str, now: datetime) -> Invite | None:
    """The unused, unexpired password reset `token` names (nothing spent), else None."""
    if not token or len(token) > 100:
        return None
    digest = hashlib.sha256(token.encode()).hexdigest()
    row = session.get(Invite, digest)
    if row is None or row.owner_id is None or row.used_at is not None or row.expires_at <= now \
            or not hmac.compare_digest(row.token_hash.encode(), digest.encode()):
        return None
    return row


def spend_reset(session: DbSession, token: str, now: datetime) -> Invite | None:
    """Burn the live password reset `token` names (one conditional UPDATE: two forms cannot both use it) and return
    it; None when it is unknown, a sign-up invite, used, superseded or expired.  The caller commits."""
    row = live_reset(session, token, now)
    if row is None:
        return None
    spent = session.execute(update(Invite).where(Invite.token_hash == row.token_hash, Invite.used_at.is_(None),
                                                 Invite.expires_at > now).values(used_at=now))
    return row if int(getattr(spent, "rowcount", 0)) == 1 else None


class SignUpRefused(Exception):
    """No account made: `reason` is "invite" (none, unknown, used or expired) or "taken" (the e-mail has one)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def register(session: DbSession, body: SignUp, open_signup: bool, now: datetime) -> Owner:
    """Make an owner account (the API and the sign-up page); the invite is spent with it, in the same transaction
    (the caller commits; a refusal leaves the transaction to roll back)."""
    if not open_signup and not spend_invite(session, body.invite, now):
        raise SignUpRefused("invite")
    account = Owner(email=body.email.lower(), password_hash=_hasher.hash(body.password), created_at=now)
    session.add(account)
    try:
        session.flush()
    except IntegrityError as exc:
        raise SignUpRefused("taken") from exc
    return account


def setup_token(engine: Engine) -> str | None:
    """While no owner exists: a fresh invite for the first owner (printed by `limen-cloud serve`), else None."""
    with sessions(engine)() as session, session.begin():
        if session.scalar(select(func.count()).select_from(Owner)):
            return None
        return new_invite(session, utcnow())


class LockClaim(BaseModel):
    lock_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    name: str = Field(min_length=1, max_length=100)
    claim_code: str = Field(min_length=6, max_length=64)  # shown by `limen link claim-code` on the lock


NO_SUCH_CLAIM = ("no unclaimed lock with this id and code (the lock must have connected since its code was made)")


def claim(session: DbSession, owner: Owner, body: LockClaim) -> bool:
    """Give the lock `body` names to `owner` if its one-time code matches (API and pages); False for every failure
    alike (unknown id, already claimed, no code announced, wrong code).  The code is spent; the caller commits."""
    lock = session.get(Lock, body.lock_id)
    if lock is None or lock.owner_id is not None or lock.claim_hash is None \
            or not hmac.compare_digest(claim_hash(body.claim_code), lock.claim_hash):
        return False
    lock.owner_id, lock.name, lock.claim_hash = owner.id, body.name, None
    return True


class AlertChannels(BaseModel):
    urls: list[str] = Field(max_length=10)  # apprise URLs: ntfy://…, tgram://…, mailto://…, json://…
    # adding a channel sends the alarms there, removing one silences it: the step-up (password, + authenticator
    # code once enrolled) for any change
    password: str = Field(default="", max_length=200)
    totp: str = Field(default="", max_length=10)


class PushKeys(BaseModel):
    p256dh: str = Field(min_length=80, max_length=100)  # base64url of the browser's 65-byte P-256 point
    auth: str = Field(min_length=16, max_length=40)  # base64url of its 16-byte secret


class PushIn(BaseModel):
    """A browser's `PushSubscription.toJSON()` (its `expirationTime` is ignored), a name for it, and the step-up
    (the password again, + the authenticator code once enrolled): the browser will receive the owner's alarms."""

    endpoint: str = Field(min_length=10, max_length=1000)
    keys: PushKeys
    label: str = Field(default="", max_length=100)
    password: str = Field(default="", max_length=200)
    totp: str = Field(default="", max_length=10)


class StepUp(BaseModel):
    """The owner's password again (and the authenticator's code, once enrolled), for a sensitive action."""

    password: str = Field(min_length=1, max_length=200)
    totp: str = Field(default="", max_length=10)


class PasswordChange(BaseModel):
    """A new password for the logged-in owner: the current one (and the authenticator's code, once enrolled) again,
    and the new one by sign-up's rules (`Password`), not the current one."""

    current: str = Field(min_length=1, max_length=200)
    new: Password
    totp: str = Field(default="", max_length=10)


SAME_PASSWORD = "the new password is the current one"  # noqa: S105 - a refusal, not a secret


class ReplaceMark(StepUp):
    """Marking a lock replaced: the step-up and the owner-signed statement (`limen_cloud.statements`)."""

    statement: str = Field(min_length=2, max_length=T.LINK_MAX_PAYLOAD_BYTES)


class SignedPayload(BaseModel):
    payload: str = Field(min_length=2, max_length=T.LINK_MAX_PAYLOAD_BYTES)


def _db(request: Request) -> Iterator[DbSession]:
    """One transaction per request, committed when the handler returns and before the answer is sent
    (`scope="function"`: a request-scoped dependency's exit would commit after the response, and an owner who
    acknowledges and reads straight back could miss the change); rolled back if the handler raises."""
    with request.app.state.sessions() as session, session.begin():
        yield session


Db = Annotated[DbSession, Depends(_db, scope="function")]


def _bearer(authorization: str | None) -> str:
    return (authorization or "").removeprefix("Bearer ").strip()


def _owner(session: Db, authorization: Annotated[str | None, Header()] = None) -> Owner:
    token = _bearer(authorization)
    row = session.get(Session, hashlib.sha256(token.encode()).hexdigest()) if token else None
    if row is None or row.expires_at < utcnow():
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "log in first", headers={"WWW-Authenticate": "Bearer"})
    found = session.get(Owner, row.owner_id)
    assert found is not None
    return found


Me = Annotated[Owner, Depends(_owner)]


def my_lock(session: DbSession, me: Owner, lock_id: str) -> Lock:
    lock = session.get(Lock, lock_id)
    if lock is None or lock.owner_id != me.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such lock")
    return lock


class RateLimited(Exception):
    """Too many attempts from this client (or from everyone): answered 429 with Retry-After (whole seconds)."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(wait_s)
        self.retry_after = int(wait_s) + 1


def client_key(request: Request) -> str:
    """Whose bucket a request takes from: the client's address, an IPv6 client by its /64 (one subscriber's
    network: a host there picks any of 2^64 addresses).  Behind a reverse proxy this is the proxy's address
    unless uvicorn is told to trust its X-Forwarded-For (`--forwarded-allow-ips`); then everyone shares one
    bucket and the global one still holds.  `limen-cloud serve` runs uvicorn with `proxy_headers=False`."""
    host = request.client.host if request.client else "?"
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])  # (a link-local client may carry a zone)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped or ip) if isinstance(ip, ipaddress.IPv6Address) else str(ip)


def _limited(request: Request) -> None:
    """Log-in and claim attempts: a token bucket per client address and one for everyone (429 + Retry-After)."""
    wait = request.app.state.limiter.allow(client_key(request))
    if wait > 0:
        raise RateLimited(wait)


def _signup_limited(request: Request) -> None:
    """Account creations (each costs an Argon2id hash and a row): their own, tighter buckets."""
    wait = request.app.state.signup_limiter.allow(client_key(request))
    if wait > 0:
        raise RateLimited(wait)


Limited = Depends(_limited)
SignUpLimited = Depends(_signup_limited)
TOO_MANY = "too many attempts; try again later"
TOO_LARGE = f"request body larger than {T.CLOUD_MAX_REQUEST_BYTES // 1024} KiB"


def _too_many(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RateLimited)
    headers = {"Retry-After": str(exc.retry_after), "Cache-Control": "no-store"}
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": TOO_MANY, "retry_after": exc.retry_after}, 429, headers=headers)
    from limen_cloud.pages import render

    response = render(request, "limited.html", 429, retry_after=exc.retry_after)
    response.headers.update(headers)
    return response


def create_app(engine: Engine, relay: Relay | None = None, receipt_public: Ed25519PublicKey | None = None, *,
               open_signup: bool = False, webhook_allow: Iterable[str] = (), push_key: str | None = None,
               receipt_key: Ed25519PrivateKey | None = None) -> FastAPI:
    """The API; `receipt_public` is the key the bridge signs the cloud's part of erasure receipts with.

    Owner accounts need a one-time invite unless `open_signup` (anyone reaching the cloud may register).
    `webhook_allow`: non-public networks (CIDR) an owner's community webhook may point at (none by default).
    `push_key`: the VAPID public key browsers subscribe with (`notify.vapid_public_key`); no web push without it.
    `receipt_key`: the private half, which signs an account's erasure receipt (`limen_cloud.account`; unsigned
    without it).
    """
    from limen_cloud import account, backups, pages  # their routes use this module's dependencies: imported once
    from limen_cloud.notify import channel_destination_allowed, channel_scheme_problem, former_apprise, parse_allow

    app = FastAPI(title="limen-cloud", version="1", description="Owners, locks, evidence, alarms, command relay, "
                  "end-to-end-encrypted backups, erasure receipts.")
    if receipt_public is None and receipt_key is not None:
        receipt_public = receipt_key.public_key()
    app.include_router(backups.router(relay, receipt_public))
    app.include_router(account.router(receipt_key))
    app.include_router(pages.router())
    app.state.sessions = sessions(engine)
    app.state.webhook_allow = parse_allow(webhook_allow)
    app.state.open_signup = open_signup
    app.state.push_key = push_key
    app.state.limiter = RateLimiter(T.CLOUD_LOGIN_PER_MIN, T.CLOUD_LOGIN_BURST, T.CLOUD_LOGIN_GLOBAL_PER_MIN)
    app.state.signup_limiter = RateLimiter(T.CLOUD_SIGNUP_PER_MIN, T.CLOUD_SIGNUP_BURST,
                                           T.CLOUD_SIGNUP_GLOBAL_PER_MIN)
    app.add_exception_handler(RateLimited, _too_many)
    # read whole before any route or rate limit runs: unbounded, one anonymous 300 MB log-in took the process
    # 1.5 GB (Starlette's body, then the JSON parse)
    app.add_middleware(BodyLimitMiddleware, limit=T.CLOUD_MAX_REQUEST_BYTES, reason=TOO_LARGE,
                       answer={"detail": TOO_LARGE})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> str:
        return _HOME

    @app.post("/api/owners", status_code=201, dependencies=[SignUpLimited])
    def sign_up(body: SignUp, session: Db) -> dict[str, Any]:
        """Register an owner: with a one-time invite (spent only if the account is made) unless --open-signup."""
        try:
            account = register(session, body, open_signup, utcnow())
        except SignUpRefused as exc:
            if exc.reason == "taken":
                raise HTTPException(status.HTTP_409_CONFLICT, "this e-mail has an account") from exc
            raise HTTPException(status.HTTP_403_FORBIDDEN, SIGN_UP_NEEDS_INVITE) from exc
        return {"id": account.id, "email": account.email}

    @app.post("/api/sessions", status_code=201, dependencies=[Limited])
    def log_in(body: Credentials, session: Db) -> dict[str, Any]:
        account = pages.authenticate(session, body.email, body.password, body.totp, utcnow())  # + TOTP if enrolled
        if account is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong e-mail, password or authenticator code")
        token, expires = pages.new_session(session, account)
        return {"token": token, "expires_at": expires.isoformat() + "Z"}

    @app.delete("/api/sessions", status_code=204)
    def log_out(session: Db, me: Me, authorization: Annotated[str | None, Header()] = None,
                everywhere: bool = False) -> Response:
        """End this bearer token now; `everywhere=true`: every session of the account (its pages' too)."""
        if everywhere:
            pages.end_sessions(session, me)
        else:
            session.execute(delete(Session).where(Session.token_hash == hashlib.sha256(_bearer(authorization)
                                                                                          .encode()).hexdigest()))
        return Response(status_code=204)

    @app.post("/api/owners/me/password")
    def change_password(request: Request, body: PasswordChange, session: Db, me: Me,
                        authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        """Change the account's password: `current` (and `totp` once enrolled) again, behind the log-in rate limit;
        `new` by sign-up's rules (422 otherwise, nothing spent).  Every other session of the account — pages and API
        tokens — ends (this token stays), the change is logged and raises `password_changed` to the owner's
        destinations.  A wrong password or code is 403 and changes nothing."""
        if body.new == body.current:
            raise HTTPException(422, SAME_PASSWORD)
        write_lock(session)
        if not pages.stepped_up(request, session, me, body.current, body.totp):
            pages.password_change_refused(me)
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"{pages.STEP_UP_FAILED}: the password is unchanged")
        ended = pages.change_password(session, me, body.new, _bearer(authorization), utcnow())
        return {"changed": True, "sessions_ended": ended}

    @app.put("/api/owners/me/alerts")
    def set_alert_channels(request: Request, body: AlertChannels, session: Db, me: Me) -> dict[str, Any]:
        """Where alarms of the owner's locks are sent (apprise URLs; they hold tokens: only ids come back).

        Only schemes that reach a person are accepted (`notify.CHANNEL_SCHEMES`: not rsyslog://, kodi://…); a URL
        naming a server (json://, ntfy://, mailto://…) must name a public one or one the operator allowed.
        Any change — adding, removing or replacing a channel — needs `password` (and `totp` once enrolled) again
        (403, nothing changed): a stolen session alone can neither silence the alarms nor send them to itself
        (`lock:duress` among them).  An added channel raises `alarm_destination_added` to the destinations the
        account had, a removed one `alarm_destination_removed`; a removed or replaced channel is told of it too
        (`notify.AlarmNotifier.deliver_former`); every change is logged (channel ids only).
        """
        for url in body.urls:
            problem = channel_scheme_problem(url)
            if problem is not None:
                raise HTTPException(422, f"{problem}: {channel_id(url)}")
            if len(url) > 500 or not apprise.Apprise().add(url) \
                    or not channel_destination_allowed(url, app.state.webhook_allow):
                raise HTTPException(422, f"not a usable apprise URL: "
                                    f"{channel_id(url)}")
        account = session.get(Owner, me.id)
        assert account is not None
        held = json.loads(account.alert_urls or "[]")
        added, removed = [u for u in body.urls if u not in held], [u for u in held if u not in body.urls]
        if (added or removed) and not pages.stepped_up(request, session, account, body.password, body.totp):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"{pages.STEP_UP_FAILED}: adding, removing or replacing "
                                "an alarm channel needs the password (and authenticator code) again")
        had = pages.has_destinations(session, account)
        account.alert_urls = json.dumps(body.urls)
        former = [former_apprise(url) for url in removed]  # told of the change themselves (`deliver_former`)
        if added:
            pages.destination_added(session, account, "apprise channel " + ", ".join(channel_id(u) for u in added),
                                    had, utcnow(), former)
        elif former:
            pages.destination_removed(session, account, former, utcnow())
        return {"channels": [channel_id(u) for u in body.urls]}

    @app.get("/api/owners/me/alerts")
    def alert_channels(me: Me) -> dict[str, Any]:
        return {"channels": [channel_id(u) for u in json.loads(me.alert_urls or "[]")]}

    @app.get("/api/push/key")
    def push_public_key() -> dict[str, Any]:
        """The VAPID public key to subscribe with (`applicationServerKey`), or 404 when web push is off."""
        if push_key is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "web push is not set up on this cloud")
        return {"public_key": push_key}

    @app.post("/api/owners/me/push", status_code=201)
    def subscribe(request: Request, body: PushIn, session: Db, me: Me) -> dict[str, Any]:
        """Receive alarms by web push on one more device (its push subscription; the endpoint is not returned).
        It would send the owner's alarms to whoever holds that device, so the body carries the password (and
        `totp`) again; the destinations the account had hear of it (`alarm_destination_added`)."""
        if push_key is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "web push is not set up on this cloud")
        account = session.get(Owner, me.id)
        assert account is not None
        try:
            pages.check_subscription(body, app.state.webhook_allow)
            if not pages.stepped_up(request, session, account, body.password, body.totp):
                raise HTTPException(status.HTTP_403_FORBIDDEN, f"{pages.STEP_UP_FAILED}: adding a browser for "
                                    "alarms needs the password (and authenticator code) again")
            sub = pages.add_subscription(session, account, body, app.state.webhook_allow, utcnow())
        except pages.PushRefused as exc:
            raise HTTPException(exc.status, str(exc)) from exc
        return pages.subscription_view(sub)

    @app.get("/api/owners/me/push")
    def subscriptions(session: Db, me: Me) -> list[dict[str, Any]]:
        return [pages.subscription_view(s) for s in pages.owner_subscriptions(session, me)]

    @app.delete("/api/owners/me/push/{sub_id}", status_code=204)
    def unsubscribe(request: Request, sub_id: int, session: Db, me: Me, body: StepUp | None = None) -> Response:
        """Stop pushing alarms to that device: it silences it, so the body carries the password (and `totp`)."""
        account = session.get(Owner, me.id)
        assert account is not None
        if not any(s.id == sub_id for s in pages.owner_subscriptions(session, me)):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such subscription")
        if body is None or not pages.stepped_up(request, session, account, body.password, body.totp):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"{pages.STEP_UP_FAILED}: removing an alarm channel "
                                "needs the password (and authenticator code) again")
        pages.remove_subscription(session, account, sub_id, utcnow())  # (it and the rest hear of it)
        return Response(status_code=204)

    @app.post("/api/locks", status_code=201, dependencies=[Limited])
    def claim_lock(request: Request, body: LockClaim, session: Db, me: Me) -> dict[str, Any]:
        """Claim a lock that has connected, with the one-time code it showed (one answer for every failure).
        The address it is claimed from is known to the account from then on (`limen_cloud.sources`)."""
        if not claim(session, me, body):
            raise HTTPException(status.HTTP_404_NOT_FOUND, NO_SUCH_CLAIM)
        sources.claimed_from(session, me.id, client_key(request), utcnow())
        return {"lock_id": body.lock_id, "name": body.name}

    @app.get("/api/locks")
    def list_locks(session: Db, me: Me) -> list[dict[str, Any]]:
        """The owner's locks: evidence held, pending alarms, and each lock's state as its forwarded trail last
        recorded it (bolt, door, last tamper; online if heard from within CLOUD_LOCK_ONLINE_S), as on /locks."""
        locks = session.scalars(select(Lock).where(Lock.owner_id == me.id).order_by(Lock.lock_id)).all()
        pending = dict(session.execute(select(Alarm.lock_id, func.count()).where(
            Alarm.acknowledged_at.is_(None)).group_by(Alarm.lock_id)).all())
        state = {row["id"]: row for row in pages.lock_rows(session, me, utcnow())}
        return [{"lock_id": lk.lock_id, "name": lk.name, "records": lk.head_count, "reported": lk.reported_count,
                 "last_seen": lk.last_seen.isoformat() + "Z" if lk.last_seen else None,
                 "head_hash": lk.head_hash,
                 "replaced_at": lk.replaced_at.isoformat() + "Z" if lk.replaced_at else None,
                 "pending_alarms": pending.get(lk.lock_id, 0), "online": state[lk.lock_id]["online"],
                 "bolt": state[lk.lock_id]["lock"], "door": state[lk.lock_id]["door"],
                 "last_tamper": state[lk.lock_id]["tamper"] or None} for lk in locks]

    @app.post("/api/locks/{lock_id}/replaced", dependencies=[Limited], response_model=None)
    def mark_replaced(lock_id: str, body: ReplaceMark, session: Db, me: Me) -> dict[str, Any] | JSONResponse:
        """Mark the lock replaced (new hardware under its id, its backup restored): the chain the cloud holds is
        archived, still verifiable, and the new lock's chain is taken from its first record.  Needs a statement
        signed on an owner device paired on the lock, naming the head the cloud holds (`limen-cloud
        sign-replacement`), and the owner's password again (and the authenticator's code once enrolled).  A refused
        statement is 403 with its reason and alarms the owner (`lock_replace_refused`); nothing else changes."""
        write_lock(session)
        lock = my_lock(session, me, lock_id)
        if not pages.step_up(session, me, body.password, body.totp, utcnow()):
            raise HTTPException(status.HTTP_403_FORBIDDEN, pages.STEP_UP_FAILED)
        try:
            chain = pages.replace_lock(session, lock, me, body.statement.strip())
        except NotReplaceable as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        except StatementRefused as exc:  # answered, not raised: the alarm is committed with the request
            return JSONResponse({"detail": f"not marked: {exc}", "refusal": exc.refusal.value},
                                status.HTTP_403_FORBIDDEN)
        return pages.archive_view(session, chain)

    @app.get("/api/locks/{lock_id}/archives")
    def archives(lock_id: str, session: Db, me: Me) -> list[dict[str, Any]]:
        """The lock's chains archived at each replacement, each re-verified now."""
        my_lock(session, me, lock_id)
        return [pages.archive_view(session, c) for c in pages.lock_archives(session, lock_id)]

    @app.get("/api/locks/{lock_id}/archives/{chain_id}/records")
    def archived_records(lock_id: str, chain_id: int, session: Db, me: Me) -> list[dict[str, Any]]:
        """An archived chain's records, in order (a redacted one keeps its index, hash, kind and time)."""
        my_lock(session, me, lock_id)
        chain = session.get(ArchivedChain, chain_id)
        if chain is None or chain.lock_id != lock_id:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such archived chain")
        rows = session.scalars(select(ArchivedRecord).where(ArchivedRecord.chain_id == chain_id)
                               .order_by(ArchivedRecord.idx)).all()
        return [{"lock_id": lock_id, **json.loads(r.body)} for r in rows]

    @app.get("/api/events")
    def history(session: Db, me: Me, lock_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The newest forwarded audit records across the owner's locks (or one lock)."""
        limit = max(1, min(limit, 500))
        query = select(Record).join(Lock).where(Lock.owner_id == me.id)
        if lock_id is not None:
            query = query.where(Record.lock_id == lock_id)
        rows = session.scalars(query.order_by(Record.at.desc(), Record.idx.desc()).limit(limit)).all()
        return [{"lock_id": r.lock_id, **json.loads(r.body)} for r in rows]

    @app.get("/api/alarms")
    def alarms(session: Db, me: Me, pending: bool = True) -> list[dict[str, Any]]:
        query = select(Alarm).join(Lock).where(Lock.owner_id == me.id)
        if pending:
            query = query.where(Alarm.acknowledged_at.is_(None))
        return [_alarm(a) for a in session.scalars(query.order_by(Alarm.id.desc()).limit(500)).all()]

    @app.post("/api/alarms/{alarm_id}/ack")
    def acknowledge(alarm_id: int, session: Db, me: Me) -> dict[str, Any]:
        alarm = session.get(Alarm, alarm_id)
        if alarm is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such alarm")
        my_lock(session, me, alarm.lock_id)
        alarm.acknowledged_at = alarm.acknowledged_at or utcnow()
        return _alarm(alarm)

    @app.post("/api/locks/{lock_id}/commands", status_code=202)
    def relay_command(request: Request, lock_id: str, body: SignedPayload, session: Db, me: Me) -> dict[str, Any]:
        """Relay a command the owner's device signed; the lock checks it (the cloud cannot make one).  One sent from
        an address the account never claimed a lock or sent a command from raises `remote_unknown_source`
        (`limen_cloud.sources`) and is relayed all the same."""
        my_lock(session, me, lock_id)
        if relay is None:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no broker configured (--broker)")
        with app.state.sessions() as own, own.begin():  # committed before relaying: the answer may come at once
            entry = CommandLog(lock_id=lock_id, payload=body.payload, sent_at=utcnow())
            own.add(entry)
            sources.command_from(own, me.id, lock_id, client_key(request), utcnow())
        try:
            relay(lock_id, body.payload.encode("utf-8"))
        except LinkError as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"broker unavailable ({exc})") from exc
        return {"id": entry.id, "relayed": True}

    @app.get("/api/locks/{lock_id}/commands")
    def command_results(lock_id: str, session: Db, me: Me) -> list[dict[str, Any]]:
        my_lock(session, me, lock_id)
        rows = session.scalars(select(CommandLog).where(CommandLog.lock_id == lock_id)
                               .order_by(CommandLog.id.desc()).limit(100)).all()
        return [{"id": c.id, "sent_at": c.sent_at.isoformat() + "Z",
                 "result": json.loads(c.result) if c.result else None} for c in rows]

    return app


def _alarm(a: Alarm) -> dict[str, Any]:
    """`raised_at`: when the cloud received or raised it; `raised_on_lock_at`: the lock's own time in its ALARM
    record (its clock; None for the cloud's alarms); `acknowledged_on_lock_at`: the lock's time of an
    acknowledgement on the lock, shown only: the alarm stays pending here (`acknowledged_at`) until the owner
    acknowledges it in the cloud."""
    return {"id": a.id, "lock_id": a.lock_id, "rule": a.rule, "detail": a.detail, "unverified": a.unverified,
            "raised_at": a.raised_at.isoformat() + "Z", "raised_on_lock_at": a.lock_at,
            "acknowledged_at": a.acknowledged_at.isoformat() + "Z" if a.acknowledged_at else None,
            "acknowledged_on_lock_at": a.lock_acknowledged_at}


_HOME = """<!doctype html><html lang="en"><meta charset="utf-8"><title>limen-cloud</title>
<body style="font-family:sans-serif;max-width:40em;margin:2em auto">
<h1>limen-cloud</h1>
<p>The fleet service of Limen locks: your locks' history, alarms and the relay of commands your phone signed.</p>
<p><a href="/login">Log in</a> to see your locks, their history and pending alarms.</p>
<p>The REST API and its OpenAPI description: <a href="/docs">/docs</a>.</p>
</body></html>"""
