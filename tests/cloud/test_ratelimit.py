"""Sign-up (API and page), log-in and claim are rate-limited per client address (an IPv6 client by its /64) and
for everyone together: 429 with Retry-After, an HTML page for the pages, nothing made past the limit."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from limen import thresholds as T
from limen.clock import FixedClock
from limen.service.ratelimit import RateLimiter
from limen_cloud.api import client_key, create_app
from limen_cloud.db import sessions
from limen_cloud.models import Owner

from .test_api import PASSWORD, frozen_login

ORIGIN = "https://testserver"


def owners(engine: Engine) -> int:
    with sessions(engine)() as s:
        return int(s.scalar(select(func.count()).select_from(Owner)) or 0)


def frozen(engine: Engine) -> tuple[FastAPI, FixedClock]:
    """The app with its sign-up buckets on a clock that only moves when told (Argon2id takes real time)."""
    app, clock = create_app(engine, open_signup=True), FixedClock(datetime(2026, 12, 1, tzinfo=UTC))
    app.state.signup_limiter = RateLimiter(T.CLOUD_SIGNUP_PER_MIN, T.CLOUD_SIGNUP_BURST,
                                           T.CLOUD_SIGNUP_GLOBAL_PER_MIN, clock=clock)
    return app, clock


def test_api_sign_up_is_limited_per_address_with_retry_after(engine: Engine) -> None:
    app, clock = frozen(engine)
    one = TestClient(app, client=("198.51.100.7", 40000))
    codes = [one.post("/api/owners", json={"email": f"o{i}@example.org", "password": PASSWORD}).status_code
             for i in range(T.CLOUD_SIGNUP_BURST + 3)]
    assert codes[:T.CLOUD_SIGNUP_BURST] == [201] * T.CLOUD_SIGNUP_BURST
    assert set(codes[T.CLOUD_SIGNUP_BURST:]) == {429}
    refused = one.post("/api/owners", json={"email": "late@example.org", "password": PASSWORD})
    assert refused.status_code == 429 and refused.json()["detail"].startswith("too many attempts")
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 60 / T.CLOUD_SIGNUP_PER_MIN + 1 and refused.json()["retry_after"] == wait
    assert owners(engine) == T.CLOUD_SIGNUP_BURST  # nothing made past the limit
    other = TestClient(app, client=("203.0.113.9", 40000))  # another address has its own bucket
    assert other.post("/api/owners", json={"email": "other@example.org", "password": PASSWORD}).status_code == 201
    clock.advance(wait)  # the bucket refills at CLOUD_SIGNUP_PER_MIN
    assert one.post("/api/owners", json={"email": "later@example.org", "password": PASSWORD}).status_code == 201


def test_sign_up_page_answers_429_as_a_page(engine: Engine) -> None:
    client = TestClient(frozen(engine)[0], base_url=ORIGIN, client=("198.51.100.8", 40000))
    codes = [client.post("/signup", data={"email": f"p{i}@example.org", "password": PASSWORD},
                         follow_redirects=False).status_code for i in range(T.CLOUD_SIGNUP_BURST + 1)]
    assert codes[:T.CLOUD_SIGNUP_BURST] == [303] * T.CLOUD_SIGNUP_BURST and codes[-1] == 429
    page = client.post("/signup", data={"email": "q@example.org", "password": PASSWORD})
    assert page.status_code == 429 and page.headers["content-type"].startswith("text/html")
    assert "Too many attempts" in page.text and f"{page.headers['Retry-After']} seconds" in page.text
    assert page.headers["cache-control"] == "no-store" and "default-src 'none'" in page.headers[
        "content-security-policy"]


def test_the_global_bucket_holds_across_addresses(engine: Engine) -> None:
    app, _ = frozen(engine)
    codes = []
    for i in range(20):  # each address tries once: only the global bucket can refuse
        client = TestClient(app, client=(f"192.0.2.{i + 1}", 40000))
        codes.append(client.post("/api/owners", json={"email": f"g{i}@example.org", "password": PASSWORD})
                     .status_code)
    global_burst = max(T.CLOUD_SIGNUP_BURST, T.CLOUD_SIGNUP_GLOBAL_PER_MIN / 6)
    assert codes.count(201) == int(global_burst) and codes[int(global_burst):] == [429] * (20 - int(global_burst))


def test_an_ipv6_client_is_one_bucket_per_64(engine: Engine) -> None:
    app = frozen_login(create_app(engine, open_signup=True))
    codes = [TestClient(app, client=(f"2001:db8:1:2::{i + 1:x}", 40000)).post(
        "/api/sessions", json={"email": "nobody@example.org", "password": "wrong password!"}).status_code
        for i in range(T.CLOUD_LOGIN_BURST + 1)]  # a new address in the same /64 each time
    assert codes[:T.CLOUD_LOGIN_BURST] == [401] * T.CLOUD_LOGIN_BURST and codes[-1] == 429
    elsewhere = TestClient(app, client=("2001:db8:1:3::1", 40000))  # the next /64 is another subscriber
    assert elsewhere.post("/api/sessions", json={"email": "nobody@example.org", "password": "wrong password!"}
                          ).status_code == 401


def test_log_in_page_is_limited_too(engine: Engine) -> None:
    client = TestClient(frozen_login(create_app(engine, open_signup=True)), base_url=ORIGIN, client=("198.51.100.9", 1))
    codes = [client.post("/login", data={"email": "nobody@example.org", "password": "wrong password!"}).status_code
             for _ in range(T.CLOUD_LOGIN_BURST + 1)]
    assert codes[:T.CLOUD_LOGIN_BURST] == [401] * T.CLOUD_LOGIN_BURST and codes[-1] == 429


def test_client_keys() -> None:
    from starlette.requests import Request

    def key(host: str) -> str:
        return client_key(Request({"type": "http", "client": (host, 1), "headers": []}))

    assert key("198.51.100.7") == "198.51.100.7" and key("::ffff:198.51.100.7") == "198.51.100.7"
    assert key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert key("fe80::1%eth0") == "fe80::/64" and key("testclient") == "testclient"
