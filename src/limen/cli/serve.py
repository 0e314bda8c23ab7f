"""`limen serve`: the lock service (door kiosk, owner pages, REST API) on uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from limen.cli.common import STATE


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default: settings.host, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings.port, 8080).")] = None,
) -> None:
    """Start the lock service: open the printed address in a browser (/kiosk is the door screen)."""
    import uvicorn

    from limen.service import close_app, create_app

    settings = STATE.settings
    if host is not None or port is not None:
        settings = settings.model_copy(update={k: v for k, v in (("host", host), ("port", port)) if v is not None})
    app = create_app(settings)
    ctx = app.state.ctx
    base = f"http://{settings.host}:{settings.port}"
    typer.echo(f"Limen lock service on {base}  (door screen: {base}/kiosk, owner console: {base}/owner)")
    if ctx.setup_url():
        typer.echo("No owner account yet. Open this one-time setup link to create it (new at every start until used):")
        typer.echo(f"  {ctx.setup_url()}")
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", server_header=False)
    finally:
        close_app(app)
