"""The REST API (`/api/...`, OpenAPI at `/openapi.json`): everything the pages do, for integrations.

Kiosk endpoints answer only the door's own or a paired screen, rate-limited;
everything else needs an owner: a bearer API token within its scopes (read,
manage, unlock), or the page session cookie plus the `X-CSRF-Token` header.
Minting tokens, changing PINs, adding owners/administrators, changing or removing
an owner/administrator (schedule, credentials) and replacing anyone's face need the
owner's session confirmed at `/api/step-up` (password + TOTP); a token never can.
The owner's session needs the step-up to enrol any face too (a face is a way in).
A token is not a door key: issuing a PIN or a code needs the `unlock` scope as well, and what a token issues
ends by its expiry and is revoked with it (the owner's session needs the step-up for these).
Every error is a JSON body `{"error": <code>, "reason": <text>}`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from starlette.convertors import Convertor, register_url_convertor

from limen import thresholds as T
from limen.access.context import TokenIssuer
from limen.access.schedules import MAX_SCHEDULES_PER_USER
from limen.audit.event import EventKind
from limen.service.accounts import Scope
from limen.service.auth import (
    COOKIE,
    KIOSK_COOKIE,
    Caller,
    ctx_of,
    kiosk_allowed,
    login_rate,
    needs,
    remote_unlock_rate,
    require_step_up,
    same_origin,
    stepped_up,
    unlock_rate,
)
from limen.service.facework import FACE_WORK
from limen.service.i18n import choose, door_message
from limen.service.lockservice import KioskResult, Upload

router = APIRouter(prefix="/api")


class _UserIdConvertor(Convertor[str]):
    """User ids in paths: only the id form routes, so `/api/users/enrol` answers POST alone (and says so)."""

    regex = "[0-9a-f]{16,32}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("userid", _UserIdConvertor())

Reader = Annotated[Caller, needs(Scope.READ)]
Manager = Annotated[Caller, needs(Scope.MANAGE)]
Unlocker = Annotated[Caller, needs(Scope.UNLOCK)]
SteppedUp = Annotated[Caller, Depends(stepped_up)]


class Body(BaseModel):
    """A JSON request body: exact types (no `true` for a number) and no unknown fields, as the schema says."""

    model_config = ConfigDict(strict=True, extra="forbid")


def _json_integer(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("a whole number")
    return value


# JSON Schema's integer: 5 and 5.0, never true or "5".
WholeNumber = Annotated[int, BeforeValidator(_json_integer), Field(strict=False)]


# Optional whole numbers in a range: the bounds said again for the schema (pydantic drops them inside anyOf).
ValidHours = Annotated[WholeNumber, Field(ge=1, le=8784), WithJsonSchema({"type": "integer", "minimum": 1,
                                                                          "maximum": 8784})]
TokenDays = Annotated[WholeNumber, Field(ge=1, le=T.SERVICE_TOKEN_MAX_DAYS),
                      WithJsonSchema({"type": "integer", "minimum": 1, "maximum": T.SERVICE_TOKEN_MAX_DAYS})]


class ErrorBody(BaseModel):
    error: str = Field(description="A stable error code, e.g. bad_request, not_found.")
    reason: str = Field(description="What went wrong and what to do, for a person.")


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in (
        (400, "Invalid input"), (401, "Not authenticated"), (403, "Forbidden (CSRF)"), (404, "Not found"),
        (409, "Conflict"), (413, "Upload too large"), (422, "Invalid request"), (423, "Lockdown"),
        (429, "Rate limited"), (503, "Storage unavailable"))
}


class Health(BaseModel):
    status: Literal["ok"]
    setup_required: bool


class KioskAnswer(BaseModel):
    opened: bool
    message: str = Field(description="What the door screen shows; never which check refused.")
    name: str | None = Field(default=None, description="Who was let in (when opened).")
    relock_in_s: int | None = Field(default=None, description="The door locks again this long after opening.")
    tries_left: int | None = Field(default=None, description="Wrong keypad entries left before the lockout.")
    locked_until: str | None = Field(default=None, description="End of the keypad lockout (ISO 8601, the lock's "
                                                               "time zone).")


class FaceAnswer(KioskAnswer):
    awaiting_pin: bool = Field(description="A recognised face waits for this screen's PIN/code (held by the lock "
                               "for a short window; send it to /api/kiosk/keypad).")


class ChallengeAnswer(BaseModel):
    id: str = Field(description="Name it once, as `challenge`, in the next /api/kiosk/unlock from this screen.")
    moves: list[Literal["left", "right", "up"]] = Field(description="Head moves to prompt, in order, as seen "
                                                       "in the camera image (flip left/right on a mirrored preview).")
    expires_in_s: int


class KeypadEntry(Body):
    entry: str = Field(min_length=1, max_length=32, pattern=r"^[0-9*#]+$",
                       description="PIN digits (decoys allowed around the PIN), or * + an offline code.")


class LockStatus(BaseModel):
    state: str
    mode: str
    lockdown: bool


class RemoteUnlock(Body):
    pin: str = Field(default="", max_length=T.PIN_MAX_LENGTH, pattern=r"^[0-9]*$",
                     description="The owner's PIN (the lock requires it remotely).")


class OwnerDecision(BaseModel):
    opened: bool
    outcome: str
    reason: str
    detail: str = ""


class Credential(BaseModel):
    id: str
    type: str
    revoked: bool


class WeekDay(BaseModel):
    index: int
    days: list[str]
    start: str
    end: str


class User(BaseModel):
    user_id: str
    index: int
    name: str
    status: str
    user_type: str
    permission: str
    credential_rule: str
    face: bool
    credentials: list[Credential]
    week_days: list[WeekDay]


class Enrolled(BaseModel):
    user_id: str
    name: str
    samples: int
    rejected: dict[str, int]
    warnings: list[str]
    purpose: str
    retention_days: int


# What the API takes, said in the schema (so clients and fuzzers see the same rules the handlers apply).
NAME = r"^[\w.,'’()&+\-]([\w .,'’()&+\-]{0,62}[\w.,'’()&+\-])?$"  # letters, digits, plain punctuation
PIN = rf"^[0-9]{{{T.PIN_MIN_LENGTH},{T.PIN_MAX_LENGTH}}}$"  # also: not one repeated digit, not a straight run
TEXT = r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$"  # free text: no control characters, not blank
HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
UserId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{16,32}$")]
ItemId = Annotated[str, PathParam(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_:.\-]+$")]
Frames = Annotated[list[UploadFile], File(min_length=1, max_length=T.SERVICE_MAX_UNLOCK_FRAMES,
                                              description="JPEG/PNG frames")]
TokenId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{16}$")]


class NewUser(Body):
    name: str = Field(min_length=1, max_length=64, pattern=NAME)
    pin: str = Field(pattern=PIN, description="The PIN the person will type at the door.")
    permission: Literal["member", "guest", "administrator", "owner"] = "member"
    valid_hours: ValidHours | None = Field(
        default=None, description="A temporary PIN: valid this long.")


class PinChange(Body):
    pin: str = Field(pattern=PIN)


class WeekDayIn(Body):
    index: WholeNumber = Field(ge=1, le=MAX_SCHEDULES_PER_USER)
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(min_length=1, max_length=7)
    start: str = Field(pattern=HHMM, examples=["07:00"])
    end: str = Field(pattern=HHMM, examples=["19:00"])


class CodeRequest(Body):
    kind: Literal["single_use", "limited", "period_quota"] = "single_use"
    hours: WholeNumber = Field(default=24, ge=1, le=744)
    days: WholeNumber = Field(default=7, ge=1, le=366)
    uses_per_day: WholeNumber = Field(default=1, ge=1, le=9)  # one digit of the offline code


class IssuedCode(BaseModel):
    code_id: str
    code: str = Field(description="Shown once: never returned again.")
    kind: str
    start: str
    end: str
    enter_as: str


class CodeInfo(BaseModel):
    code_id: str
    kind: str
    start: str | None
    end: str | None
    uses_per_day: int | None
    issued_by: str | None
    uses: int
    revoked: bool


class AuditRecord(BaseModel):
    index: int
    at: str | None
    kind: str
    actor: str | None
    subject: str | None
    outcome: str | None
    reason: str | None
    source: str | None
    data: dict[str, Any]


class TokenRequest(Body):
    name: str = Field(min_length=1, max_length=64)
    scopes: list[Annotated[Scope, Field(strict=False)]] = Field(min_length=1, max_length=3,  # names, from JSON
                                                                description="What the token may do.")
    days: TokenDays | None = Field(default=None,
                             description="Lifetime; default the `api_token_days` setting.")


class StepUp(Body):
    password: str = Field(min_length=1, max_length=1024)
    totp: str = Field(default="", max_length=6, pattern=r"^[0-9]*$", description="Authenticator code, if enabled.")


class SteppedUpUntil(BaseModel):
    until: str


class IssuedToken(BaseModel):
    id: str
    token: str = Field(description="Shown once; send as `Authorization: Bearer <token>`.")


class TokenInfo(BaseModel):
    id: str
    name: str
    scopes: list[Scope]
    created_at: str
    expires_at: str
    last_used: str | None
    revoked: bool
    expired: bool


class Done(BaseModel):
    ok: bool = True
    id: str = ""


async def uploads(files: list[UploadFile]) -> list[Upload]:
    return [Upload(f.filename or "upload", f.content_type or "", await f.read()) for f in files]


@router.get("/health", response_model=Health, tags=["service"])
def health(request: Request) -> dict[str, Any]:
    """Liveness, and whether the one-time owner setup is still to be done."""
    return {"status": "ok", "setup_required": not ctx_of(request).accounts.has_owner()}


@router.post("/kiosk/challenge", response_model=ChallengeAnswer, tags=["kiosk"], responses=ERRORS,
             dependencies=[Depends(kiosk_allowed), Depends(unlock_rate)])
def kiosk_challenge(request: Request) -> dict[str, Any]:
    """A random head-move challenge for this door screen (single use, kept by the lock; RGB-only kiosks)."""
    challenge_id, moves = ctx_of(request).lock.issue_challenge(kiosk_session(request))
    return {"id": challenge_id, "moves": [m.value for m in moves.moves], "expires_in_s": int(T.SERVICE_CHALLENGE_TTL_S)}


@router.post("/kiosk/unlock", response_model=FaceAnswer, response_model_exclude_none=True, tags=["kiosk"],
             responses=ERRORS,
             dependencies=[Depends(kiosk_allowed), Depends(unlock_rate)])
async def kiosk_unlock(request: Request, frames: Frames,
                       interval_ms: Annotated[int, Form(ge=10, le=2000)] = 100,
                       challenge: Annotated[str, Form(max_length=64)] = "") -> dict[str, Any]:
    """A burst of camera frames from the door: PAD + face identification → access engine → door + audit.

    `challenge`: the id from /api/kiosk/challenge (required when the lock's `kiosk_challenge` is on)."""
    with FACE_WORK.admitted(kiosk_session(request), door=True):  # beyond the few that wait: 503 busy
        got = await uploads(frames)
        result = await _in_thread(ctx_of(request).lock.unlock_face, got, interval_ms / 1000.0,
                                  kiosk_session(request), challenge)
    return {"opened": result.opened, "message": door_message(result, choose(request)),
            "awaiting_pin": result.awaiting_pin, **door_details(result)}


@router.post("/kiosk/keypad", response_model=KioskAnswer, response_model_exclude_none=True, tags=["kiosk"],
             responses=ERRORS,
             dependencies=[Depends(kiosk_allowed), Depends(unlock_rate)])
def kiosk_keypad(request: Request, body: KeypadEntry) -> dict[str, Any]:
    """A PIN (anti-peep: decoy digits around it are allowed) or `*` + an offline code."""
    result = ctx_of(request).lock.keypad(body.entry, kiosk_session(request))
    return {"opened": result.opened, "message": door_message(result, choose(request)), **door_details(result)}


def door_details(result: KioskResult) -> dict[str, Any]:
    """The door screen's extras, present only when they apply."""
    return {"name": result.name or None, "relock_in_s": result.relock_in_s, "tries_left": result.tries_left,
            "locked_until": result.locked_until or None}


@router.get("/lock", response_model=LockStatus, tags=["lock"], responses=ERRORS)
def lock_status(request: Request, caller: Reader) -> dict[str, Any]:
    return ctx_of(request).lock.status()


@router.post("/lock/lock", response_model=LockStatus, tags=["lock"], responses=ERRORS)
def lock_lock(request: Request, caller: Manager) -> dict[str, Any]:
    """Lock the door now (recorded with the owner as actor)."""
    return ctx_of(request).lock.lock(caller.actor)


@router.post("/lock/unlock", response_model=OwnerDecision, tags=["lock"], responses=ERRORS,
             dependencies=[Depends(same_origin)])
def lock_unlock(request: Request, caller: Unlocker, body: RemoteUnlock) -> dict[str, Any]:
    """Remote unlock: the access engine's remote rule (owner only, PIN required by default)."""
    unlock_rate(request)  # after authentication: strangers cannot drain the door screen's budget
    remote_unlock_rate(request, caller)  # and per owner account, whichever address the requests come from
    d = ctx_of(request).lock.remote_unlock(caller.actor, body.pin)
    return {"opened": d.accepted, "outcome": d.outcome.value, "reason": d.reason.value, "detail": d.detail}


@router.get("/users", response_model=list[User], tags=["users"], responses=ERRORS)
def users(request: Request, caller: Reader) -> list[dict[str, Any]]:
    return ctx_of(request).lock.users()


def door_key_issuer(request: Request, caller: Caller) -> TokenIssuer | None:
    """Issuing a door credential (a PIN, a code): a token needs the `unlock` scope too, and what it issues is its
    own (ends by its expiry, revoked with it, audited with its id); the owner's session needs the step-up (403)."""
    if caller.grant is None:
        require_step_up(request, caller)
        return None
    if Scope.UNLOCK not in caller.grant.scopes:
        raise HTTPException(403, "a PIN or a code opens the door: this needs a token with the 'unlock' scope "
                                 "(or the owner, logged in and confirmed)")
    return TokenIssuer(caller.grant.token_id, caller.grant.expires_at)


@router.post("/users", response_model=Done, tags=["users"], responses=ERRORS)
def add_user(request: Request, caller: Manager, body: NewUser) -> dict[str, Any]:
    """Add a user who opens with a PIN (the access engine checks who may add whom).

    A PIN opens the door: a token needs the `unlock` scope as well (the PIN ends by the token's expiry and is
    revoked with it), the owner's session the step-up; an owner or administrator needs the step-up whoever asks."""
    if body.permission in ("owner", "administrator"):
        require_step_up(request, caller)
    token = door_key_issuer(request, caller)
    user_id = ctx_of(request).lock.add_user(caller.actor, body.name, body.pin, body.permission, body.valid_hours,
                                            token)
    return {"ok": True, "id": user_id}


PRIVILEGED = frozenset({"owner", "administrator"})


def require_step_up_for_owner(request: Request, caller: Caller, user_id: str = "", credential_id: str = "") -> None:
    """Changing an owner or administrator (or a credential of theirs) needs the owner's step-up (403 otherwise):
    a manage token alone cannot lock the owners out. An unknown target passes on, for the lock to refuse."""
    for person in ctx_of(request).lock.users():
        if person["user_id"] == user_id or any(c["id"] == credential_id for c in person["credentials"]):
            if person["permission"] in PRIVILEGED:
                require_step_up(request, caller)
            return


@router.post("/users/enrol", response_model=Enrolled, tags=["users"], responses=ERRORS)
async def enrol(request: Request, caller: Manager,
                name: Annotated[str, Form(min_length=1, max_length=64, pattern=NAME)],
                purpose: Annotated[str, Form(min_length=1, max_length=200, pattern=TEXT)],
                retention_days: Annotated[int, Form(ge=1, le=3650)],
                consent: Annotated[bool, Form(description="The person read the consent text and agreed.")],
                files: Annotated[list[UploadFile], File(min_length=1, max_length=T.SERVICE_MAX_ENROL_FILES,
                                                        description="Photos, a video, or camera frames")],
                source: Annotated[Literal["upload", "camera"], Form()] = "upload",
                user_id: Annotated[str | None, Form(pattern=r"^[0-9a-f]{16,32}$",
                                                    description="Add the face to this existing person "
                                                                "(replacing their face); `name` is then "
                                                                "ignored.")] = None) -> dict[str, Any]:
    """Enrol a face (consent, purpose and retention recorded); all or nothing.

    A face is a way in, as a PIN is: the owner's session needs the step-up for any enrolment (a stolen cookie
    alone adds no face), and replacing an existing person's face (`user_id`) needs it whoever asks; a token can
    enrol new people only, and only with the `unlock` scope as well."""
    if user_id is not None or caller.grant is None:
        require_step_up(request, caller)
    if caller.grant is not None and Scope.UNLOCK not in caller.grant.scopes:
        raise HTTPException(403, "a face opens the door: enrolling one needs a token with the 'unlock' scope "
                                 "(or the owner, logged in)")
    with FACE_WORK.admitted(f"enrol:{caller.actor}", door=False):  # the last slot stays the door screen's
        got = await uploads(files)
        return await _in_thread(ctx_of(request).lock.enrol, caller.actor, name, got, purpose, retention_days,
                                consent, source == "camera", user_id)


@router.delete("/users/{user_id:userid}", response_model=Done, tags=["users"], responses=ERRORS)
def remove_user(request: Request, caller: Manager, user_id: UserId) -> dict[str, Any]:
    require_step_up_for_owner(request, caller, user_id=user_id)
    ctx_of(request).lock.remove_user(caller.actor, user_id)
    return {"ok": True, "id": user_id}


@router.post("/users/{user_id:userid}/pin", response_model=Done, tags=["users"], responses=ERRORS)
def set_pin(request: Request, caller: SteppedUp, user_id: UserId, body: PinChange) -> dict[str, Any]:
    return {"ok": True, "id": ctx_of(request).lock.set_pin(caller.actor, user_id, body.pin)}


@router.post("/users/{user_id:userid}/week-days", response_model=Done, tags=["users"], responses=ERRORS)
def set_week_day(request: Request, caller: Manager, user_id: UserId, body: WeekDayIn) -> dict[str, Any]:
    """Allow the user only on these days between start and end (local time)."""
    require_step_up_for_owner(request, caller, user_id=user_id)
    ctx_of(request).lock.set_week_day(caller.actor, user_id, body.index, body.days, body.start, body.end)
    return {"ok": True, "id": user_id}


@router.post("/credentials/{credential_id}/revoke", response_model=Done, tags=["users"], responses=ERRORS)
def revoke_credential(request: Request, caller: Manager, credential_id: ItemId) -> dict[str, Any]:
    require_step_up_for_owner(request, caller, credential_id=credential_id)
    ctx_of(request).lock.revoke_credential(caller.actor, credential_id)
    return {"ok": True, "id": credential_id}


@router.get("/codes", response_model=list[CodeInfo], tags=["codes"], responses=ERRORS)
def codes(request: Request, caller: Reader) -> list[dict[str, Any]]:
    return ctx_of(request).lock.codes()


@router.post("/codes", response_model=IssuedCode, tags=["codes"], responses=ERRORS)
def issue_code(request: Request, caller: Manager, body: CodeRequest) -> dict[str, Any]:
    """Issue a temporary/offline code; its digits are in this answer only.

    A code opens the door: a token needs the `unlock` scope as well (the code cannot outlive the token and is
    revoked with it), the owner's session the step-up."""
    token = door_key_issuer(request, caller)
    return ctx_of(request).lock.issue_code(caller.actor, body.kind, body.hours, body.days, body.uses_per_day,
                                           token)


@router.post("/codes/{code_id}/revoke", response_model=Done, tags=["codes"], responses=ERRORS)
def revoke_code(request: Request, caller: Manager, code_id: ItemId) -> dict[str, Any]:
    return {"ok": True, "id": ctx_of(request).lock.revoke_code(caller.actor, code_id)}


@router.get("/audit", response_model=list[AuditRecord], tags=["audit"], responses=ERRORS)
def audit(request: Request, caller: Reader,
          kind: Annotated[EventKind | None, Query()] = None,
          outcome: Annotated[Literal["accept", "reject"] | None, Query()] = None,
          actor: Annotated[str, Query(max_length=64)] = "",
          limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """The audit trail, newest first, filtered by kind, outcome and actor."""
    return ctx_of(request).lock.audit(kind.value if kind else "", outcome or "", actor, limit)


@router.get("/alarms", response_model=list[AuditRecord], tags=["audit"], responses=ERRORS)
def alarms(request: Request, caller: Reader,
           limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[dict[str, Any]]:
    return ctx_of(request).lock.alarms(limit)


@router.get("/tokens", response_model=list[TokenInfo], tags=["tokens"], responses=ERRORS)
def tokens(request: Request, caller: Reader) -> list[dict[str, Any]]:
    return ctx_of(request).accounts.tokens(caller.owner)


@router.post("/tokens", response_model=IssuedToken, tags=["tokens"], responses=ERRORS)
def issue_token(request: Request, caller: SteppedUp, body: TokenRequest) -> dict[str, Any]:
    """A new token with these scopes (owner session + step-up only: a token never mints tokens)."""
    ctx = ctx_of(request)
    token_id, token = ctx.accounts.issue_token(caller.owner, body.name, set(body.scopes),
                                               body.days or ctx.settings.api_token_days)
    return {"id": token_id, "token": token}


@router.post("/step-up", response_model=SteppedUpUntil, tags=["tokens"], responses=ERRORS,
             dependencies=[Depends(login_rate)])
def step_up(request: Request, caller: Reader, body: StepUp) -> dict[str, Any]:
    """Confirm the logged-in owner (password, + authenticator code if enabled) for a few minutes."""
    if caller.session is None:
        require_step_up(request, caller)  # a token cannot step up
    ctx = ctx_of(request)
    if not ctx.accounts.step_up(request.cookies.get(COOKIE, ""), body.password, body.totp):
        raise HTTPException(403, "wrong password or authenticator code")
    session = ctx.accounts.session(request.cookies.get(COOKIE, ""))
    assert session is not None and session.stepped_up_until is not None
    return {"until": session.stepped_up_until.isoformat()}


@router.delete("/tokens/{token_id}", response_model=Done, tags=["tokens"], responses=ERRORS)
def revoke_token(request: Request, caller: Manager, token_id: TokenId) -> dict[str, Any]:
    """Revoke the token, and with it every PIN and code it issued."""
    ctx = ctx_of(request)
    ctx.accounts.revoke_token(caller.owner, token_id)  # NotFound unless it is this owner's
    ctx.lock.revoke_issued_by(caller.actor, token_id)
    return {"ok": True, "id": token_id}


def kiosk_session(request: Request) -> str:
    """Which door screen asks: its pairing cookie, else its address (the lock's own screen, on loopback).

    A face recognised as a first factor is held server-side for this session only.
    """
    paired = request.cookies.get(KIOSK_COOKIE, "")
    return f"kiosk:{paired}" if paired else f"addr:{request.client.host if request.client else ''}"


async def _in_thread(fn: Any, *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)
