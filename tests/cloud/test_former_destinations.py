"""A removed or replaced alarm destination hears of it (`notify.AlarmNotifier.deliver_former`).

Review (the thief has the owner's session, password and authenticator code, e.g. phished): the notifier reads the
account's destinations when it sends, so replacing the owner's only channel or webhook in one request told
`alarm_destination_added` to the thief's alone; and a removal was only logged, so removing every destination and
then adding one's own raised nothing the owner could hear (`password_changed` then went to the thief only).  Now the
account alarm raised for the change (`alarm_destination_added` for a replacement, `alarm_destination_removed`, raised
for every removal) is also sent to the destinations it removed, from a snapshot kept only until it was delivered."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect, select

from limen import thresholds as T
from limen.service.ratelimit import RateLimiter
from limen_cloud import db as cloud_db
from limen_cloud.api import create_app, utcnow
from limen_cloud.db import sessions, upgrade
from limen_cloud.models import Alarm, FormerDestination, Owner
from limen_cloud.notify import (
    ACCOUNT_ALARMS,
    AlarmNotifier,
    _Pending,
    compose,
    load_or_create_vapid,
    vapid_public_key,
    verify_webhook,
)
from tests.audit.conftest import Receiver

from .test_api import PASSWORD
from .test_pages import ORIGIN, csrf_of, log_in, own_lock, sign_up
from .test_push import CONTACT, Browser, PushService, push_service  # noqa: F401 - the fixture, by name

EMAIL = "olga@example.org"
LOCAL = ("127.0.0.0/8",)  # the receivers run on this machine: allow-listed as an operator would


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver, Receiver]]:
    rx = Receiver(), Receiver(), Receiver()
    yield rx
    for r in rx:
        r.close()


def account(engine: Engine, push_key: str | None = None) -> tuple[TestClient, dict[str, str], str]:
    """Olga's account with a lock, logged in on the pages (the client) and on the API (the headers); the CSRF."""
    app = create_app(engine, open_signup=True, webhook_allow=LOCAL, push_key=push_key)
    app.state.limiter = RateLimiter(1000, 1000, 1000)  # the log-ins and step-ups of one test (own test elsewhere)
    client = TestClient(app, base_url=ORIGIN, follow_redirects=False)
    sign_up(client, EMAIL)
    log_in(client, EMAIL)
    own_lock(engine, client, EMAIL, "front-door", "Front door")
    token = client.post("/api/sessions", json={"email": EMAIL, "password": PASSWORD}).json()["token"]
    return client, {"Authorization": f"Bearer {token}"}, csrf_of(client.get("/account").text)


def set_channels(client: TestClient, headers: dict[str, str], urls: list[str]) -> None:
    r = client.put("/api/owners/me/alerts", json={"urls": urls, "password": PASSWORD}, headers=headers)
    assert r.status_code == 200, r.text


def set_webhook(client: TestClient, csrf: str, url: str) -> None:
    r = client.post("/account/webhook", data={"csrf": csrf, "url": url, "password": PASSWORD})
    assert r.status_code in (200, 303), r.text


def webhook_secret(engine: Engine) -> str:
    with sessions(engine)() as s:
        owner = s.scalar(select(Owner).where(Owner.email == EMAIL))
        assert owner is not None and owner.webhook_secret is not None
        return owner.webhook_secret


def alarms(engine: Engine) -> list[tuple[int, str]]:
    with sessions(engine)() as s:
        return [(a.id, a.rule) for a in s.scalars(select(Alarm).order_by(Alarm.id))]


def formers(engine: Engine) -> list[FormerDestination]:
    with sessions(engine)() as s:
        return list(s.scalars(select(FormerDestination).order_by(FormerDestination.id)))


def signed_by(got: dict, secret: str) -> bool:  # type: ignore[type-arg]
    headers = {k.lower(): v for k, v in got["headers"].items()}
    return verify_webhook(secret, headers["x-limen-timestamp"], got["body"], headers["x-limen-signature"],
                          time.time())


