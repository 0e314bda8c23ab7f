"""The account's own alarms are pushed even once acknowledged (`notify.ACCOUNT_ALARMS`).

Review of e48cbd3: a session that adds its own alarm destination with the password (a thief's) raises
`alarm_destination_added` to the owner's browsers — and the same session, with no password, acknowledged it on
/alarms before the next push pass (up to 2 s later: an alarm raised by the API does not wake the notifier), so the
owner's phone was never told.  `password_changed`, `password_reset`, `authenticator_enrolled` and `backup_deleted`
went the same way.  So did `remote_unknown_source` (the session that relayed a command from a new address acknowledged
it) and a lock's own alarms such as `lock:duress` (a coercer has the owner acknowledge it in the app)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from limen_cloud.api import create_app
from limen_cloud.db import sessions
from limen_cloud.models import Alarm
from limen_cloud.notify import AlarmNotifier, load_or_create_vapid, vapid_public_key

from .test_api import PASSWORD
from .test_pages import ORIGIN, csrf_of, log_in, own_lock, sign_up
from .test_push import CONTACT, LOCAL, Browser, PushService, push_service  # noqa: F401 - the fixture, by name


@dataclass
class Subscribed:
    """Olga, with her lock and her phone's browser subscribed to web push."""

    app: FastAPI
    client: TestClient
    csrf: str
    phone: Browser
    notifier: AlarmNotifier

    def kinds(self, service: PushService) -> list[str]:
        return [self.phone.decrypt(p["body"])["kind"] for p in service.to("/push/phone")]

    def bearer(self) -> dict[str, str]:
        token = self.client.post("/api/sessions", json={"email": "olga@example.org", "password": PASSWORD}).json()
        return {"Authorization": f"Bearer {token['token']}"}


def subscribed(engine: Engine, push_service: PushService, tmp_path: Path) -> Subscribed:  # noqa: F811
    vapid = load_or_create_vapid(tmp_path / "vapid.key")
    app = create_app(engine, lambda lock, payload: None, open_signup=True, webhook_allow=LOCAL,
                     push_key=vapid_public_key(vapid))
    client = TestClient(app, base_url=ORIGIN, follow_redirects=False)
    sign_up(client, "olga@example.org")
    log_in(client, "olga@example.org")
    own_lock(engine, client, "olga@example.org", "front-door", "Front door")
    csrf = csrf_of(client.get("/account").text)
    phone = Browser(push_service.url("/push/phone"))
    assert client.post("/account/push", json={**phone.subscription(), "password": PASSWORD},
                       headers={"X-CSRF-Token": csrf}).status_code == 201
    return Subscribed(app, client, csrf, phone, AlarmNotifier(engine, LOCAL, vapid=vapid, vapid_contact=CONTACT))


def test_an_acknowledged_account_alarm_still_reaches_the_owners_browser(
        engine: Engine, push_service: PushService, tmp_path: Path) -> None:  # noqa: F811
    olga = subscribed(engine, push_service, tmp_path)
    client, csrf, phone, notifier = olga.client, olga.csrf, olga.phone, olga.notifier
    # the thief: its own webhook with the password, then the ack with the session alone
    assert client.post("/account/webhook", data={"csrf": csrf, "url": "http://127.0.0.1:9/hook",
                                                 "password": PASSWORD}).status_code == 200
    with sessions(engine)() as s:
        [told] = s.scalars(select(Alarm).where(Alarm.rule == "alarm_destination_added")).all()
    assert client.post(f"/alarms/{told.id}/ack", data={"csrf": csrf}).status_code == 303
    notifier.deliver_push()
    [pushed] = push_service.to("/push/phone")
    assert phone.decrypt(pushed["body"])["kind"] == "alarm_destination_added"
    with sessions(engine)() as s, s.begin():  # a lock's alarm acknowledged before the pass is not pushed, as before
        other = Alarm(lock_id="front-door", rule="door_forced", detail="d", raised_at=told.raised_at,
                      acknowledged_at=told.raised_at)
        s.add(other)
    notifier.deliver_push()
    assert len(push_service.to("/push/phone")) == 1


PAYLOAD = {"payload": '{"v":1,"body":"{}","sig":"AA=="}'}


def test_an_unknown_source_alarm_acknowledged_by_the_session_that_raised_it_is_still_pushed(
        engine: Engine, push_service: PushService, tmp_path: Path) -> None:  # noqa: F811
    olga = subscribed(engine, push_service, tmp_path)
    auth = olga.bearer()
    thief = TestClient(olga.app, client=("203.0.113.9", 40000))  # her token, from an address she never used
    assert thief.post("/api/locks/front-door/commands", json=PAYLOAD, headers=auth).status_code == 202
    with sessions(engine)() as s:
        [told] = s.scalars(select(Alarm).where(Alarm.rule == "remote_unknown_source")).all()
    assert thief.post(f"/api/alarms/{told.id}/ack", headers=auth).status_code == 200
    olga.notifier.deliver_push()
    assert "remote_unknown_source" in olga.kinds(push_service)


@pytest.mark.parametrize("ack", [False, True])
def test_a_lock_s_duress_alarm_is_pushed_even_if_acknowledged_first(
        ack: bool, engine: Engine, push_service: PushService, tmp_path: Path) -> None:  # noqa: F811
    olga = subscribed(engine, push_service, tmp_path)
    with sessions(engine)() as s, s.begin():
        duress = Alarm(lock_id="front-door", rule="lock:duress", detail="duress credential used",
                       raised_at=datetime.now(UTC).replace(tzinfo=None))
        s.add(duress)
        s.flush()
        alarm_id = duress.id
    if ack:  # the coerced owner, in the app
        assert olga.client.post(f"/api/alarms/{alarm_id}/ack", headers=olga.bearer()).status_code == 200
    olga.notifier.deliver_push()
    assert olga.kinds(push_service) == ["lock:duress"]
