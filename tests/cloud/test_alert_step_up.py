"""A cloud session alone cannot silence the alarms (review finding: `PUT /api/owners/me/alerts {"urls": []}` with
only a session token answered 200): removing or replacing an alarm channel, or changing or removing the community
webhook, needs the password (and authenticator code once enrolled) again.  Adding a channel does not."""

from __future__ import annotations

import json
from pathlib import Path

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from limen_cloud.api import create_app
from limen_cloud.db import sessions
from limen_cloud.models import Owner, PushSubscription
from limen_cloud.notify import load_or_create_vapid, vapid_public_key

from .test_api import PASSWORD, login
from .test_pages import browser, csrf_of, log_in, sign_up
from .test_push import Browser

EMAIL = "olga@example.org"
FIRST, SECOND = "json://127.0.0.1:9/front", "json://127.0.0.1:9/back"  # allowed below; nothing is sent
HOOK = "https://watch.example.org/limen"


def owner_row(engine: Engine) -> Owner:
    with sessions(engine)() as s:
        owner = s.scalar(select(Owner).where(Owner.email == EMAIL))
        assert owner is not None
        return owner


def channels(engine: Engine) -> list[str]:
    return list(json.loads(owner_row(engine).alert_urls or "[]"))


def test_removing_or_replacing_an_alarm_channel_needs_the_password(engine: Engine) -> None:
    client = TestClient(create_app(engine, open_signup=True, webhook_allow=("127.0.0.0/8",)))
    olga = login(client, EMAIL)
    url = "/api/owners/me/alerts"
    assert client.put(url, json={"urls": [FIRST]}, headers=olga).status_code == 200  # adding: the session will do
    assert client.put(url, json={"urls": [FIRST, SECOND]}, headers=olga).status_code == 200
    for silencing in ([], [SECOND], ["json://127.0.0.1:9/mallory"]):
        r = client.put(url, json={"urls": silencing}, headers=olga)
        assert r.status_code == 403 and "password" in r.json()["detail"], r.text
        r = client.put(url, json={"urls": silencing, "password": "not the password"}, headers=olga)
        assert r.status_code == 403
    assert channels(engine) == [FIRST, SECOND]
    assert client.put(url, json={"urls": [SECOND], "password": PASSWORD}, headers=olga).status_code == 200
    assert channels(engine) == [SECOND]


def test_with_an_authenticator_the_step_up_asks_its_code_too(engine: Engine) -> None:
    client = TestClient(create_app(engine, open_signup=True, webhook_allow=("127.0.0.0/8",)))
    olga = login(client, EMAIL)
    assert client.put("/api/owners/me/alerts", json={"urls": [FIRST]}, headers=olga).status_code == 200
    with sessions(engine)() as s, s.begin():
        owner = s.scalar(select(Owner).where(Owner.email == EMAIL))
        assert owner is not None
        owner.totp_secret = secret = pyotp.random_base32()
    off = {"urls": [], "password": PASSWORD}
    assert client.put("/api/owners/me/alerts", json=off, headers=olga).status_code == 403
    assert channels(engine) == [FIRST]
    off["totp"] = pyotp.TOTP(secret).now()
    assert client.put("/api/owners/me/alerts", json=off, headers=olga).status_code == 200
    assert channels(engine) == []


def test_changing_or_removing_the_community_webhook_needs_the_password(engine: Engine) -> None:
    client = browser(engine)
    sign_up(client, EMAIL)
    log_in(client, EMAIL)
    csrf = csrf_of(client.get("/account").text)
    assert 'name="password"' not in client.get("/account").text  # nothing to silence yet
    assert client.post("/account/webhook", data={"csrf": csrf, "url": HOOK}).status_code == 200
    assert 'name="password"' in client.get("/account").text
    secret = owner_row(engine).webhook_secret
    for silencing in ("", "https://elsewhere.example.org/x", HOOK):  # the same address again: a new secret
        r = client.post("/account/webhook", data={"csrf": csrf, "url": silencing})
        assert r.status_code == 403 and "the webhook is unchanged" in r.text
        r = client.post("/account/webhook", data={"csrf": csrf, "url": silencing, "password": "not the password"})
        assert r.status_code == 403
    assert (owner_row(engine).webhook_url, owner_row(engine).webhook_secret) == (HOOK, secret)
    r = client.post("/account/webhook", data={"csrf": csrf, "url": "", "password": PASSWORD})
    assert r.status_code == 303 and owner_row(engine).webhook_url is None


def test_removing_a_push_subscription_needs_the_password(engine: Engine, tmp_path: Path) -> None:
    key = vapid_public_key(load_or_create_vapid(tmp_path / "vapid.key"))
    client = TestClient(create_app(engine, open_signup=True, webhook_allow=("127.0.0.0/8",), push_key=key))
    olga = login(client, EMAIL)
    added = client.post("/api/owners/me/push", json=Browser("http://127.0.0.1:9/push/phone").subscription(),
                        headers=olga)
    assert added.status_code == 201, added.text
    gone = f"/api/owners/me/push/{added.json()['id']}"
    assert client.delete(gone, headers=olga).status_code == 403
    assert client.request("DELETE", gone, json={"password": "not the password"}, headers=olga).status_code == 403
    with sessions(engine)() as s:
        assert len(list(s.scalars(select(PushSubscription)))) == 1
    assert client.request("DELETE", gone, json={"password": PASSWORD}, headers=olga).status_code == 204
    with sessions(engine)() as s:
        assert list(s.scalars(select(PushSubscription))) == []
