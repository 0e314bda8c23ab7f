"""`limen serve`: the lock service (door kiosk, owner pages, REST API) on uvicorn."""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import uvicorn

from limen import trace
from limen.cli.common import STATE, error_text
from limen.cli.common import gettext as _
from limen.config import Settings

if TYPE_CHECKING:
    from limen.link.loop import LinkLoop
    from limen.service.context import ServiceContext


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default: settings.host, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings.port, 8080).")] = None,
    simulate_sensors: Annotated[bool, typer.Option(
        "--simulate-sensors", help="Use a simulated R30x fingerprint module on a pseudo-terminal (its real serial "
        "protocol, paired at start) as the lock's sensor; the door screen's finger page lays images on it.")] = False,
    link: Annotated[bool, typer.Option(
        "--link/--no-link", help="With link_broker set, run the cloud link inside the service (its door and lock; with "
        "homeassistant = true also Home Assistant's discovery); don't also run `limen link run`.")] = True,
    trace_file: Annotated[Path | None, typer.Option(
        "--trace", metavar="FILE", help="Append each attempt's stage times (ms; no person, outcome or score) to "
        "FILE as JSON lines.")] = None,
) -> None:
    """Start the lock service: open the printed address in a browser (/kiosk is the door screen)."""
    limit_malloc_arenas()
    if trace_file is not None:
        try:
            trace.set_sink(trace.TimingsFile(trace_file))
        except OSError as exc:
            raise typer.BadParameter(f"cannot append to {trace_file}: {exc.strerror}", param_hint="--trace") from exc
    from limen.service import close_app, create_app
    from limen.service.scratch import release, use_for_uploads

    use_for_uploads()  # uploads being decoded (face video) stay in RAM, never on the lock's storage

    settings = STATE.settings
    if host is not None or port is not None:
        settings = settings.model_copy(update={k: v for k, v in (("host", host), ("port", port)) if v is not None})
    try:
        app = create_app(settings)
    except BaseException:
        release()
        raise
    ctx = app.state.ctx
    base = f"http://{settings.host}:{settings.port}"
    typer.echo(_("Limen lock service on {base}  (door screen: {base}/kiosk, owner console: {base}/owner)").format(
        base=base))
    if simulate_sensors:
        try:
            simulator = app.state.fingers.simulate()
        except BaseException:  # e.g. refused on a lock paired with a real module: close what create_app opened
            close_app(app)
            trace.set_sink(trace.NullSink()).close()
            release()
            raise
        typer.echo(_("SIMULATED fingerprint sensor (R30x protocol) on {port}: lay fingerprint images on it from "
                     "{base}/kiosk/finger").format(port=simulator.port, base=base))
    if settings.allow_face_alone_rgb:
        from limen.cli.status import FACE_ALONE_WARNING

        typer.echo(_(FACE_ALONE_WARNING))
    _report_face_models(settings)
    _report_tamper_sources(settings)
    if settings.host in ("0.0.0.0", "::") and not settings.allowed_hosts:  # noqa: S104 - comparing, not binding
        typer.echo(_("Other machines reach it by a name or address of this lock: list it under allowed_hosts in "
                     "limen.toml (requests naming any other host are refused: DNS rebinding)."))
    if ctx.setup_url():
        typer.echo(_("No owner account yet. Open this one-time setup link to create it (new at every start until "
                     "used):"))
        typer.echo(f"  {ctx.setup_url()}")
    loop = _start_link(ctx) if link and settings.link_broker else None
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _leave_on_sigterm)  # uvicorn raises SIGTERM again once it has shut down
    try:
        uvicorn.Server(uvicorn_config(app, settings)).run()
    finally:
        if loop is not None:
            loop.stop()
        close_app(app)
        app.state.fingers.close()  # the simulated sensor, if any
        trace.set_sink(trace.NullSink()).close()
        release()  # the private RAM directory of uploads: one left behind per start otherwise


def _leave_on_sigterm(signum: int, frame: Any) -> None:
    """SIGTERM (systemd's stop): uvicorn shuts down gracefully, puts the previous handler back and raises the signal
    again; with the default action the process died there, skipping the `finally` that closes the runtime and
    removes the RAM upload directory.  This handler leaves through it instead (exit status 0: a clean stop)."""
    raise SystemExit(0)


def _start_link(ctx: ServiceContext) -> LinkLoop | None:
    """The cloud link on a thread of this service, sharing its runtime, door and lock (`limen.link.loop`).

    A link that cannot start (no certificate installed, a bad `link_broker`) is reported and left off: the lock
    keeps working locally."""
    from limen.errors import LimenError
    from limen.link.loop import LinkLoop

    try:
        loop = LinkLoop(ctx.runtime, ctx.lock.serialised()).start()
    except LimenError as exc:
        typer.echo(_("error: cloud link not started: {error} (see limen link csr / install-cert)").format(
            error=error_text(str(exc))), err=True)
        return None
    typer.echo(_("Cloud link to {broker} as {device} (inside this service)").format(
        broker=ctx.settings.link_broker, device=ctx.settings.device_id))
    if loop.homeassistant is not None:
        typer.echo(_("Home Assistant discovery on {broker} (homeassistant = true)").format(
            broker=ctx.settings.link_broker))
    return loop


M_ARENA_MAX = -8  # glibc's mallopt parameter
MALLOC_ARENAS = 2


def limit_malloc_arenas() -> bool:
    """At most `MALLOC_ARENAS` glibc malloc arenas for the service (as `MALLOC_ARENA_MAX=2`); True when set.

    glibc gives threads that allocate at once their own arena (up to 8 per
    core), each keeping its freed memory: the request and Argon2 threads of a
    busy service then hold tens of MB more than they use.  Called before the
    service starts its threads; a no-op away from glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False


def _report_face_models(settings: Settings) -> None:
    """Say at start whether PAD's deep cue can judge: without it every face is refused (fail closed)."""
    from limen.errors import ConfigError
    from limen.pad.minifasnet import MiniFasNetCue

    try:
        ready = MiniFasNetCue(settings.models_dir).check()
    except ConfigError as exc:
        typer.echo(_("error: face PAD model: {error}. Faces are refused until it is imported again "
                     "(limen models import PATH); PINs and codes still work.").format(error=error_text(str(exc))),
                   err=True)
        return
    if not ready:
        typer.echo(_("Face PAD model not imported (limen models import PATH, see README): every face is refused "
                     "as insufficient evidence; PINs and codes work."))


def _report_tamper_sources(settings: Settings) -> None:
    """Say at start when nothing is watched for tampering (any of tamper_sources, tamper_supply or tamper_watchdog
    counts)."""
    from limen.cli.status import NO_TAMPER_SOURCES, tamper_source_names

    if not tamper_source_names(settings):
        text = _(NO_TAMPER_SOURCES)
        typer.echo(_("{text} (e.g. tamper_sources = [\"case:17\"]).").format(text=text[:1].upper() + text[1:]))


def uvicorn_config(app: Any, settings: Settings) -> uvicorn.Config:
    """How the service is served: forwarded headers are believed only from `settings.trusted_proxies` (none by
    default), so a client can neither pick its rate-limit bucket nor pass as the lock's own address."""
    proxies = [p.strip() for p in settings.trusted_proxies if p.strip()]
    return uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning", server_header=False,
                          proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None)