def test_the_replaced_only_channel_hears_that_a_new_one_was_added(
        engine: Engine, receivers: tuple[Receiver, Receiver, Receiver], caplog: pytest.LogCaptureFixture) -> None:
    owners_rx, thief_rx, _ = receivers
    client, headers, _ = account(engine)
    owners, thiefs = f"json://127.0.0.1:{owners_rx.port}/tok-owner", f"json://127.0.0.1:{thief_rx.port}/tok-thief"
    set_channels(client, headers, [owners])
    with caplog.at_level(logging.DEBUG, logger="limen_cloud"):
        set_channels(client, headers, [thiefs])  # one request: the owner's only channel replaced
        [(alarm_id, rule)] = alarms(engine)
        assert rule == "alarm_destination_added"
        notifier = AlarmNotifier(engine, LOCAL, coalesce_s=0)
        assert notifier.deliver_pending() == 1 and thief_rx.wait_for(1)  # the current channel, as before
        assert notifier.deliver_former() == 1 and owners_rx.wait_for(1)  # and the replaced one
        assert notifier.deliver_former() == 0  # once
        notifier.stop()
    told = owners_rx.received[0]["json"]
    assert "alarm_destination_added" in told["title"] and told["title"].startswith("[CRITICAL]")
    assert f"alarm {alarm_id} " in told["message"] and "replacing apprise channel" in told["message"]
    assert len(owners_rx.received) == 1 and len(thief_rx.received) == 1
    [former] = formers(engine)
    assert former.alarm_id == alarm_id and former.sent_at is not None and former.attempts == 1
    assert former.target is None  # the snapshot (it held the URL's tokens) is gone once delivered
    assert "tok-owner" not in caplog.text and "tok-thief" not in caplog.text  # channel ids only


def test_removing_every_destination_is_told_to_each_of_them(
        engine: Engine, receivers: tuple[Receiver, Receiver, Receiver], push_service: PushService,  # noqa: F811
        tmp_path: Path) -> None:
    channel_rx, hook_rx, thief_rx = receivers
    vapid = load_or_create_vapid(tmp_path / "vapid.key")
    client, headers, csrf = account(engine, vapid_public_key(vapid))
    set_channels(client, headers, [f"json://127.0.0.1:{channel_rx.port}/owner"])
    set_webhook(client, csrf, f"http://127.0.0.1:{hook_rx.port}/hook")
    hook_secret = webhook_secret(engine)
    phone = Browser(push_service.url("/push/phone"))
    r = client.post("/api/owners/me/push", json={**phone.subscription(), "password": PASSWORD}, headers=headers)
    assert r.status_code == 201, r.text
    notifier = AlarmNotifier(engine, LOCAL, coalesce_s=0, vapid=vapid, vapid_contact=CONTACT)
    notifier.deliver_pending()
    notifier.deliver_webhooks()
    notifier.deliver_push()
    before = (len(channel_rx.received), len(hook_rx.received), len(push_service.to("/push/phone")))
    raised = len(alarms(engine))

    # the thief: every destination removed, one by one, then its own added
    set_channels(client, headers, [])
    set_webhook(client, csrf, "")
    r = client.request("DELETE", f"/api/owners/me/push/{r.json()['id']}", json={"password": PASSWORD},
                       headers=headers)
    assert r.status_code == 204
    set_channels(client, headers, [f"json://127.0.0.1:{thief_rx.port}/thief"])
    new = alarms(engine)[raised:]
    assert [rule for _, rule in new] == ["alarm_destination_removed"] * 3  # always raised; the add told no one
    assert notifier.deliver_former() == 3
    assert channel_rx.wait_for(before[0] + 1) and hook_rx.wait_for(before[1] + 1)
    assert channel_rx.received[-1]["json"]["title"].startswith("[CRITICAL]")
    assert "alarm_destination_removed" in channel_rx.received[-1]["json"]["title"]
    assert f"alarm {new[0][0]} " in channel_rx.received[-1]["json"]["message"]
    hooked = hook_rx.received[-1]
    assert hooked["json"]["rule"] == "alarm_destination_removed" and hooked["json"]["alarm_id"] == new[1][0]
    assert hooked["json"]["severity"] == "critical"
    assert signed_by(hooked, hook_secret)  # with the secret its receiver holds
    pushed = push_service.to("/push/phone")
    assert len(pushed) == before[2] + 1
    message = phone.decrypt(pushed[-1]["body"])
    assert message["kind"] == "alarm_destination_removed" and message["alarm_id"] == new[2][0]
    assert len(channel_rx.received) == before[0] + 1 and len(hook_rx.received) == before[1] + 1  # once each
    assert all(f.target is None and f.sent_at is not None for f in formers(engine))
    notifier.stop()


