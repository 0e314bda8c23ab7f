"""The FastAPI application: routes, error mapping, body-size limit, same-origin check, door ticker.

Errors never leak a traceback: `LimenError` subclasses map to statuses with
their one-line message (storage and vault failures to a generic 503), and
anything unexpected is logged on the server and answered with a generic 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from limen import errors as E
from limen import thresholds as T
from limen.bio.finger.template import FingerTemplate
from limen.bio.templates import Modality
from limen.capture import Capture, Frame
from limen.clock import Clock
from limen.config import Settings
from limen.door import LockActuator
from limen.pad import Purpose, assess
from limen.pad.minifasnet import MiniFasNetCue
from limen.runtime import Runtime, open_runtime
from limen.service import api, finger, i18n, openapi, pages, scratch
from limen.service.accounts import Accounts
from limen.service.auth import LoginRequired
from limen.service.bodylimit import BodyLimitMiddleware
from limen.service.context import HERE, ServiceContext
from limen.service.facework import FACE_WORK, FaceBusy
from limen.service.guards import HostGuard, MethodGuard, allowed_hosts
from limen.service.lockservice import LockService

log = logging.getLogger("limen.service")

_STATUS: tuple[tuple[type[E.LimenError], int, str], ...] = (
    (E.ConsentRequired, 400, "consent_required"),
    (E.BadImage, 400, "bad_image"),
    (E.BadRequest, 400, "bad_request"),
    (E.InputError, 400, "bad_request"),
    (E.NotFound, 404, "not_found"),
    (E.Conflict, 409, "conflict"),
    (E.LockdownActive, 423, "lockdown"),
)
_UNAVAILABLE = "the lock's storage is unavailable; the owner should check the device"
_MISCONFIGURED = "the lock is not configured correctly; the owner should check the service log"
_NO_ROOM = ("no room to decode the upload; the lock's scratch space in RAM (/dev/shm) is full: send fewer or "
            "smaller files, or the owner can give /dev/shm more room (docs/service.md)")
_TOO_LARGE = f"request larger than {T.SERVICE_MAX_REQUEST_BYTES // (1024 * 1024)} MB; send fewer or smaller files"
_NO_ROOM_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def _full(exc: BaseException) -> BaseException | None:
    """`exc`, or the error it was raised from, that says a file system or SQLite database is full (None: none)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.errno in _NO_ROOM_ERRNOS:
            return current
        if isinstance(current, sqlite3.OperationalError) and "full" in str(current):  # SQLITE_FULL
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def no_room(exc: BaseException) -> bool:
    """Whether `exc`, or an error it was raised from, is a full (or over-quota) file system or database."""
    return _full(exc) is not None


def full_in_scratch(exc: BaseException) -> bool:
    """Whether the full file system is the RAM scratch directory's (`service.scratch`): an OSError naming no
    file (Starlette spooling an upload into an unnamed temporary file) or one under the temporary directory,
    which `limen serve` points at it (`scratch.holds`).  A file named elsewhere (the data directory) or a full
    database is not."""
    full = _full(exc)
    if not isinstance(full, OSError):
        return False
    return not full.filename or scratch.holds(full.filename)


