"""Who is asking: session cookies (pages, with CSRF) or bearer API tokens (integrations).

A state-changing request authenticated by cookie must carry the session's
CSRF token (form field `csrf` or header `X-CSRF-Token`), compared in constant
time; bearer-token requests carry no ambient credential and need none.
A bearer token acts only within its scopes (`needs`); minting tokens and
changing PINs need the owner's session, confirmed by password (+ TOTP) within
the last few minutes (`stepped_up`): a leaked token is never a door key.
Cookies are HttpOnly and SameSite=Strict, and Secure unless the service is
reached over plain HTTP on a loopback address (browsers drop Secure cookies
there); anything else should be served over TLS.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from limen import thresholds as T
from limen.service.accounts import Owner, Scope, Session, TokenGrant
from limen.service.context import ServiceContext

COOKIE = "limen_session"
KIOSK_COOKIE = "limen_kiosk"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

bearer = HTTPBearer(auto_error=False, description="An API token made on the owner's Tokens page.")


class LoginRequired(Exception):
    """A page needs a logged-in owner: the handler redirects to the login page."""


@dataclass(frozen=True)
class Caller:
    owner: Owner
    session: Session | None  # None for bearer-token callers
    grant: TokenGrant | None = None  # the bearer token's scopes and expiry; None for the owner's session

    @property
    def actor(self) -> str:
        return self.owner.user_id


def ctx_of(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def session_of(request: Request) -> Session | None:
    sid = request.cookies.get(COOKIE, "")
    return ctx_of(request).accounts.session(sid) if sid else None


def check_csrf(session: Session, supplied: str | None) -> None:
    if not supplied or not hmac.compare_digest(supplied.encode(), session.csrf.encode()):
        raise HTTPException(403, "missing or wrong CSRF token; reload the page and try again")


def api_caller(request: Request,
               creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Caller:  # noqa: B008
    """The owner behind an API request: bearer token, or session cookie + CSRF header."""
    ctx = ctx_of(request)
    if creds is not None:
        grant = ctx.accounts.token_grant(creds.credentials)
        if grant is None or not ctx.lock.is_active_owner(grant.owner.user_id):
            raise HTTPException(401, "invalid, expired or revoked API token", headers={"WWW-Authenticate": "Bearer"})
        return Caller(grant.owner, None, grant)
    session = session_of(request)
    if session is None or not ctx.lock.is_active_owner(session.owner.user_id):
        raise HTTPException(401, "log in or send an API token (Authorization: Bearer …)",
                            headers={"WWW-Authenticate": "Bearer"})
    if request.method not in SAFE_METHODS:
        check_csrf(session, request.headers.get(CSRF_HEADER))
    return Caller(session.owner, session)


def needs(scope: Scope) -> Any:
    """A dependency: the API caller, refused (403) if it is a token without `scope`."""

    def check(caller: Caller = Depends(api_caller)) -> Caller:  # noqa: B008
        if caller.grant is not None and scope not in caller.grant.scopes:
            raise HTTPException(403, f"this API token lacks the '{scope.value}' scope; the owner can issue one "
                                     "that has it")
        return caller

    return Depends(check)


def require_step_up(request: Request, caller: Caller) -> None:
    """Refuse (403) unless the caller is the owner's session, confirmed by password (+ TOTP) a moment ago."""
    if caller.session is None:
        raise HTTPException(403, "an API token cannot do this: the owner does it logged in, confirming their "
                                 "password (and authenticator code)")
    if not caller.session.stepped_up(ctx_of(request).clock.now()):
        raise HTTPException(403, "confirm your password (and authenticator code) first: POST /api/step-up")


def stepped_up(request: Request, caller: Caller = Depends(api_caller)) -> Caller:  # noqa: B008
    """A dependency: `require_step_up` on the API caller."""
    require_step_up(request, caller)
    return caller


def page_caller(request: Request) -> Caller:
    """The logged-in owner of a page (CSRF is checked by the form handlers)."""
    session = session_of(request)
    if session is None or not ctx_of(request).lock.is_active_owner(session.owner.user_id):
        raise LoginRequired()  # also when the owner was disabled or demoted on the lock since logging in
    return Caller(session.owner, session)