def test_a_replaced_webhook_hears_of_its_successor_signed_with_its_own_secret(
        engine: Engine, receivers: tuple[Receiver, Receiver, Receiver]) -> None:
    owners_rx, thief_rx, _ = receivers
    client, _, csrf = account(engine)
    set_webhook(client, csrf, f"http://127.0.0.1:{owners_rx.port}/hook")
    old_secret = webhook_secret(engine)
    set_webhook(client, csrf, f"http://127.0.0.1:{thief_rx.port}/hook")  # the owner's only destination
    new_secret = webhook_secret(engine)
    [(alarm_id, rule)] = alarms(engine)
    assert rule == "alarm_destination_added" and new_secret != old_secret
    notifier = AlarmNotifier(engine, LOCAL)
    assert notifier.deliver_webhooks() == 1 and thief_rx.wait_for(1)
    assert notifier.deliver_former() == 1 and owners_rx.wait_for(1)
    [got] = owners_rx.received
    assert got["json"]["alarm_id"] == alarm_id and got["json"]["rule"] == "alarm_destination_added"
    assert signed_by(got, old_secret) and not signed_by(got, new_secret)
    assert signed_by(thief_rx.received[0], new_secret)
    notifier.stop()


def test_a_former_destination_not_reached_is_retried_then_given_up(engine: Engine) -> None:
    client, _, csrf = account(engine)
    set_webhook(client, csrf, "http://127.0.0.1:9/hook")  # nothing listens there
    set_webhook(client, csrf, "")
    notifier = AlarmNotifier(engine, LOCAL)
    now = utcnow()
    assert notifier.deliver_former(now) == 0
    [former] = formers(engine)
    assert former.attempts == 1 and former.target is not None and former.error == "not reached"
    assert former.next_at == now + timedelta(seconds=T.CLOUD_WEBHOOK_BACKOFF_S)
    assert notifier.deliver_former(now) == 0 and formers(engine)[0].attempts == 1  # not due yet
    later = now
    for _ in range(T.CLOUD_WEBHOOK_MAX_ATTEMPTS - 1):
        later += timedelta(seconds=T.CLOUD_WEBHOOK_BACKOFF_MAX_S)
        notifier.deliver_former(later)
    [former] = formers(engine)
    assert former.attempts == T.CLOUD_WEBHOOK_MAX_ATTEMPTS and former.target is None  # given up: snapshot gone
    assert former.error is not None and former.error.startswith("gave up")
    assert notifier.deliver_former(later + timedelta(days=1)) == 0 and formers(engine)[0].attempts == former.attempts
    notifier.stop()


def test_the_accounts_own_alarms_are_critical() -> None:
    at = utcnow()
    for rule in ("alarm_destination_added", "alarm_destination_removed", "password_changed", "password_reset",
                 "authenticator_enrolled", "backup_deleted"):
        assert compose([_Pending(1, "front-door", "Front door", rule, "d", at)])[2] == "critical", rule
        assert rule in ACCOUNT_ALARMS  # pushed even once acknowledged
    assert compose([_Pending(1, "front-door", "Front door", "lock:door_forced", "d", at)])[2] == "warning"


def test_the_migration_goes_down_and_up(engine: Engine) -> None:
    client, _, csrf = account(engine)
    set_webhook(client, csrf, "http://127.0.0.1:9/hook")
    set_webhook(client, csrf, "")
    assert len(formers(engine)) == 1
    cfg = Config()
    cfg.set_main_option("script_location", str(cloud_db.__file__).replace("db.py", "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0012")
    with engine.connect() as conn:
        assert "former_destinations" not in inspect(conn).get_table_names()
    upgrade(engine)
    assert formers(engine) == []
    set_webhook(client, csrf, "http://127.0.0.1:9/hook")
    set_webhook(client, csrf, "")
    [former] = formers(engine)
    target = json.loads(former.target or "{}")
    assert former.kind == "webhook" and target["url"] == "http://127.0.0.1:9/hook"
    assert len(bytes.fromhex(target["secret"])) == 32  # the removed webhook's secret, kept until it is told