def create_app(settings: Settings, *, runtime: Runtime | None = None, door: LockActuator | None = None,
               clock: Clock | None = None, tick_s: float = 1.0) -> FastAPI:
    """The lock service over `settings.data_dir` (opens the runtime unless one is given).

    On first run (no owner account) a one-time setup token is made: read it
    with `app.state.ctx.setup_url()`.  Close with `app.state.ctx` via
    `close_app(app)` (the CLI does it on shutdown).
    """
    rt = runtime or open_runtime(settings, door=door, clock=clock)
    clock = rt.clock
    accounts = Accounts(rt.connection(), clock)
    ctx = ServiceContext(settings, rt, LockService(rt), accounts, clock)
    if not accounts.has_owner():
        ctx.setup_token = accounts.new_setup_token()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt.start_monitor()  # the configured tamper sources, polled while the service runs
        if not ctx.warm_started:  # once per service, even when the app is entered twice (tests)
            ctx.warm_started = True
            app.state.warm_thread = threading.Thread(target=_warm, args=(ctx,), name="limen-warm", daemon=True)
            app.state.warm_thread.start()
        task = asyncio.create_task(_ticker(ctx, tick_s))
        _start_alarm_delivery(ctx)
        try:
            yield
        finally:
            task.cancel()
            ctx.alarms.stop()

    app = FastAPI(title="Limen lock service", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Local API of a Limen door lock: kiosk, users, codes, lock, audit.")
    app.state.ctx = ctx
    app.include_router(api.router)
    app.include_router(pages.router)
    finger.install(app)  # the door screen's finger and the console's fingers (service/finger.py)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.mount("/docs-assets", StaticFiles(directory=pages.DOCS_ASSETS), name="docs-assets")  # /docs offline
    _install_error_handlers(app)
    app.add_middleware(SameOriginMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit=T.SERVICE_MAX_REQUEST_BYTES, reason=_TOO_LARGE)
    app.add_middleware(MethodGuard, routes=app.routes)
    app.add_middleware(HostGuard, hosts=allowed_hosts(settings))
    app.add_middleware(i18n.LanguageMiddleware)  # the request's language, for pages, errors and sentences
    app.openapi = lambda: openapi.document(app)  # type: ignore[method-assign]  # summaries, per-operation errors
    return app


def close_app(app: FastAPI) -> None:
    ctx: ServiceContext = app.state.ctx
    warm: threading.Thread | None = getattr(app.state, "warm_thread", None)
    if warm is not None:
        warm.join()  # its models' run must not outlive the service (nor meet the next one's, in tests)
    ctx.lock.close()
    ctx.accounts.conn.close()
    ctx.runtime.close()


def _start_alarm_delivery(ctx: ServiceContext) -> None:
    """Deliver queued alarms (webhooks, siren…) in the background while the service runs; the channels are
    limen.toml's and the console's (`service.alerting`), changed at run time from the Alarms page."""
    try:
        ctx.alarms.start()
    except Exception:  # noqa: BLE001 - alarms stay queued in the outbox; the door must keep working
        log.exception("alarm delivery did not start; alarms stay queued")


async def _ticker(ctx: ServiceContext, every_s: float) -> None:
    from starlette.concurrency import run_in_threadpool

    while True:
        await asyncio.sleep(every_s)
        try:
            await run_in_threadpool(ctx.lock.tick)
        except Exception:  # noqa: BLE001 - keep polling the door whatever happens
            log.exception("door poll failed")


# ---------------------------------------------------------------------- errors


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api") and "text/html" in request.headers.get("accept", "")


def error_response(request: Request, status: int, code: str, reason: str,
                   headers: dict[str, str] | None = None) -> Response:
    if _wants_html(request):
        ctx: ServiceContext = request.app.state.ctx
        return ctx.templates.TemplateResponse(request, "error.html", {"status": status, "reason": reason},
                                              status_code=status, headers=headers)
    return JSONResponse({"error": code, "reason": reason}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    async def limen_error(request: Request, exc: Exception) -> Response:
        for cls, status, code in _STATUS:
            if isinstance(exc, cls):
                return error_response(request, status, code, str(exc))
        if isinstance(exc, E.ConfigError):  # settings or a shipped model: not secret, say what to fix
            log.error("configuration error on %s: %s", request.url.path, exc)
            return error_response(request, 503, "misconfigured", _MISCONFIGURED)
        # storage, vault, audit: the message may name keys or files; the vault's is opaque anyway
        log.error("service error on %s: %s", request.url.path, type(exc).__name__)
        return error_response(request, 503, "unavailable", _UNAVAILABLE)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if no_room(exc):  # FastAPI answers any failure to parse a form 400, a full /dev/shm among them
            return await room_error(request, exc)
        codes = {401: "unauthorised", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                 413: "too_large", 429: "rate_limited"}
        reason = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and reason == "Not Found":
            reason = f"no such page or endpoint: {request.url.path}"
        return error_response(request, exc.status_code, codes.get(exc.status_code, "http_error"), reason,
                              dict(exc.headers or {}))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
        return error_response(request, 422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")

    async def face_busy(request: Request, exc: Exception) -> Response:  # more face requests than the lock takes
        return error_response(request, 503, "busy", str(exc), {"Retry-After": str(T.SERVICE_FACE_RETRY_AFTER_S)})

    async def login_required(request: Request, exc: Exception) -> Response:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    async def room_error(request: Request, exc: Exception) -> Response:
        if not (request.headers.get("content-type", "").startswith("multipart/") and full_in_scratch(exc)):
            # no upload, or the data's disk or database is full, not the RAM scratch space
            log.error("file system full on %s (%s)", request.url.path, type(exc).__name__)
            return error_response(request, 503, "unavailable", _UNAVAILABLE)
        log.warning("no room to decode an upload on %s (%s): /dev/shm is full", request.url.path,
                    type(exc).__name__)
        return error_response(request, 503, "no_room", _NO_ROOM)

    async def os_error(request: Request, exc: Exception) -> Response:
        if no_room(exc):
            return await room_error(request, exc)
        return await unexpected(request, exc)

    async def unexpected(request: Request, exc: Exception) -> Response:
        if no_room(exc):
            return await room_error(request, exc)
        log.exception("unexpected error on %s", request.url.path)
        return error_response(request, 500, "internal", "internal error; the owner can find it in the service log")

    app.add_exception_handler(E.LimenError, limen_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(FaceBusy, face_busy)
    app.add_exception_handler(OSError, os_error)  # ENOSPC/EDQUOT: 503 no room; any other: as unexpected
    app.add_exception_handler(sqlite3.OperationalError, os_error)  # "database or disk is full": 503 storage
    app.add_exception_handler(Exception, unexpected)


# ---------------------------------------------------------------------- middleware

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class SameOriginMiddleware:
    """Refuse state-changing requests whose `Origin` is another site (CSRF defence in depth)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            headers = dict(scope.get("headers") or [])
            origin = headers.get(b"origin", b"").decode("latin-1")
            host = headers.get(b"host", b"").decode("latin-1")
            if origin and origin.split("://", 1)[-1] != host:
                body = b'{"error":"forbidden","reason":"cross-site request refused"}'
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


_CSP = (b"default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; "
        b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class SecurityHeadersMiddleware:
    """No framing, no sniffing, no cross-site referrer, no caching of owner pages; a strict CSP (not on /docs)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"] in ("/docs", "/redoc")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                headers += [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"same-origin"), (b"cache-control", b"no-store")]
                if not docs:
                    headers.append((b"content-security-policy", _CSP))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


__all__ = ["HTMLResponse", "close_app", "create_app", "error_response"]


def _warm(ctx: ServiceContext) -> None:
    """Load the face models, PAD's models and the vault's index now, so the first unlock does not wait.

    The service answers while it warms: the slow part (reading the weights,
    building sessions, importing SciPy) runs without the service's lock, each
    model behind its own loading lock.  Only the single run of each model
    afterwards takes the door path's lock (dlib's detector is not thread-safe:
    a first unlock must not run it at the same moment), and only briefly."""
    rt = ctx.runtime
    _load_models(rt)
    with _WARM_RUNS, FACE_WORK.working(), ctx.lock.serialised():  # as a face request; the door path's lock
        _warm_models(rt)
    _warm_fingers(rt)  # outside the door path's lock: the index has its own, and a finger attempt waits on it


_WARM_RUNS = threading.Lock()  # two services in one process (tests) never run the shared models together


def _load_models(rt: Runtime) -> None:
    """Read every model into memory without running it (safe beside door-path calls: loading is locked per model)."""
    try:
        from limen.bio.face import models
        from limen.pad.pipeline import default_cues

        models.detector()
        models.shape_predictor()
        rt.engine.embedder  # noqa: B018 - chosen and self-checked once, under the embedder's own lock
        default_cues()
        MiniFasNetCue(rt.settings.models_dir).check()  # its networks load only when a face is seen
    except Exception as exc:  # warming only saves time: the same failure is reported by the first unlock
        log.warning("models not loaded at start (%s); they load at the first unlock", type(exc).__name__)


# A probe like any face's: a zero vector is equally near every projection direction, so the projection
# re-derives all 32,768 rows in float64 to settle its signs (a 64 MB transient peak at every start).
_WARM_PROBE = np.random.default_rng(0).standard_normal(128)
_WARM_FINGER = FingerTemplate(width=1, height=1, dpi=500, minutiae=())  # builds the index, matches nobody


def _warm_models(rt: Runtime) -> None:
    try:
        rt.engine.warm()
        assess(Capture(frames=(Frame(rgb=np.zeros((240, 320, 3), dtype=np.uint8)),)), purpose=Purpose.VERIFY,
               models_dir=rt.settings.models_dir)
        rt.store.search(Modality.FACE, _WARM_PROBE, top_k=1)
    except Exception as exc:  # warming only saves time: the same failure is reported by the first unlock
        log.warning("models not warmed at start (%s); they load at the first unlock", type(exc).__name__)


def _warm_fingers(rt: Runtime) -> None:
    """Build the door's 1:N finger index (`Runtime.finger_index`) now, not at the first finger attempt (seconds
    over 1,000 people): only when fingers are matched on the host, the vault is open and a finger is enrolled.
    A failure is logged by its type only (never what was unsealed) and leaves the build to the first attempt."""
    try:
        from limen import fingerprint
        from limen.bio.finger import matcher
        from limen.bio.finger.references import open_references
        from limen.vault.secrets import box_for

        if fingerprint.on_sensor(rt) or box_for(rt.conn) is None:
            return
        references = open_references(rt.conn, rt.settings.data_dir)
        if not references.enrolled():
            return
        rt.finger_index.search(references, matcher.prepare(_WARM_FINGER))  # builds; no minutiae, no hit
    except Exception as exc:  # warming only saves time: the first finger attempt builds the index instead
        log.warning("fingerprint index not built at start (%s); it is built at the first finger",
                    type(exc).__name__)
