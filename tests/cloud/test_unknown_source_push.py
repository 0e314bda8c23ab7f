"""A command relayed from an address the account never used raises remote_unknown_source; the session that
relayed it (a thief's) acknowledging it at once does not keep it from the owner's phone (web push)."""
from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from limen_cloud.api import create_app
from limen_cloud.db import sessions
from limen_cloud.models import Alarm
from limen_cloud.notify import AlarmNotifier, load_or_create_vapid, vapid_public_key
from tests.cloud.test_api import PASSWORD
from tests.cloud.test_pages import ORIGIN, csrf_of, log_in, own_lock, sign_up
from tests.cloud.test_push import CONTACT, LOCAL, Browser, PushService, push_service  # noqa: F401

PAYLOAD = {"payload": '{"v":1,"body":"{}","sig":"AA=="}'}


def test_an_unknown_source_alarm_acknowledged_by_the_session_that_raised_it_is_still_pushed(
        engine: Engine, push_service: PushService, tmp_path: Path) -> None:  # noqa: F811
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
    notifier = AlarmNotifier(engine, LOCAL, vapid=vapid, vapid_contact=CONTACT)
    token = client.post("/api/sessions", json={"email": "olga@example.org", "password": PASSWORD}).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    thief = TestClient(app, client=("203.0.113.9", 40000))
    assert thief.post("/api/locks/front-door/commands", json=PAYLOAD, headers=auth).status_code == 202
    with sessions(engine)() as s:
        [told] = s.scalars(select(Alarm).where(Alarm.rule == "remote_unknown_source")).all()
    assert thief.post(f"/api/alarms/{told.id}/ack", headers=auth).status_code == 200
    notifier.deliver_push()
    kinds = [phone.decrypt(p["body"])["kind"] for p in push_service.to("/push/phone")]
    assert "remote_unknown_source" in kinds
