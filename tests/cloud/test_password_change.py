"""An owner changes the account's password: `POST /api/owners/me/password {current, new, totp}` and /account's form.

Review finding: the cloud had no way to change a password — the one action that locks out whoever stole a session or
learned the password (`alarm_destination_added` told the owner to "log out everywhere else", but the password they
had stayed good).  Now the current password (and a fresh authenticator code once enrolled) is asked again, behind
the log-in rate limit; the new one follows sign-up's rules; every other session and API token of the account ends,
this one stays; the change is logged (no secret) and raises `password_changed` to the owner's destinations.  Every
refusal changes nothing."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx
import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from limen.service.ratelimit import RateLimiter
from limen_cloud.api import create_app
from limen_cloud.db import sessions
from limen_cloud.models import Alarm, Owner
from tests.service.browser import chromium, need_chromium

from .test_alert_step_up import claim, enrol
from .test_api import PASSWORD, frozen_login
from .test_pages import ORIGIN, csrf_of, log_in, sign_up
from .test_pages_browser import cloud  # noqa: F401 - the served cloud (uvicorn, SQLite), used by name below

EMAIL = "olga@example.org"
NEW = "a brand new passphrase"
URL = "/api/owners/me/password"
PASSWORD_CHANGED = "password_changed"  # the owner's alarm (limen_cloud.pages)


def client_for(engine: Engine) -> TestClient:
    """The cloud with a log-in limiter roomy enough for the log-ins and step-ups of one test (the rate limit has
    its own test below, on the real limits)."""
    app = create_app(engine, open_signup=True)
    app.state.limiter = RateLimiter(1000, 1000, 1000)
    return TestClient(app, base_url=ORIGIN, follow_redirects=False)


def token(client: TestClient, password: str = PASSWORD) -> dict[str, str] | None:
    """A fresh API token for the owner with `password`, or None when the log-in is refused."""
    answer = client.post("/api/sessions", json={"email": EMAIL, "password": password})
    return {"Authorization": f"Bearer {answer.json()['token']}"} if answer.status_code == 201 else None


def password_hash(engine: Engine) -> str:
    with sessions(engine)() as s:
        owner = s.scalar(select(Owner).where(Owner.email == EMAIL))
        assert owner is not None
        return owner.password_hash


def alarms(engine: Engine) -> list[str]:
    with sessions(engine)() as s:
        return [a.detail for a in s.scalars(select(Alarm).where(Alarm.rule == PASSWORD_CHANGED))]


def test_the_api_changes_the_password_and_ends_every_other_session(
        engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    client = client_for(engine)
    sign_up(client, EMAIL)
    mine, stolen = token(client), token(client)
    assert mine is not None and stolen is not None
    claim(engine, client, mine)
    log_in(client, EMAIL)  # a browser session of the account (the page's cookie): ended too
    assert client.get("/locks").status_code == 200
    with caplog.at_level(logging.WARNING, logger="limen_cloud.pages"):
        r = client.post(URL, json={"current": PASSWORD, "new": NEW}, headers=mine)
    assert r.status_code == 200, r.text
    assert r.json() == {"changed": True, "sessions_ended": 2}
    assert client.get("/api/locks", headers=mine).status_code == 200  # this session continues
    assert client.get("/api/locks", headers=stolen).status_code == 401
    assert client.get("/locks").status_code == 303  # the page's session ended: log in again
    assert token(client) is None  # the old password is refused
    assert token(client, NEW) is not None
    [detail] = alarms(engine)  # told to the owner's destinations, on the first lock
    assert "password was changed" in detail and PASSWORD not in detail and NEW not in detail
    assert "changed the account's password: 2 other session(s) ended" in caplog.text
    assert PASSWORD not in caplog.text and NEW not in caplog.text


def test_each_refusal_changes_nothing(engine: Engine) -> None:
    client = client_for(engine)
    sign_up(client, EMAIL)
    mine, stolen = token(client), token(client)
    assert mine is not None and stolen is not None
    claim(engine, client, mine)
    before = password_hash(engine)
    refusals = [
        ({"current": "not the password", "new": NEW}, 403, "wrong password"),
        ({"current": PASSWORD, "new": "too short"}, 422, "at least 12 characters"),  # sign-up's rule
        ({"current": PASSWORD, "new": "x" * 201}, 422, "at most 200 characters"),
        ({"current": PASSWORD, "new": PASSWORD}, 422, "the new password is the current one"),
        ({"current": "", "new": NEW}, 422, "current"),
        ({"new": NEW}, 422, "current"),
    ]
    for body, answer, reason in refusals:
        r = client.post(URL, json=body, headers=mine)
        assert r.status_code == answer and reason in r.text, (body, r.text)
    assert client.post(URL, json={"current": PASSWORD, "new": NEW}).status_code == 401  # no session at all
    assert password_hash(engine) == before
    assert client.get("/api/locks", headers=stolen).status_code == 200  # no session ended
    assert alarms(engine) == []

    totp = enrol(engine)  # from now on a fresh authenticator code too
    code = totp.now()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for body in ({"current": PASSWORD, "new": NEW}, {"current": PASSWORD, "new": NEW, "totp": wrong}):
        r = client.post(URL, json=body, headers=mine)
        assert r.status_code == 403 and "the password is unchanged" in r.json()["detail"], r.text
    assert client.post(URL, json={"current": "not the password", "new": NEW, "totp": code},
                       headers=mine).status_code == 403
    assert password_hash(engine) == before and alarms(engine) == []
    assert client.get("/api/locks", headers=stolen).status_code == 200
    r = client.post(URL, json={"current": PASSWORD, "new": NEW, "totp": code}, headers=mine)
    assert r.status_code == 200, r.text
    assert password_hash(engine) != before
    assert client.get("/api/locks", headers=stolen).status_code == 401
    # the code was taken by the change: it cannot change the password (back) again
    again = {"current": NEW, "new": PASSWORD + " again", "totp": code}
    assert client.post(URL, json=again, headers=mine).status_code == 403
    again["totp"] = totp.at(datetime.now(UTC) + timedelta(seconds=30))
    assert client.post(URL, json=again, headers=mine).status_code == 200


def test_wrong_current_passwords_are_rate_limited_with_log_in(engine: Engine) -> None:
    client = TestClient(frozen_login(create_app(engine, open_signup=True)))
    sign_up(client, EMAIL)
    mine = token(client)  # one log-in token spent
    assert mine is not None
    before = password_hash(engine)
    for _ in range(3):  # a weak new password guesses nothing: refused before the step-up, no token spent
        assert client.post(URL, json={"current": "a guess", "new": "short"}, headers=mine).status_code == 422
    codes = [client.post(URL, json={"current": f"guess {i}", "new": NEW}, headers=mine).status_code
             for i in range(10)]
    assert codes[:9] == [403] * 9 and codes[9] == 429, codes
    limited = client.post(URL, json={"current": PASSWORD, "new": NEW}, headers=mine)  # even the right one
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert client.post("/api/sessions", json={"email": EMAIL, "password": PASSWORD}).status_code == 429  # shared
    assert password_hash(engine) == before


def test_the_account_page_changes_the_password_with_its_csrf_token_and_same_origin(engine: Engine) -> None:
    client = client_for(engine)
    sign_up(client, EMAIL)
    stolen = token(client)
    assert stolen is not None
    log_in(client, EMAIL)
    page = client.get("/account").text
    assert 'action="/account/password"' in page and 'name="current"' in page and 'minlength="12"' in page
    assert 'name="totp"' not in page.split('action="/account/password"')[1].split("</form>")[0]
    csrf = csrf_of(page)
    before = password_hash(engine)
    good = {"csrf": csrf, "current": PASSWORD, "new": NEW}
    assert client.post("/account/password", data={**good, "csrf": "f" * 64}).status_code == 403
    for foreign in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        r = client.post("/account/password", data=good, headers=foreign)
        assert r.status_code == 403 and "cross-origin" in r.text
    for body, code, reason in (({**good, "current": "not the password"}, 403, "Wrong password"),
                               ({**good, "current": ""}, 403, "Wrong password"),
                               ({**good, "new": "too short"}, 422, "at least 12 characters"),
                               ({**good, "new": PASSWORD}, 422, "The new password is the current one")):
        r = client.post("/account/password", data=body)
        assert r.status_code == code and reason in r.text and "the password is unchanged" in r.text, r.text
    assert password_hash(engine) == before
    assert client.get("/api/locks", headers=stolen).status_code == 200

    done = client.post("/account/password", data=good)
    assert done.status_code == 303 and done.headers["location"] == "/account?done=password-changed"
    assert "every other session of this account ended" in client.get("/account?done=password-changed").text
    assert client.get("/api/locks", headers=stolen).status_code == 401
    assert token(client) is None and token(client, NEW) is not None


def test_the_account_page_asks_a_fresh_authenticator_code_once_enrolled(engine: Engine) -> None:
    client = client_for(engine)
    sign_up(client, EMAIL)
    totp: pyotp.TOTP = enrol(engine)
    log_in(client, EMAIL, totp.now())
    page = client.get("/account").text
    assert 'name="totp"' in page.split('action="/account/password"')[1].split("</form>")[0]
    before = password_hash(engine)
    good = {"csrf": csrf_of(page), "current": PASSWORD, "new": NEW}
    r = client.post("/account/password", data=good)  # no code (and the log-in's code is taken)
    assert r.status_code == 403 and "the password is unchanged" in r.text
    assert password_hash(engine) == before
    r = client.post("/account/password", data={**good, "totp": totp.at(datetime.now(UTC) + timedelta(seconds=30))})
    assert r.status_code == 303, r.text
    assert password_hash(engine) != before and client.get("/account").status_code == 200


def test_chromium_changes_the_password_on_the_account_page(request: pytest.FixtureRequest) -> None:
    """The form as a browser sends it (its Origin, the page's CSP): this browser stays, the other token ends."""
    need_chromium()
    from playwright.sync_api import sync_playwright

    url, engine = request.getfixturevalue("cloud")
    api = httpx.Client(base_url=url)
    assert api.post("/api/owners", json={"email": EMAIL, "password": PASSWORD}).status_code == 201
    stolen = api.post("/api/sessions", json={"email": EMAIL, "password": PASSWORD}).json()["token"]
    before = password_hash(engine)
    with sync_playwright() as p, chromium(p) as page:
        page.goto(f"{url}/login")
        page.fill("input[name=email]", EMAIL)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/locks")
        page.goto(f"{url}/account")
        form = "form[action='/account/password']"
        page.fill(f"{form} input[name=current]", "not the password")
        page.fill(f"{form} input[name=new]", NEW)
        page.click(f"{form} button")
        assert "the password is unchanged" in page.content()
        assert password_hash(engine) == before
        page.fill(f"{form} input[name=current]", PASSWORD)
        page.fill(f"{form} input[name=new]", NEW)
        page.click(f"{form} button")
        page.wait_for_url(lambda u: u.endswith("/account?done=password-changed"))
        page.goto(f"{url}/locks")
        assert page.url.endswith("/locks")  # this browser is still logged in
    assert password_hash(engine) != before
    assert api.get("/api/locks", headers={"Authorization": f"Bearer {stolen}"}).status_code == 401
    assert api.post("/api/sessions", json={"email": EMAIL, "password": NEW}).status_code == 201


