"""Owner registration is closed by default: an invite (or the first start's setup token), spent once."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from limen import thresholds as T
from limen_cloud.api import create_app, new_invite, setup_token, utcnow
from limen_cloud.db import sessions
from limen_cloud.models import Invite, Owner

from .test_api import PASSWORD


def owners(engine: Engine) -> int:
    with sessions(engine)() as s:
        return int(s.scalar(select(func.count()).select_from(Owner)) or 0)


def invite(engine: Engine, hours_ago: float = 0) -> str:
    with sessions(engine)() as s, s.begin():
        return new_invite(s, utcnow() - timedelta(hours=hours_ago))


def test_sign_up_is_refused_without_an_invite(engine: Engine) -> None:
    client = TestClient(create_app(engine))
    for body in ({"email": "eve@example.org", "password": PASSWORD},
                 {"email": "eve@example.org", "password": PASSWORD, "invite": "made-up-token"}):
        answer = client.post("/api/owners", json=body)
        assert answer.status_code == 403 and "invite" in answer.json()["detail"]
    assert owners(engine) == 0


def test_an_invite_makes_one_account_and_is_spent(engine: Engine) -> None:
    client = TestClient(create_app(engine))
    token = invite(engine)
    assert client.post("/api/owners", json={"email": "olga@example.org", "password": PASSWORD,
                                            "invite": token}).status_code == 201
    assert client.post("/api/owners", json={"email": "eve@example.org", "password": PASSWORD,
                                            "invite": token}).status_code == 403
    assert owners(engine) == 1
    with sessions(engine)() as s:
        assert all(len(i.token_hash) == 64 and i.token_hash != token for i in s.scalars(select(Invite)))


def test_a_refused_sign_up_does_not_spend_the_invite(engine: Engine) -> None:
    client = TestClient(create_app(engine))
    first, second = invite(engine), invite(engine)
    assert client.post("/api/owners", json={"email": "olga@example.org", "password": PASSWORD,
                                            "invite": first}).status_code == 201
    assert client.post("/api/owners", json={"email": "OLGA@example.org", "password": PASSWORD,
                                            "invite": second}).status_code == 409  # rolled back with the account
    assert client.post("/api/owners", json={"email": "ivan@example.org", "password": PASSWORD,
                                            "invite": second}).status_code == 201


def test_an_expired_invite_is_refused(engine: Engine) -> None:
    client = TestClient(create_app(engine))
    old = invite(engine, hours_ago=T.CLOUD_INVITE_HOURS + 1)
    assert client.post("/api/owners", json={"email": "olga@example.org", "password": PASSWORD,
                                            "invite": old}).status_code == 403


def test_setup_token_only_while_no_owner_exists(engine: Engine) -> None:
    token = setup_token(engine)
    assert token is not None
    client = TestClient(create_app(engine))
    assert client.post("/api/owners", json={"email": "olga@example.org", "password": PASSWORD,
                                            "invite": token}).status_code == 201
    assert setup_token(engine) is None


def test_open_signup_needs_no_invite(engine: Engine) -> None:
    client = TestClient(create_app(engine, open_signup=True))
    assert client.post("/api/owners", json={"email": "olga@example.org", "password": PASSWORD}).status_code == 201


def test_the_sign_up_page_needs_the_invite_too(engine: Engine) -> None:
    client = TestClient(create_app(engine), base_url="https://testserver", follow_redirects=False)
    form = client.get("/signup")
    assert form.status_code == 200 and 'name="invite"' in form.text
    refused = client.post("/signup", data={"email": "eve@example.org", "password": PASSWORD, "invite": "guess"})
    assert refused.status_code == 403 and "invite" in refused.text
    short = client.post("/signup", data={"email": "eve@example.org", "password": "short", "invite": "x"})
    assert short.status_code == 422
    token = invite(engine)
    made = client.post("/signup", data={"email": "olga@example.org", "password": PASSWORD, "invite": token})
    assert made.status_code == 303 and made.headers["location"] == "/login?done=signed-up"
    again = client.post("/signup", data={"email": "ivan@example.org", "password": PASSWORD, "invite": token})
    assert again.status_code == 403 and owners(engine) == 1
    logged = client.post("/login", data={"email": "olga@example.org", "password": PASSWORD})
    assert logged.status_code == 303 and logged.headers["location"] == "/locks"


def test_the_sign_up_page_without_invite_only_when_open(engine: Engine) -> None:
    client = TestClient(create_app(engine, open_signup=True), base_url="https://testserver", follow_redirects=False)
    assert 'name="invite"' not in client.get("/signup").text
    assert client.post("/signup", data={"email": "olga@example.org", "password": PASSWORD}).status_code == 303
    taken = client.post("/signup", data={"email": "OLGA@example.org", "password": PASSWORD})
    assert taken.status_code == 409 and owners(engine) == 1
