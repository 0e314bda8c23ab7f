"""A reverse proxy on the lock with `trusted_proxies` empty (the default): every visitor reaches the service from
loopback, so `/kiosk` paired any visitor as the lock's own screen (review, reasoned).  A request that carries a
forwarded header the service did not believe is not the lock's own screen: refused, pointing to trusted_proxies."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import httpx
import pytest

from limen.config import Settings
from limen.service import close_app, create_app
from limen.service.auth import KIOSK_COOKIE

from .browser import live_server
from .conftest import PIN, Owner, do_setup, make_client

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PROXIED = [{"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9;proto=https"},
           {"X-Real-IP": "203.0.113.9"}]


@pytest.mark.parametrize("headers", PROXIED, ids=["x-forwarded-for", "forwarded", "x-real-ip"])
def test_a_visitor_through_an_untrusted_proxy_is_not_the_locks_screen(client: TestClient, owner: Owner,
                                                                      headers: dict[str, str]) -> None:
    with make_client(client.app) as visitor:  # the proxy's loopback address, as the service sees it
        r = visitor.get("/kiosk", headers=headers)
        assert r.status_code == 403 and "trusted_proxies" in r.text
        assert KIOSK_COOKIE not in visitor.cookies
        assert visitor.post("/api/kiosk/keypad", json={"entry": PIN}, headers=headers).status_code == 403


def test_the_locks_own_screen_and_paired_screens_still_open_the_kiosk(client: TestClient, owner: Owner) -> None:
    with make_client(client.app) as screen:  # no proxy in between: the lock's own screen, paired
        assert screen.get("/kiosk").status_code == 200 and KIOSK_COOKIE in screen.cookies
        assert screen.get("/kiosk", headers=PROXIED[0]).status_code == 200  # paired already: its cookie says so
        assert screen.post("/api/kiosk/keypad", json={"entry": PIN}).json()["opened"] is True


def test_a_trusted_proxy_that_resolved_to_loopback_pairs(settings: Settings) -> None:
    """With the proxy trusted, uvicorn replaces the peer by the X-Forwarded-For client: loopback is the lock."""
    app = create_app(settings.model_copy(update={"trusted_proxies": ["127.0.0.0/8"]}))
    try:
        with make_client(app) as c:
            do_setup(c)
        with make_client(app) as screen:
            r = screen.get("/kiosk", headers={"X-Forwarded-For": "127.0.0.1"})
            assert r.status_code == 200 and KIOSK_COOKIE in screen.cookies
            assert screen.get("/kiosk", headers={"Forwarded": "for=127.0.0.1"}).status_code == 200  # paired
        with make_client(app) as visitor:  # a header uvicorn does not read is never believed
            assert visitor.get("/kiosk", headers={"Forwarded": "for=127.0.0.1"}).status_code == 403
    finally:
        close_app(app)


@pytest.fixture(params=[[], ["127.0.0.1"]], ids=["no trusted proxy", "proxy trusted"])
def served(request: pytest.FixtureRequest, settings: Settings) -> Iterator[tuple[str, object]]:
    with live_server(settings.data_dir, trusted_proxies=request.param) as server:
        yield server.url, server.app


def test_on_a_real_server_a_proxied_visitor_is_never_paired(served: tuple[str, object]) -> None:
    url, app = served
    with TestClient(app, base_url=url) as owner_client:  # type: ignore[arg-type]  # the owner, in-process
        do_setup(owner_client)
    with httpx.Client(base_url=url) as visitor:  # what a local reverse proxy sends on for a remote visitor
        r = visitor.get("/kiosk", headers={"X-Forwarded-For": "203.0.113.9"})
        assert r.status_code in (200, 403) and "limen_kiosk" not in r.headers.get("set-cookie", "")
        assert visitor.post("/api/kiosk/keypad", json={"entry": PIN},
                            headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
