"""A cloud session alone can neither silence the alarms nor send them to itself.

Review findings: `PUT /api/owners/me/alerts {"urls": []}` with only a session token answered 200 (silenced); then
adding an apprise channel, the community webhook or a web-push browser still needed only the session, so a session
stolen once kept receiving the owner's alarms — `lock:duress` among them, which tells a coercer the duress PIN was
used.  Now every change of a destination (add, change, remove) needs the password (and authenticator code once
enrolled) again; an added one raises `alarm_destination_added` to the destinations the account had; a removal is
logged and raises `alarm_destination_removed` (told to the removed one too: test_former_destinations)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from limen.audit.channels import channel_id
from limen_cloud.api import create_app
from limen_cloud.db import sessions
from limen_cloud.models import Alarm, Owner, PushSubscription
from limen_cloud.notify import AlarmNotifier, load_or_create_vapid, vapid_public_key
from tests.audit.conftest import Receiver

from .test_api import PASSWORD, connected, login
from .test_pages import ORIGIN, csrf_of, log_in, own_lock, sign_up
from .test_push import Browser

EMAIL = "olga@example.org"
FIRST, SECOND = "json://127.0.0.1:9/front", "json://127.0.0.1:9/back"  # allowed below; nothing is sent
HOOK = "https://watch.example.org/limen"
LOCAL = ("127.0.0.0/8",)
DESTINATION_ADDED = "alarm_destination_added"  # the owner's alarm (limen_cloud.pages)


def owner_row(engine: Engine) -> Owner:
    with sessions(engine)() as s:
        owner = s.scalar(select(Owner).where(Owner.email == EMAIL))
        assert owner is not None
        return owner


def channels(engine: Engine) -> list[str]:
    return list(json.loads(owner_row(engine).alert_urls or "[]"))


def told(engine: Engine) -> list[str]:
    """The details of the `alarm_destination_added` alarms raised so far."""
    with sessions(engine)() as s:
        return [a.detail for a in s.scalars(select(Alarm).where(Alarm.rule == DESTINATION_ADDED).order_by(Alarm.id))]


def claim(engine: Engine, client: TestClient, headers: dict[str, str], lock_id: str = "front-door") -> None:
    connected(engine, lock_id, "abc-def-123")
    assert client.post("/api/locks", json={"lock_id": lock_id, "name": "Front door", "claim_code": "abc-def-123"},
                       headers=headers).status_code == 201


def enrol(engine: Engine) -> pyotp.TOTP:
    with sessions(engine)() as s, s.begin():
        owner = s.scalar(select(Owner).where(Owner.email == EMAIL))
        assert owner is not None
        owner.totp_secret = secret = pyotp.random_base32()
    return pyotp.TOTP(secret)


def pages_client(engine: Engine, push_key: str | None = None) -> TestClient:
    app = create_app(engine, open_signup=True, webhook_allow=LOCAL, push_key=push_key)
    return TestClient(app, base_url=ORIGIN, follow_redirects=False)


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    a, b = Receiver(), Receiver()
    yield a, b
    a.close()
    b.close()


def test_adding_removing_or_replacing_an_alarm_channel_needs_the_password(engine: Engine) -> None:
    client = TestClient(create_app(engine, open_signup=True, webhook_allow=LOCAL))
    olga = login(client, EMAIL)
    url = "/api/owners/me/alerts"
    for stolen in ({"urls": [FIRST]}, {"urls": [FIRST], "password": "not the password"}):  # adding: not any more
        r = client.put(url, json=stolen, headers=olga)
        assert r.status_code == 403 and "password" in r.json()["detail"], r.text
    assert channels(engine) == []
    assert client.put(url, json={"urls": [FIRST], "password": PASSWORD}, headers=olga).status_code == 200
    assert client.put(url, json={"urls": [FIRST]}, headers=olga).status_code == 200  # no change: nothing asked
    assert client.put(url, json={"urls": [FIRST, SECOND]}, headers=olga).status_code == 403
    assert client.put(url, json={"urls": [FIRST, SECOND], "password": PASSWORD}, headers=olga).status_code == 200
    for silencing in ([], [SECOND], ["json://127.0.0.1:9/mallory"]):
        r = client.put(url, json={"urls": silencing}, headers=olga)
        assert r.status_code == 403 and "password" in r.json()["detail"], r.text
        r = client.put(url, json={"urls": silencing, "password": "not the password"}, headers=olga)
        assert r.status_code == 403
    assert channels(engine) == [FIRST, SECOND]
    assert client.put(url, json={"urls": [SECOND], "password": PASSWORD}, headers=olga).status_code == 200
    assert channels(engine) == [SECOND]


def test_with_an_authenticator_the_step_up_asks_a_fresh_code_too(engine: Engine) -> None:
    client = TestClient(create_app(engine, open_signup=True, webhook_allow=LOCAL))
    olga = login(client, EMAIL)
    totp = enrol(engine)
    on = {"urls": [FIRST], "password": PASSWORD}
    assert client.put("/api/owners/me/alerts", json=on, headers=olga).status_code == 403
    assert channels(engine) == []
    code = totp.now()
    assert client.put("/api/owners/me/alerts", json={**on, "totp": code}, headers=olga).status_code == 200
    off = {"urls": [], "password": PASSWORD, "totp": code}  # the same code again: taken
    assert client.put("/api/owners/me/alerts", json=off, headers=olga).status_code == 403
    assert channels(engine) == [FIRST]
    off["totp"] = totp.at(datetime.now(UTC) + timedelta(seconds=30))  # the next step
    assert client.put("/api/owners/me/alerts", json=off, headers=olga).status_code == 200
    assert channels(engine) == []


def test_an_added_channel_is_told_to_the_channels_the_account_had_and_a_removal_is_logged(
        engine: Engine, receivers: tuple[Receiver, Receiver], caplog: pytest.LogCaptureFixture) -> None:
    old_rx, new_rx = receivers
    client = TestClient(create_app(engine, open_signup=True, webhook_allow=LOCAL))
    olga = login(client, EMAIL)
    claim(engine, client, olga)
    old, new = f"json://127.0.0.1:{old_rx.port}/owner", f"json://127.0.0.1:{new_rx.port}/thief"
    step = {"password": PASSWORD}
    assert client.put("/api/owners/me/alerts", json={"urls": [old], **step}, headers=olga).status_code == 200
    assert told(engine) == []  # the first destination: nobody to tell (it is logged)
    with caplog.at_level(logging.WARNING, logger="limen_cloud.pages"):
        assert client.put("/api/owners/me/alerts", json={"urls": [old, new], **step}, headers=olga).status_code == 200
    [detail] = told(engine)
    assert channel_id(new) in detail and str(new_rx.port) not in detail  # its id, never the URL (tokens)
    assert "added an alarm destination" in caplog.text and new not in caplog.text

    notifier = AlarmNotifier(engine, LOCAL, coalesce_s=0)
    notifier.deliver_pending()
    notifier.stop()
    assert old_rx.wait_for(1)  # the owner's channel hears of it
    assert DESTINATION_ADDED in old_rx.received[0]["json"]["title"]

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="limen_cloud.pages"):
        assert client.put("/api/owners/me/alerts", json={"urls": [old], **step}, headers=olga).status_code == 200
    assert f"removed an alarm destination: apprise channel {channel_id(new)}" in caplog.text
    assert len(told(engine)) == 1  # a removal raises no alarm_destination_added …
    with sessions(engine)() as s:  # … but alarm_destination_removed, naming the channel by its id
        [removed] = s.scalars(select(Alarm).where(Alarm.rule == "alarm_destination_removed")).all()
    assert channel_id(new) in removed.detail and str(new_rx.port) not in removed.detail


def test_setting_changing_or_removing_the_community_webhook_needs_the_password(engine: Engine) -> None:
    client = pages_client(engine)
    sign_up(client, EMAIL)
    log_in(client, EMAIL)
    own_lock(engine, client, EMAIL, "front-door", "Front door")
    page = client.get("/account").text
    csrf = csrf_of(page)
    assert 'name="password"' in page  # asked for the first address too
    for stolen in ({"csrf": csrf, "url": HOOK}, {"csrf": csrf, "url": HOOK, "password": "not the password"}):
        r = client.post("/account/webhook", data=stolen)
        assert r.status_code == 403 and "the webhook is unchanged" in r.text
    assert owner_row(engine).webhook_url is None
    r = client.post("/account/webhook", data={"csrf": csrf, "url": HOOK, "password": PASSWORD})
    assert r.status_code == 200 and owner_row(engine).webhook_url == HOOK
    assert told(engine) == []  # the account had no destination before
    secret = owner_row(engine).webhook_secret
    for silencing in ("", "https://elsewhere.example.org/x", HOOK):  # the same address again: a new secret
        r = client.post("/account/webhook", data={"csrf": csrf, "url": silencing})
        assert r.status_code == 403 and "the webhook is unchanged" in r.text
        r = client.post("/account/webhook", data={"csrf": csrf, "url": silencing, "password": "not the password"})
        assert r.status_code == 403
    assert (owner_row(engine).webhook_url, owner_row(engine).webhook_secret) == (HOOK, secret)
    r = client.post("/account/webhook", data={"csrf": csrf, "url": "https://elsewhere.example.org/x",
                                              "password": PASSWORD})
    assert r.status_code == 200 and owner_row(engine).webhook_url == "https://elsewhere.example.org/x"
    [detail] = told(engine)  # the old webhook's account hears of the new address
    assert "community webhook to elsewhere.example.org" in detail
    r = client.post("/account/webhook", data={"csrf": csrf, "url": "", "password": PASSWORD})
    assert r.status_code == 303 and owner_row(engine).webhook_url is None
    assert len(told(engine)) == 1


def test_adding_a_push_browser_needs_the_password_on_the_api(engine: Engine, tmp_path: Path) -> None:
    key = vapid_public_key(load_or_create_vapid(tmp_path / "vapid.key"))
    client = TestClient(create_app(engine, open_signup=True, webhook_allow=LOCAL, push_key=key))
    olga = login(client, EMAIL)
    claim(engine, client, olga)
    assert client.put("/api/owners/me/alerts", json={"urls": [FIRST], "password": PASSWORD},
                      headers=olga).status_code == 200
    phone = Browser("http://127.0.0.1:9/push/phone").subscription()
    for stolen in (phone, {**phone, "password": "not the password"}):
        r = client.post("/api/owners/me/push", json=stolen, headers=olga)
        assert r.status_code == 403 and "password" in r.json()["detail"], r.text
    with sessions(engine)() as s:
        assert list(s.scalars(select(PushSubscription))) == []
    assert told(engine) == []
    added = client.post("/api/owners/me/push", json={**phone, "password": PASSWORD}, headers=olga)
    assert added.status_code == 201, added.text
    [detail] = told(engine)  # told to the apprise channel the account had
    assert "web push browser" in detail and "Olga's phone" in detail and "/push/phone" not in detail

    gone = f"/api/owners/me/push/{added.json()['id']}"
    assert client.delete(gone, headers=olga).status_code == 403
    assert client.request("DELETE", gone, json={"password": "not the password"}, headers=olga).status_code == 403
    with sessions(engine)() as s:
        assert len(list(s.scalars(select(PushSubscription)))) == 1
    assert client.request("DELETE", gone, json={"password": PASSWORD}, headers=olga).status_code == 204
    with sessions(engine)() as s:
        assert list(s.scalars(select(PushSubscription))) == []


def test_notify_this_browser_sends_the_password_and_code_typed_beside_it(engine: Engine, tmp_path: Path) -> None:
    key = vapid_public_key(load_or_create_vapid(tmp_path / "vapid.key"))
    client = pages_client(engine, key)
    sign_up(client, EMAIL)
    log_in(client, EMAIL)
    page = client.get("/account").text
    assert 'id="push-password"' in page and 'id="push-totp"' not in page
    script = client.get("/push.js").text
    assert "body.password = password.value" in script and "body.totp" in script
    csrf = csrf_of(page)
    phone = Browser("http://127.0.0.1:9/push/phone").subscription()
    for stolen in (phone, {**phone, "password": "not the password"}):
        r = client.post("/account/push", json=stolen, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 403 and r.json()["detail"] == "wrong password or authenticator code"
    with sessions(engine)() as s:
        assert list(s.scalars(select(PushSubscription))) == []

    totp = enrol(engine)
    assert 'id="push-totp"' in client.get("/account").text
    r = client.post("/account/push", json={**phone, "password": PASSWORD}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403
    r = client.post("/account/push", json={**phone, "password": PASSWORD, "totp": totp.now()},
                    headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    with sessions(engine)() as s:
        assert len(list(s.scalars(select(PushSubscription)))) == 1
