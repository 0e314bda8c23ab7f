"""A cloud session can be ended before it expires: `DELETE /api/sessions` ends the bearer token that asks (or, with
`everywhere=true`, every session of the account), and "Log out everywhere else" on /account ends every other
one.  Before, only the page's own cookie could log out: a stolen session or API token acted for
CLOUD_SESSION_HOURS whatever the owner did (no password change, no revocation)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from .test_api import PASSWORD
from .test_pages import browser, csrf_of, log_in, sign_up

EMAIL = "olga@example.org"


def bearer(client: TestClient, email: str = EMAIL) -> dict[str, str]:
    token = client.post("/api/sessions", json={"email": email, "password": PASSWORD}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def test_an_api_token_ends_itself_or_every_session(engine: Engine) -> None:
    client = browser(engine)
    sign_up(client, EMAIL)
    sign_up(client, "other@example.org")
    first, second, theirs = bearer(client), bearer(client), bearer(client, "other@example.org")
    assert client.delete("/api/sessions", headers=first).status_code == 204
    assert client.get("/api/locks", headers=first).status_code == 401
    assert client.get("/api/locks", headers=second).status_code == 200  # only the token that asked
    log_in(client, EMAIL)
    assert client.get("/locks").status_code == 200
    assert client.delete("/api/sessions", params={"everywhere": "true"}, headers=second).status_code == 204
    assert client.get("/api/locks", headers=second).status_code == 401
    assert client.get("/locks").status_code == 303  # the page's session ended too
    assert client.get("/api/locks", headers=theirs).status_code == 200  # another account's are not touched


def test_log_out_everywhere_else_keeps_only_this_browser(engine: Engine) -> None:
    client = browser(engine)
    sign_up(client, EMAIL)
    sign_up(client, "other@example.org")
    stolen, theirs = bearer(client), bearer(client, "other@example.org")
    log_in(client, EMAIL)
    page = client.get("/account").text
    assert 'action="/account/sessions/end"' in page
    assert client.post("/account/sessions/end", data={"csrf": "f" * 64}).status_code == 403
    assert client.get("/api/locks", headers=stolen).status_code == 200  # a wrong CSRF token ended nothing
    ended = client.post("/account/sessions/end", data={"csrf": csrf_of(page)})
    assert ended.status_code == 303 and ended.headers["location"] == "/account?done=others-out"
    assert client.get("/api/locks", headers=stolen).status_code == 401
    assert client.get("/locks").status_code == 200
    assert client.get("/api/locks", headers=theirs).status_code == 200
