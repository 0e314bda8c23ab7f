"""service: `limen serve`, the lock's local web service (REST API, door kiosk, owner pages).

    from limen.service import create_app, close_app
    app = create_app(settings)          # opens the Runtime: the same door path as the CLI
    app.state.ctx.setup_url()           # first run only: the one-time owner setup link
    uvicorn.run(app, host=settings.host, port=settings.port)
    close_app(app)

Pages: `/kiosk` (door screen), `/setup?token=…` (first run), `/login`,
`/owner/...` (lock, users, enrolment, codes, audit, API tokens).  API under
`/api/...`, OpenAPI schema at `/openapi.json`, interactive docs at `/docs`.
"""

from typing import Any

__all__ = ["KioskResult", "LockService", "Upload", "close_app", "create_app"]

_HOME = {"close_app": "app", "create_app": "app", "KioskResult": "lockservice", "LockService": "lockservice",
         "Upload": "lockservice"}


def __getattr__(name: str) -> Any:
    """Import the web stack lazily: `limen.service.schema` is read by every `open_db`."""
    if name not in _HOME:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(f"limen.service.{_HOME[name]}"), name)
