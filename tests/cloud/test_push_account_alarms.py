"""The account's own alarms are pushed even once acknowledged (`notify.ACCOUNT_ALARMS`).

Review of e48cbd3: a session that adds its own alarm destination with the password (a thief's) raises
`alarm_destination_added` to the owner's browsers — and the same session, with no password, acknowledged it on
/alarms before the next push pass (up to 2 s later: an alarm raised by the API does not wake the notifier), so the
owner's phone was never told.  `password_changed`, `password_reset`, `authenticator_enrolled` and `backup_deleted`
went the same way."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from limen_cloud.api import create_app
from limen_cloud.db import sessions
from limen_cloud.models import Alarm
from limen_cloud.notify import AlarmNotifier, load_or_create_vapid, vapid_public_key

from .test_api import PASSWORD
from .test_pages import ORIGIN, csrf_of, log_in, own_lock, sign_up
from .test_push import CONTACT, LOCAL, Browser, PushService, push_service  # noqa: F401 - the fixture, by name


def test_an_acknowledged_account_alarm_still_reaches_the_owners_browser(
        engine: Engine, push_service: PushService, tmp_path: Path) -> None:  # noqa: F811
    vapid = load_or_create_vapid(tmp_path / "vapid.key")
    client = TestClient(create_app(engine, open_signup=True, webhook_allow=LOCAL, push_key=vapid_public_key(vapid)),
                        base_url=ORIGIN, follow_redirects=False)
    sign_up(client, "olga@example.org")
    log_in(client, "olga@example.org")
    own_lock(engine, client, "olga@example.org", "front-door", "Front door")
    csrf = csrf_of(client.get("/account").text)
    phone = Browser(push_service.url("/push/phone"))
    assert client.post("/account/push", json={**phone.subscription(), "password": PASSWORD},
                       headers={"X-CSRF-Token": csrf}).status_code == 201
    notifier = AlarmNotifier(engine, LOCAL, vapid=vapid, vapid_contact=CONTACT)
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
