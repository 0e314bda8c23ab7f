"""Server-rendered pages: first-run setup, login, the door kiosk and the owner console.

Forms post back here with the session's CSRF token; a successful change
redirects (303) to the page with a fixed notice.  The enrolment page and the
kiosk use small vanilla scripts that call the REST API.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from limen import thresholds as T
from limen.access.offline import CodeKind
from limen.audit.event import EventKind
from limen.decision import Reason
from limen.errors import BadRequest, Conflict, LimenError, LockdownActive, NotFound
from limen.service import feed, i18n
from limen.service.accounts import Scope, new_totp_secret, totp_step, totp_uri
from limen.service.auth import (
    COOKIE,
    KIOSK_COOKIE,
    Caller,
    LoginRequired,
    check_csrf,
    clear_session_cookie,
    ctx_of,
    forwarded_untrusted,
    is_lock_itself,
    kiosk_allowed,
    login_rate,
    page_caller,
    remote_unlock_rate,
    same_origin,
    set_kiosk_cookie,
    set_session_cookie,
)
from limen.service.i18n import N_
from limen.tamper.lockdown import LockdownCause

router = APIRouter(include_in_schema=False)

NOTICES = {
    "locked": N_("Lock command sent."),
    "removed": N_("User removed."),
    "added": N_("User added."),
    "pin": N_("PIN changed."),
    "schedule": N_("Schedule saved."),
    "revoked": N_("Code revoked: it is refused from the next attempt on."),
    "credential": N_("Credential revoked."),
    "token-revoked": N_("API token revoked."),
    "kiosk-revoked": N_("Door screen unpaired."),
    "welcome": N_("Your owner account is ready."),
    "opened": N_("Door opened."),
    "guest": N_("Guest code ready: share it now, it is not shown again."),
    "guest-revoked": N_("Guest code revoked: it no longer opens the door."),
    "acknowledged": N_("Alarm acknowledged."),
    "test-alarm": N_("Test alarm raised: it is on its way to every configured channel."),
    "test-alarm-nowhere": N_("Test alarm raised, but no alarm channel is set up (nor the cloud link): it shows only "
                             "here. Add a channel below."),
    "lockout-cleared": N_("Lockout cleared: the keypad accepts codes again."),
    "lockdown-on": N_("Lockdown on: only the mechanical key and your app's signed command open until you lift it."),
    "lockdown-off": N_("Lockdown lifted: the lock opens as usual. Nothing was erased."),
    "lockdown-tamper": N_("This is a tamper lockdown: it is lifted only on the lock, by re-provisioning it "
                          "(limen tamper clear); then everyone enrols again."),
    "channel-added": N_("Alarm channel added: send it a test to be sure it reaches you."),
    "channel-removed": N_("Alarm channel removed: alarms no longer go there."),
    "channel-ok": N_("Test delivered: check that it arrived."),
    "channel-failed": N_("Test not delivered: see the reason beside the channel."),
}
REFUSALS = {"pin_required": N_("your PIN is needed"), "unknown_credential": N_("wrong PIN"),
            "no_match": N_("wrong PIN"), "locked_out": N_("the keypad is locked out"),
            "lockdown": N_("the lock is in tamper lockdown"),
            "lockdown_command": N_("the lock is in an owner's lockdown: lift it below, or open with the app"),
            "remote_not_authorised": N_("remote unlock is not allowed"),
            "mode_forbids": N_("the lock's mode forbids it")}


LIVE_WORDS = ("locked", "unlocked", "locking", "unlocking", "jammed", "open", "closed")  # pushed states, translated


def render(request: Request, template: str, code: int = 200, /, **values: Any) -> Response:
    ctx = ctx_of(request)
    lang = i18n.activate(request)
    caller: Caller | None = values.pop("caller", None)
    values.setdefault("notice", i18n.gettext(NOTICES.get(request.query_params.get("done", ""), "")))
    values["owner"] = caller.owner if caller else None
    values["csrf"] = caller.session.csrf if caller and caller.session else ""
    values.setdefault("token_days", ctx.settings.api_token_days)
    values.setdefault("pin_min", T.PIN_MIN_LENGTH)
    values.setdefault("pin_max", T.PIN_MAX_LENGTH)
    values.setdefault("form", {})
    values.setdefault("live_words", {w: i18n.gettext(w) for w in LIVE_WORDS})
    if values.get("error"):  # known messages in the page's language (the rest as the lock wrote them)
        values["error"] = i18n.message(str(values["error"]))
    response = ctx.templates.TemplateResponse(request, template, values, status_code=code)
    if request.query_params.get("lang") == lang:  # a chosen language is remembered on this browser
        response.set_cookie(i18n.COOKIE, lang, max_age=365 * 86400, samesite="strict", httponly=True)
    return response


async def form_of(request: Request, caller: Caller | None = None) -> dict[str, str]:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    if caller is not None:
        assert caller.session is not None
        check_csrf(caller.session, values.get("csrf"))
    return values


def confirm_owner(request: Request, caller: Caller, values: dict[str, str]) -> None:
    """Minting tokens, PINs and codes: the session's owner re-confirms password (+ TOTP) in the same form.

    Each password tried spends a login attempt (429 beyond the limiter, as the API's step-up), and
    `SERVICE_STEP_UP_MAX_FAILURES` wrong ones in a row end the session (back to the login page)."""
    assert caller.session is not None
    ctx = ctx_of(request)
    if caller.session.stepped_up(ctx.clock.now()):
        return
    login_rate(request)
    sid = request.cookies.get(COOKIE, "")
    if not ctx.accounts.step_up(sid, values.get("password", ""), values.get("totp", "")):
        if ctx.accounts.session(sid) is None:
            raise LoginRequired()
        raise HTTPException(403, N_("confirm with your password (and authenticator code): wrong or missing"))


PRIVILEGED = frozenset({"owner", "administrator"})


def is_privileged(request: Request, user_id: str = "", credential_id: str = "") -> bool:
    """Whether the person (or the holder of the credential) is an owner or administrator; unknown: False."""
    for person in ctx_of(request).lock.users():
        if person["user_id"] == user_id or any(c["id"] == credential_id for c in person["credentials"]):
            return person["permission"] in PRIVILEGED
    return False


def confirm_owner_for(request: Request, caller: Caller, values: dict[str, str], user_id: str = "",
                      credential_id: str = "") -> None:
    """Changing an owner or administrator (removing them, their schedule, a credential or finger of theirs):
    `confirm_owner` first, as the API's step-up (a stolen console cookie alone cannot lock the owners out).
    Members need nothing more; an unknown target passes on, for the lock to refuse."""
    if is_privileged(request, user_id, credential_id):
        confirm_owner(request, caller, values)


def qr_data_uri(text: str) -> str:
    """A QR code as an SVG data: URI for an <img> (segno; no script, fits the page's CSP)."""
    import segno

    return str(segno.make(text, error="m").svg_data_uri(scale=5, border=2))


def back(path: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?done={done}", status_code=303)


def _int(values: dict[str, str], key: str, default: int) -> int:
    text = values.get(key, "").strip()
    if not text:
        return default
    if not text.isdigit() or len(text) > 6:
        raise BadRequest(key, "a whole number")
    return int(text)


# ---------------------------------------------------------------------- API docs, offline

DOCS_ASSETS = str(Path(fastapi_offline.__file__).parent / "static")  # Swagger UI and ReDoc as shipped on PyPI


@router.get("/docs", response_class=HTMLResponse)
def swagger_docs() -> Response:
    """Swagger UI from the bundled files: works on a lock with no Internet."""
    from fastapi.openapi.docs import get_swagger_ui_html

    return get_swagger_ui_html(openapi_url="/openapi.json", title="Limen lock service · API",
                               swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                               swagger_css_url="/docs-assets/swagger-ui.css",
                               swagger_favicon_url="/docs-assets/favicon.png")


@router.get("/redoc", response_class=HTMLResponse)
def redoc_docs() -> Response:
    from fastapi.openapi.docs import get_redoc_html

    return get_redoc_html(openapi_url="/openapi.json", title="Limen lock service · API",
                          redoc_js_url="/docs-assets/redoc.standalone.js",
                          redoc_favicon_url="/docs-assets/favicon.png", with_google_fonts=False)


# ---------------------------------------------------------------------- first run, login


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    ctx = ctx_of(request)
    if not ctx.accounts.has_owner():
        return render(request, "welcome.html")
    return RedirectResponse("/owner", status_code=303)


@router.get("/setup", response_class=HTMLResponse)
def setup_form(request: Request, token: str = "") -> Response:
    ctx = ctx_of(request)
    if not ctx.accounts.setup_token_valid(token):
        return render(request, "error.html", 403, status=403,
                      reason=N_("This setup link is invalid or was already used. Restart `limen serve` on the lock "
                                "to print a new one if no owner account exists yet."))
    secret = new_totp_secret()
    return render(request, "setup.html", token=token, existing=ctx.lock.has_owner(), totp_secret=secret,
                  totp_qr=qr_data_uri(totp_uri(secret, "owner")))


@router.post("/setup", response_class=HTMLResponse, dependencies=[Depends(login_rate)])
async def setup_submit(request: Request) -> Response:
    ctx = ctx_of(request)
    f = await form_of(request)
    token = f.get("token", "")
    if not ctx.accounts.setup_token_valid(token):
        raise HTTPException(403, N_("this setup link is invalid or was already used"))
    existing = ctx.lock.has_owner()  # people enrolled before any owner do not make one
    totp_secret = f.get("totp_secret") if f.get("use_totp") else None
    secret = new_totp_secret()
    try:
        if f.get("password", "") != f.get("password2", ""):
            raise BadRequest("password", N_("the two passwords differ"))
        step = totp_step(totp_secret, f.get("totp_code", ""), ctx.clock.now()) if totp_secret else None
        if totp_secret and step is None:
            raise BadRequest("totp_code", N_("the authenticator code does not match; scan the key again"))
        from limen.service.accounts import validate_password, validate_username

        username = validate_username(f.get("username", ""))
        validate_password(f.get("password", ""))
        name, pin = f.get("name", "").strip() or username, f.get("pin", "")
        user_id = ctx.lock.existing_owner(name, pin) if existing else ctx.lock.first_owner(name, pin)
        owner = ctx.accounts.create_first_owner(token, username, f.get("password", ""), user_id, totp_secret)
        if step is not None:
            ctx.accounts.burn_totp_step(owner, step)
    except LimenError as exc:
        return render(request, "setup.html", 400, token=token, existing=existing,
                      totp_secret=totp_secret or secret, totp_qr=qr_data_uri(totp_uri(totp_secret or secret, "owner")),
                      error=str(exc),
                      username=f.get("username", ""), name=f.get("name", ""))
    ctx.setup_token = None
    sid, _ = ctx.accounts.open_session(owner)
    response = back("/owner", "welcome")
    set_session_cookie(request, response, sid)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, expired: str = "") -> Response:
    if not ctx_of(request).accounts.has_owner():
        return RedirectResponse("/", status_code=303)
    return render(request, "login.html", error=N_("Your session expired; log in again.") if expired else "")


@router.post("/login", response_class=HTMLResponse, dependencies=[Depends(login_rate)])
async def login_submit(request: Request) -> Response:
    ctx = ctx_of(request)
    f = await form_of(request)
    owner = ctx.accounts.login(f.get("username", ""), f.get("password", ""), f.get("totp", ""))
    if owner is None:
        return render(request, "login.html", 401, error=N_("Wrong user name, password or authenticator code."),
                      username=f.get("username", "")[:64])
    sid, _ = ctx.accounts.open_session(owner)
    response = RedirectResponse("/owner", status_code=303)
    set_session_cookie(request, response, sid)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    ctx_of(request).accounts.close_session(request.cookies.get(COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response)
    return response


# ---------------------------------------------------------------------- kiosk


PROXIED_KIOSK = N_("this door screen came through a proxy the lock does not trust, so it cannot tell the lock's own "
                   "screen from a visitor: open /kiosk on the lock directly, pair this screen with a link from API "
                   "tokens › Door screens, or list the proxy in trusted_proxies in limen.toml (it must send "
                   "X-Forwarded-For)")


@router.get("/kiosk", response_class=HTMLResponse)
def kiosk(request: Request, pair: str = "") -> Response:
    """The door screen; `?pair=<token>` (from the owner's Door screens page) pairs this browser once."""
    if pair:
        cookie = ctx_of(request).accounts.redeem_pairing(pair)
        if cookie is None:
            raise HTTPException(403, N_("this pairing link is invalid, expired, revoked or already used; "
                                        "the owner makes a new one under API tokens › Door screens"))
        response = RedirectResponse("/kiosk", status_code=303)
        set_kiosk_cookie(request, response, cookie)
        return response
    ctx = ctx_of(request)
    page = render(request, "kiosk.html", challenge=ctx.settings.kiosk_challenge)
    if is_lock_itself(request) and not ctx.accounts.kiosk_paired(request.cookies.get(KIOSK_COOKIE, "")):
        if forwarded_untrusted(request):  # a reverse proxy on the lock: every visitor would look like loopback
            raise HTTPException(403, PROXIED_KIOSK)
        set_kiosk_cookie(request, page, ctx.accounts.pair_local_screen())  # the lock's own screen
    return page


# ---------------------------------------------------------------------- live state (server-sent events)

KIOSK_LIVE = ("state", "lockdown", "locked_out_until", "relock_in_s")  # what a door screen may see


async def _live(request: Request, keys: tuple[str, ...] | None) -> AsyncIterator[str]:
    """The lock's state as SSE: sent when it changes (and a comment as heartbeat); ends after a while, the
    browser's EventSource reconnects by itself."""
    from starlette.concurrency import run_in_threadpool

    lock, audit = ctx_of(request).lock, ctx_of(request).runtime.audit
    last, started = "", time.monotonic()
    yield f"retry: {int(T.SERVICE_LIVE_POLL_S * 1000)}\n\n"
    while time.monotonic() - started < T.SERVICE_LIVE_STREAM_S and not await request.is_disconnected():
        status = await run_in_threadpool(lock.status)
        if keys is not None:
            status = {k: status[k] for k in keys}
        else:
            status.pop("warnings", None)
            status["history"] = await run_in_threadpool(audit.count)  # a new record: the feed and alarms reload
        data = json.dumps(status, sort_keys=True)
        yield f"data: {data}\n\n" if data != last else ": still\n\n"
        last = data
        await asyncio.sleep(T.SERVICE_LIVE_POLL_S)


def _stream(request: Request, keys: tuple[str, ...] | None) -> StreamingResponse:
    return StreamingResponse(_live(request, keys), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/owner/live")
def owner_live(request: Request, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    """Lock, door, lockout, lockdown and relock countdown for the console, pushed."""
    return _stream(request, None)


@router.get("/kiosk/live", dependencies=[Depends(kiosk_allowed)])
def kiosk_live(request: Request) -> Response:
    """The same for a paired door screen, limited to what a person at the door may see."""
    return _stream(request, KIOSK_LIVE)


# ---------------------------------------------------------------------- owner console


@router.get("/owner", response_class=HTMLResponse)
def dashboard(request: Request, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    ctx = ctx_of(request)
    why = request.query_params.get("why", "")
    notice = i18n.gettext("Refused: {why}.").format(why=i18n.gettext(REFUSALS.get(why, N_("not allowed")))) \
        if request.query_params.get("done") == "refused" else None
    values: dict[str, Any] = {"notice": notice} if notice else {}
    channels = ctx.alarms.count()
    checklist = [  # the first-run "what next": each step links to where it is done
        (N_("Enrol your face"), f"/owner/enrol?user={caller.owner.user_id}",
         ctx.lock.person(caller.owner.user_id)["face"]),
        (N_("Add your family (a PIN each, then a face)"), "/owner/users", len(ctx.lock.users()) > 1),
        (N_("Set up alarms to your phone"), "/owner/alarms#delivery", channels > 0),
        (N_("Keep a backup (a recovery key)"), "/owner/backups", ctx.lock.backups()["set_up"]),
    ]
    return render(request, "owner.html", caller=caller, status=ctx.lock.status(), incidents=ctx.lock.incidents(8),
                  incidents_limit=8,
                  recent=ctx.lock.activity(limit=10), channels=channels, checklist=checklist, **values)


@router.get("/owner/backups", response_class=HTMLResponse)
def backups_page(request: Request, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    """Whether backups are set up, and the two commands that do it on the lock (they are made there)."""
    lock = ctx_of(request).lock
    return render(request, "backups.html", caller=caller, backups=lock.backups(),
                  name=lock.person(caller.owner.user_id)["name"])


@router.get("/owner/activity", response_class=HTMLResponse)
def activity_page(request: Request, person: str = "", method: str = "", outcome: str = "", limit: int = 100,
                  caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    """Who came in and who was refused, as sentences, filtered by person, method and outcome."""
    lock = ctx_of(request).lock
    names = lock.names()
    return render(request, "activity.html", caller=caller, items=lock.activity(person[:64], method, outcome, limit),
                  people=sorted(names.items(), key=lambda kv: kv[1].lower()), person=person[:64], method=method,
                  outcome=outcome, methods=feed.METHODS, zone=lock.zone().key)


@router.get("/owner/fragments/{name}", response_class=HTMLResponse)
def fragment(request: Request, name: str, person: str = "", method: str = "", outcome: str = "", limit: int = 100,
             back_to: str = "", caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    """One list of a page, rendered alone, for live.js to swap in when the history grows (no reload)."""
    ctx = ctx_of(request)
    limit = max(1, min(limit, 200))
    if name == "activity":
        items = ctx.lock.activity(person[:64], method, outcome, limit)
        return render(request, "_feed.html", caller=caller, items=items)
    if name == "recent":
        return render(request, "_feed.html", caller=caller, items=ctx.lock.activity(limit=10))
    if name == "incidents":
        return render(request, "_incident_items.html", caller=caller, incidents=ctx.lock.incidents(limit),
                      channels=ctx.alarms.count(), back="alarms" if back_to == "alarms" else "")
    raise HTTPException(404, N_("no such list"))


@router.get("/owner/alarms", response_class=HTMLResponse)
def alarms_page(request: Request, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    return _alarms(request, caller)


def _alarms(request: Request, caller: Caller, code: int = 200, **values: Any) -> Response:
    ctx = ctx_of(request)
    views = ctx.alarms.views()
    return render(request, "alarms.html", code, caller=caller, incidents=ctx.lock.incidents(200),
                  channels=len(views), channel_views=views, channels_problem=ctx.alarms.problem, **values)


@router.post("/owner/alarms/channels", response_class=HTMLResponse)
async def alarm_channel_add(request: Request, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    """Add an apprise URL (sealed on the lock, shown masked from now on); password-confirmed, audited."""
    f = await form_of(request, caller)
    try:
        confirm_owner(request, caller, f)
        ctx_of(request).alarms.add(caller.actor, f.get("url", ""), f.get("label", ""))
    except LimenError as exc:  # the form comes back with the label (the URL holds a token: typed again)
        code = 409 if isinstance(exc, Conflict) else 400
        return _alarms(request, caller, code, error=str(exc), form={"label": f.get("label", "")[:64]})
    return back("/owner/alarms", "channel-added")


@router.post("/owner/alarms/channels/remove")
async def alarm_channel_remove(request: Request, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    """Remove a console channel: alarms stop going there (password-confirmed: it silences a phone)."""
    f = await form_of(request, caller)
    confirm_owner(request, caller, f)
    ctx_of(request).alarms.remove(caller.actor, f.get("channel", "")[:80])
    return back("/owner/alarms", "channel-removed")


@router.post("/owner/alarms/channels/test")
async def alarm_channel_test(request: Request, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    """Send one test notification through one channel now; the result shows beside the channel."""
    from starlette.concurrency import run_in_threadpool

    f = await form_of(request, caller)
    result = await run_in_threadpool(ctx_of(request).alarms.test, caller.actor, f.get("channel", "")[:80])
    return back("/owner/alarms", "channel-ok" if result.delivered else "channel-failed")


@router.post("/owner/alarms/ack")
async def alarms_ack(request: Request, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    form = await request.form()
    assert caller.session is not None
    check_csrf(caller.session, str(form.get("csrf", "")))
    ids = [str(i) for i in form.getlist("alarm") if str(i).isdigit() and len(str(i)) < 12]
    ctx_of(request).lock.acknowledge(caller.actor, [int(i) for i in ids])
    target = "/owner/alarms" if form.get("back") == "alarms" else "/owner"
    return back(target, "acknowledged")


@router.post("/owner/alarms/test")
async def alarms_test(request: Request, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    await form_of(request, caller)
    ctx = ctx_of(request)
    ctx.lock.test_alarm(caller.owner.username)
    reaches = ctx.alarms.count() > 0 or bool(ctx.settings.link_broker)  # else it is only in the console
    return back("/owner/alarms", "test-alarm" if reaches else "test-alarm-nowhere")


@router.post("/owner/lockout/clear")
async def lockout_clear(request: Request, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    """End the keypad lockout: the owner confirms (password, + TOTP) — a stolen console cookie alone would lift the
    brute-force brake on PINs at the door and on the remote unlock each time it engaged."""
    confirm_owner(request, caller, await form_of(request, caller))
    ctx_of(request).lock.clear_lockout(caller.actor)
    return back("/owner", "lockout-cleared")


@router.post("/owner/lock")
async def owner_lock(request: Request, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    await form_of(request, caller)
    ctx_of(request).lock.lock(caller.actor)
    return back("/owner", "locked")


@router.post("/owner/unlock", response_class=HTMLResponse, dependencies=[Depends(same_origin)])
async def owner_unlock(request: Request, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    f = await form_of(request, caller)
    ctx = ctx_of(request)
    remote_unlock_rate(request, caller)
    d = ctx.lock.remote_unlock(caller.actor, f.get("pin", ""))
    if d.accepted:  # POST-redirect-GET: reloading the page never sends the unlock again
        return back("/owner", "opened")
    why = d.reason.value
    if d.reason is Reason.LOCKDOWN and ctx.lock.status()["lockdown_cause"] == LockdownCause.COMMAND:
        why = "lockdown_command"  # worded by its cause: the owner can lift this one
    return RedirectResponse(f"/owner?done=refused&why={why}", status_code=303)


@router.post("/owner/lockdown")
async def owner_lockdown(request: Request, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    """Start or lift an owner's lockdown (nothing is erased): the owner confirms (password, + TOTP) — lifting it
    reopens the door to faces, PINs and codes, starting it shuts out the household.  A tamper lockdown is not
    lifted here (re-provisioning on the lock, `limen tamper clear`)."""
    f = await form_of(request, caller)
    confirm_owner(request, caller, f)
    try:
        cause = ctx_of(request).lock.set_lockdown(caller.actor, f.get("on") == "1")
    except LockdownActive:
        return back("/owner", "lockdown-tamper")
    if cause == LockdownCause.TAMPER:
        return back("/owner", "lockdown-tamper")
    return back("/owner", "lockdown-on" if cause else "lockdown-off")


@router.get("/owner/users", response_class=HTMLResponse)
def users_page(request: Request, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    return render(request, "users.html", caller=caller, users=ctx_of(request).lock.users())


@router.post("/owner/users", dependencies=[Depends(login_rate)])
async def user_add(request: Request, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    f = await form_of(request, caller)
    lock = ctx_of(request).lock
    kept = {k: f.get(k, "")[:64] for k in ("name", "permission", "valid_hours")}  # never the PIN or password
    try:
        confirm_owner(request, caller, f)  # a PIN opens the door: the owner confirms (as the API's step-up)
    except HTTPException as exc:  # a wrong or missing password: the form again, not a dead end (429 and an
        if exc.status_code != 403:  # ended session go on as everywhere)
            raise
        return render(request, "users.html", 403, caller=caller, users=lock.users(), error=str(exc.detail), form=kept)
    try:
        hours = _int(f, "valid_hours", 0) or None
        user_id = lock.add_user(caller.actor, f.get("name", ""), f.get("pin", ""), f.get("permission", "member"),
                                hours)
    except LimenError as exc:  # the form comes back with what was typed (never the PIN) and the reason
        return render(request, "users.html", 400, caller=caller, users=lock.users(), error=str(exc), form=kept)
    return back(f"/owner/users/{user_id}", "added")


@router.get("/owner/users/{user_id}", response_class=HTMLResponse)
def person_page(request: Request, user_id: str, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    """One person: their faces, PINs, codes, schedule, validity, consent and state, with "add" for each."""
    return render(request, "person.html", caller=caller, p=ctx_of(request).lock.person(user_id[:64]))


@router.post("/owner/users/{user_id}/remove")
async def user_remove(request: Request, user_id: str, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    f = await form_of(request, caller)
    confirm_owner_for(request, caller, f, user_id=user_id)
    ctx_of(request).lock.remove_user(caller.actor, user_id)
    return back("/owner/users", "removed")


@router.post("/owner/users/{user_id}/pin", dependencies=[Depends(login_rate)])
async def user_pin(request: Request, user_id: str, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    f = await form_of(request, caller)
    confirm_owner(request, caller, f)
    lock = ctx_of(request).lock
    try:
        lock.set_pin(caller.actor, user_id, f.get("pin", ""))
    except LimenError as exc:  # the person's page again, with the reason beside the form (never the PIN)
        if isinstance(exc, NotFound):
            raise
        return render(request, "person.html", 400, caller=caller, p=lock.person(user_id[:64]), error=str(exc),
                      pin_error=True)
    return back(f"/owner/users/{user_id}", "pin")


@router.post("/owner/users/{user_id}/week-day")
async def user_week_day(request: Request, user_id: str, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    form = await request.form()
    assert caller.session is not None
    check_csrf(caller.session, str(form.get("csrf", "")))
    confirm_owner_for(request, caller, {k: v for k, v in form.items() if isinstance(v, str)}, user_id=user_id)
    days = [str(d) for d in form.getlist("days")]
    ctx_of(request).lock.set_week_day(caller.actor, user_id, _int({"i": str(form.get("index", "1"))}, "i", 1), days,
                                      str(form.get("start", "")), str(form.get("end", "")))
    return back(f"/owner/users/{user_id}", "schedule")


@router.post("/owner/credentials/{credential_id}/revoke")
async def credential_revoke(request: Request, credential_id: str,
                            caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    f = await form_of(request, caller)
    confirm_owner_for(request, caller, f, credential_id=credential_id)
    ctx_of(request).lock.revoke_credential(caller.actor, credential_id)
    target = f.get("back", "")
    local = target.startswith("/owner/users/") and target[len("/owner/users/"):].isalnum()  # no open redirect
    return back(target if local else "/owner/users", "credential")


@router.get("/owner/enrol", response_class=HTMLResponse)
def enrol_page(request: Request, user: str = "", caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    """Enrol a new person's face, or (`?user=<id>`) add a face to an existing person."""
    person = ctx_of(request).lock.person(user[:64]) if user else None
    return render(request, "enrol.html", caller=caller, person=person)


@router.get("/owner/codes", response_class=HTMLResponse)
def codes_page(request: Request, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    assert caller.session is not None
    for key, (until, _) in list(_shown_once.items()):
        if until < time.monotonic():
            del _shown_once[key]
    held = _shown_once.pop(caller.session.csrf, None)  # the digits are shown on this one page view only
    return render(request, "codes.html", caller=caller, codes=ctx_of(request).lock.codes(),
                  kinds=[k.value for k in CodeKind], issued=held[1] if held else None)


_shown_once: dict[str, tuple[float, dict[str, Any]]] = {}  # session → a just-issued code, until first shown


@router.post("/owner/codes", response_class=HTMLResponse)
async def codes_issue(request: Request, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    f = await form_of(request, caller)
    confirm_owner(request, caller, f)  # a code opens the door: the owner confirms (as the API's step-up)
    ctx = ctx_of(request)
    issued = ctx.lock.issue_code(caller.actor, f.get("kind", "single_use"), _int(f, "hours", 24), _int(f, "days", 7),
                                 _int(f, "uses_per_day", 1))
    assert caller.session is not None
    _shown_once[caller.session.csrf] = (time.monotonic() + T.SERVICE_STEP_UP_S, issued)
    return back("/owner/codes", "issued")  # POST-redirect-GET: a reload never issues a second code


@router.post("/owner/codes/{code_id}/revoke")
async def codes_revoke(request: Request, code_id: str, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    await form_of(request, caller)
    ctx_of(request).lock.revoke_code(caller.actor, code_id)
    return back("/owner/codes", "revoked")


@router.get("/owner/guests", response_class=HTMLResponse)
def guests_page(request: Request, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    """Guest codes: who, when (local), uses left; the code just issued is shown on this one view only."""
    assert caller.session is not None
    lock = ctx_of(request).lock
    held = _shown_once.pop("guest:" + caller.session.csrf, None)
    issued = held[1] if held else None
    today = datetime.now(lock.zone()).date().isoformat()
    return render(request, "guests.html", caller=caller, guests=lock.guests(), issued=issued, today=today,
                  share_qr=qr_data_uri(issued["share"]) if issued else "", zone=lock.zone().key,
                  digits=T.GUEST_CODE_DIGITS)


@router.post("/owner/guests", response_class=HTMLResponse)
async def guests_add(request: Request, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    f = await form_of(request, caller)
    confirm_owner(request, caller, f)  # a guest code opens the door: the owner confirms (as the API's step-up)
    lock = ctx_of(request).lock
    assert caller.session is not None
    try:
        uses = _int(f, "uses", 0) or None
        issued = lock.add_guest(caller.actor, f.get("name", ""), f.get("day", ""), f.get("start", ""),
                                f.get("end", ""), uses)
    except LimenError as exc:  # the form comes back as typed, with the reason
        kept = {k: f.get(k, "")[:64] for k in ("name", "day", "start", "end", "uses")}
        return render(request, "guests.html", 400, caller=caller, guests=lock.guests(), issued=None,
                      today=kept["day"], error=str(exc), form=kept, zone=lock.zone().key,
                      digits=T.GUEST_CODE_DIGITS)
    _shown_once["guest:" + caller.session.csrf] = (time.monotonic() + T.SERVICE_STEP_UP_S, issued)
    return back("/owner/guests", "guest")


@router.post("/owner/guests/{user_id}/revoke")
async def guests_revoke(request: Request, user_id: str, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    await form_of(request, caller)
    lock = ctx_of(request).lock
    if user_id not in {g["user_id"] for g in lock.guests()}:
        raise HTTPException(404, N_("no such guest"))
    lock.remove_user(caller.actor, user_id)
    return back("/owner/guests", "guest-revoked")


@router.get("/owner/audit", response_class=HTMLResponse)
def audit_page(request: Request, kind: str = "", outcome: str = "", actor: str = "", limit: int = 100,
               caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    ctx = ctx_of(request)
    if outcome not in ("", "accept", "reject"):
        raise BadRequest("outcome", "accept or reject")
    records = ctx.lock.audit(kind, outcome, actor[:64], limit)
    names = ctx.lock.names()
    tz = ctx.lock.zone()
    for r in records:  # the owner's time zone, said
        r["when"] = feed.local(datetime.fromisoformat(r["at"]), tz) if r.get("at") else ""
    return render(request, "audit.html", caller=caller, records=records, kinds=[k.value for k in EventKind],
                  kind=kind, outcome=outcome, actor=actor[:64], names=names, limit=limit)


@router.get("/owner/tokens", response_class=HTMLResponse)
def tokens_page(request: Request, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    ctx = ctx_of(request)
    return render(request, "tokens.html", caller=caller, tokens=ctx.accounts.tokens(caller.owner),
                  kiosks=ctx.accounts.kiosks())


@router.post("/owner/kiosks", response_class=HTMLResponse)
async def kiosk_pair(request: Request, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    f = await form_of(request, caller)
    confirm_owner(request, caller, f)  # a paired screen tries PINs and shows faces from wherever it is: a way in
    ctx = ctx_of(request)
    _, token = ctx.accounts.pair_kiosk(caller.owner, f.get("name", ""))
    link = f"{request.base_url}kiosk?pair={token}"
    return render(request, "tokens.html", caller=caller, tokens=ctx.accounts.tokens(caller.owner),
                  kiosks=ctx.accounts.kiosks(), pairing=link)


@router.post("/owner/kiosks/{kiosk_id}/revoke")
async def kiosk_unpair(request: Request, kiosk_id: str, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    await form_of(request, caller)
    ctx_of(request).accounts.unpair_kiosk(kiosk_id)
    return back("/owner/tokens", "kiosk-revoked")


@router.post("/owner/tokens", response_class=HTMLResponse, dependencies=[Depends(login_rate)])
async def tokens_issue(request: Request, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    form = await request.form()
    f = {k: v for k, v in form.items() if isinstance(v, str)}
    assert caller.session is not None
    check_csrf(caller.session, f.get("csrf"))
    confirm_owner(request, caller, f)
    ctx = ctx_of(request)
    try:
        scopes = {Scope(str(x)) for x in form.getlist("scopes")}
    except ValueError:
        raise BadRequest("scopes", "read, manage or unlock") from None
    days = _int(f, "days", ctx.settings.api_token_days)
    token_id, token = ctx.accounts.issue_token(caller.owner, f.get("name", ""), scopes, days)
    return render(request, "tokens.html", caller=caller, tokens=ctx.accounts.tokens(caller.owner),
                  issued={"id": token_id, "token": token})


@router.post("/owner/tokens/{token_id}/revoke")
async def tokens_revoke(request: Request, token_id: str, caller: Caller = Depends(page_caller)) -> Response:  # noqa: B008
    await form_of(request, caller)
    ctx = ctx_of(request)
    ctx.accounts.revoke_token(caller.owner, token_id)
    ctx.lock.revoke_issued_by(caller.actor, token_id)  # the PINs and codes it issued go with it
    return back("/owner/tokens", "token-revoked")
