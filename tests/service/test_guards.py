"""Host names, same-origin door requests, forwarded headers, OPTIONS/Allow and oversize bodies (issue 14, 4, 5, 9)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import httpx
import pytest

from limen import thresholds as T
from limen.config import Settings
from limen.service.guards import allowed_hosts

from .browser import live_server
from .conftest import BASE, PIN, Owner, do_setup, make_client

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def test_a_rebound_host_name_reaches_nothing(client: TestClient, owner: Owner) -> None:
    evil = {"Host": "evil.example"}
    r = client.post("/api/kiosk/keypad", json={"entry": PIN}, headers=evil)
    assert r.status_code == 400 and r.json()["error"] == "bad_host"
    assert client.get("/kiosk", headers=evil).status_code == 400  # nor can it pair itself as the lock's screen
    assert client.get("/api/lock", headers={"Host": "evil.example:8080"}).status_code == 400
    assert client.post("/api/kiosk/keypad", json={"entry": PIN}, headers={"Host": "localhost:8080"}).status_code == 200


def test_default_names_are_the_bind_address_and_loopback(settings: Settings) -> None:
    hosts = allowed_hosts(settings.model_copy(update={"host": "192.168.1.10", "port": 8443}))
    assert {"192.168.1.10", "192.168.1.10:8443", "127.0.0.1:8443", "localhost", "[::1]:8443"} <= hosts
    assert "127.0.0.1:9999" not in hosts and "evil.example" not in hosts
    own = allowed_hosts(settings.model_copy(update={"allowed_hosts": ["lock.home.arpa", "::1"]}))
    assert own == {"lock.home.arpa", f"lock.home.arpa:{settings.port}", "[::1]", f"[::1]:{settings.port}"}


def test_door_endpoints_need_the_screens_cookie_even_on_the_lock(client: TestClient, owner: Owner) -> None:
    with make_client(client.app) as local_process:  # loopback, but never opened /kiosk
        r = local_process.post("/api/kiosk/keypad", json={"entry": PIN})
        assert r.status_code == 403 and "not paired" in r.json()["reason"]
        assert local_process.get("/kiosk").status_code == 200  # the lock's own screen pairs itself
        assert local_process.post("/api/kiosk/keypad", json={"entry": PIN}).json()["opened"] is True
    with make_client(client.app, ("192.168.1.50", 40000)) as tablet:
        tablet.get("/kiosk")  # not the lock itself: no cookie for it
        assert tablet.post("/api/kiosk/keypad", json={"entry": PIN}).status_code == 403


def test_unpaired_local_browsers_do_not_grow_the_screens_table(client: TestClient, owner: Owner) -> None:
    # every GET /kiosk of a loopback browser without the cookie pairs a new "own screen"; those beyond the cap are
    # deleted, not only revoked (review: the table grew by a row per page load)
    for _ in range(T.SERVICE_MAX_LOCAL_SCREENS * 3):
        with make_client(client.app) as fresh:
            assert fresh.get("/kiosk").status_code == 200
    with make_client(client.app) as last:
        assert last.get("/kiosk").status_code == 200
        assert last.post("/api/kiosk/keypad", json={"entry": PIN}).json()["opened"] is True  # the newest still works
    kiosks = client.app.state.ctx.accounts.kiosks()  # type: ignore[attr-defined]
    assert len(kiosks) <= T.SERVICE_MAX_LOCAL_SCREENS


def test_door_endpoints_refuse_other_sites(client: TestClient, owner: Owner) -> None:
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                    {"Origin": "http://evil.example"}, {"Origin": "null"}):
        r = client.post("/api/kiosk/keypad", json={"entry": PIN}, headers=headers)
        assert r.status_code == 403, headers
        r = client.post("/api/lock/unlock", json={"pin": PIN}, headers={**owner.api(), **headers})
        assert r.status_code == 403, headers
    ok = client.post("/api/kiosk/keypad", json={"entry": PIN}, headers={"Sec-Fetch-Site": "same-origin",
                                                                        "Origin": BASE})
    assert ok.status_code == 200 and ok.json()["opened"] is True


def test_options_says_what_a_path_allows(client: TestClient, owner: Owner) -> None:
    r = client.options("/api/tokens")
    assert r.status_code == 204 and set(r.headers["allow"].split(", ")) == {"GET", "POST", "OPTIONS"}
    r = client.put("/api/tokens", json={}, headers=owner.api())
    assert r.status_code == 405 and "POST" in r.headers["allow"] and r.json()["error"] == "method_not_allowed"
    assert client.options("/api/nothing-here").status_code == 404
    assert client.options("/api/users/enrol").headers["allow"] == "OPTIONS, POST"  # not DELETE /users/{user_id}


def test_a_chunked_oversize_body_is_413(client: TestClient, owner: Owner) -> None:
    chunk = b"\0" * (1024 * 1024)

    def body() -> Iterator[bytes]:
        for _ in range(T.SERVICE_MAX_REQUEST_BYTES // len(chunk) + 2):
            yield chunk

    boundary = "x" * 16
    r = client.post("/api/users/enrol", content=body(),
                    headers={**owner.api(), "content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413 and r.json()["error"] == "too_large"


# ---------------------------------------------------------------------- forwarded headers, on a real uvicorn


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[str, object]]:
    with live_server(settings.data_dir) as server:
        yield server.url, server.app


def test_a_client_cannot_choose_its_rate_limit_bucket(served: tuple[str, object]) -> None:
    url, app = served
    with TestClient(app, base_url=url) as owner_client:  # type: ignore[arg-type]  # the owner, in-process
        do_setup(owner_client)
    with httpx.Client(base_url=url) as c:
        assert c.get("/kiosk").status_code == 200  # the lock's own screen, paired by its loopback address
        codes = [c.post("/api/kiosk/keypad", json={"entry": "000000"},
                        headers={"X-Forwarded-For": f"198.51.100.{i}", "X-Real-IP": f"198.51.100.{i}"}).status_code
                 for i in range(T.SERVICE_UNLOCK_BURST + 3)]
    assert 429 in codes  # one bucket: the real peer's, whatever the header claims


def test_a_remote_client_cannot_pass_as_the_lock_itself(served: tuple[str, object]) -> None:
    from limen.service.auth import LOOPBACK

    url, app = served
    seen: list[str] = []
    ctx = app.state.ctx  # type: ignore[attr-defined]
    original = ctx.unlock_limiter.allow

    def spy(client: str) -> float:
        seen.append(client)
        return float(original(client))

    ctx.unlock_limiter.allow = spy
    with httpx.Client(base_url=url) as c:
        c.get("/kiosk")
        c.post("/api/kiosk/keypad", json={"entry": "000000"}, headers={"X-Forwarded-For": "10.9.8.7"})
    assert seen == ["127.0.0.1"] and seen[0] in LOOPBACK