def limit(request: Request, which: str) -> None:
    ctx = ctx_of(request)
    limiter = ctx.login_limiter if which == "login" else ctx.unlock_limiter
    client = request.client.host if request.client else "unknown"
    wait = limiter.allow(client)
    if wait > 0:
        raise HTTPException(429, f"too many attempts; try again in {int(wait) + 1} s",
                            headers={"Retry-After": str(int(wait) + 1)})


def remote_unlock_rate(request: Request, caller: Caller) -> None:
    """Remote unlocks per owner account (its tokens and sessions together), whatever address they come from."""
    wait = ctx_of(request).remote_limiter.allow(f"owner:{caller.owner.id}")
    if wait > 0:
        raise HTTPException(429, f"too many remote unlocks; try again in {int(wait) + 1} s",
                            headers={"Retry-After": str(int(wait) + 1)})


def login_rate(request: Request) -> None:
    """The login limiter, once per request (a route that has it and confirms a password spends one attempt)."""
    if not getattr(request.state, "login_rate_spent", False):
        request.state.login_rate_spent = True
        limit(request, "login")


def unlock_rate(request: Request) -> None:
    limit(request, "unlock")


def kiosk_allowed(request: Request) -> None:
    """Door-path endpoints answer only a paired door screen (its cookie), same-origin; never an API token.

    The lock's own screen pairs itself by opening `/kiosk` from loopback; a screen
    elsewhere opens a single-use pairing link.  Without the cookie, a process or a
    page that reaches the service (even from the lock itself, by DNS rebinding)
    cannot try PINs or inject camera frames.
    """
    same_origin(request)
    if not ctx_of(request).accounts.kiosk_paired(request.cookies.get(KIOSK_COOKIE, "")):
        raise HTTPException(403, "this door screen is not paired: the owner pairs it under API tokens › Door "
                                 "screens (the lock's own screen: reload /kiosk)")


def same_origin(request: Request) -> None:
    """Refuse (403) a browser request to a door endpoint made from another site.

    Browsers say where a request comes from (`Sec-Fetch-Site`, `Origin`); a client
    that says nothing is not a browser and has no ambient cookie to abuse.
    """
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    expected = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
    if (site is not None and site != "same-origin") or (origin is not None and origin.lower() != expected):
        raise HTTPException(403, "cross-site request refused: door actions come from the lock's own pages")


def is_lock_itself(request: Request) -> bool:
    """The peer is this machine (loopback); forwarded headers count only from `Settings.trusted_proxies`."""
    return (request.client.host if request.client else "") in LOOPBACK


def forwarded_untrusted(request: Request) -> bool:
    """A proxy sits in between and the service did not believe what it forwarded (no `X-Forwarded-For` — the one
    header uvicorn reads — or a peer outside `Settings.trusted_proxies`): the peer's address, maybe loopback, is
    the proxy's and says nothing about who asks."""
    if not any(h in request.headers for h in ("forwarded", "x-forwarded-for", "x-real-ip")):
        return False
    host = request.client.host if request.client else ""
    return "x-forwarded-for" not in request.headers or not _among(host, ctx_of(request).settings.trusted_proxies)


def _among(host: str, proxies: list[str]) -> bool:
    """Whether `host` is one of `proxies` (addresses, networks, or "*", as uvicorn's forwarded_allow_ips)."""
    for entry in (p.strip() for p in proxies):
        if entry in ("*", host):
            return True
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def set_kiosk_cookie(request: Request, response: Response, token: str) -> None:
    plain_loopback = request.url.scheme == "http" and (request.url.hostname or "") in LOOPBACK
    response.set_cookie(KIOSK_COOKIE, token, max_age=10 * 365 * 86400, httponly=True, samesite="strict",
                        secure=not plain_loopback, path="/")


def set_session_cookie(request: Request, response: Response, sid: str) -> None:
    plain_loopback = request.url.scheme == "http" and (request.url.hostname or "") in LOOPBACK
    response.set_cookie(COOKIE, sid, max_age=T.SERVICE_SESSION_TTL_S, httponly=True, samesite="strict",
                        secure=not plain_loopback, path="/")


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
