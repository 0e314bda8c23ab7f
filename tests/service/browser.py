"""Helpers for the Playwright journeys: a live server on a free port and Debian's Chromium (skips without it)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from limen.config import Settings, load_settings
from limen.service import close_app, create_app

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@dataclass
class Server:
    url: str
    app: Any
    settings: Settings


def need_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium chromium-driver)")
    pytest.importorskip("playwright.sync_api")


@contextlib.contextmanager
def live_server(data_dir: Path, **overrides: Any) -> Iterator[Server]:
    import uvicorn

    from limen.cli.serve import uvicorn_config

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = load_settings(data_dir, port=port, **overrides)
    app = create_app(settings)
    srv = uvicorn.Server(uvicorn_config(app, settings))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    try:
        yield Server(f"http://127.0.0.1:{port}", app, settings)
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        close_app(app)


@contextlib.contextmanager
def chromium(playwright: Any, width: int = 1000, height: int = 900, offline: bool = False) -> Iterator[Any]:
    """A page in headless Chromium; `offline`: every request to anything but 127.0.0.1 is aborted."""
    b = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
    try:
        context = b.new_context(viewport={"width": width, "height": height})
        if offline:
            context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
                ("http://127.0.0.1", "data:")) else route.abort())
        yield context.new_page()
    finally:
        b.close()


def shot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
