"""A lock's own alarm (lock:duress) acknowledged in the app before the push pass is still pushed: a coercer can make
the owner acknowledge it there as well as on the lock, and the account's other browsers must hear of it."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from limen_cloud.api import create_app
from limen_cloud.db import sessions
from limen_cloud.models import Alarm
from limen_cloud.notify import AlarmNotifier, load_or_create_vapid, vapid_public_key
from tests.cloud.test_api import PASSWORD
from tests.cloud.test_pages import ORIGIN, csrf_of, log_in, own_lock, sign_up
from tests.cloud.test_push import CONTACT, LOCAL, Browser, PushService, push_service  # noqa: F401


@pytest.mark.parametrize("ack", [False, True])
def test_a_lock_s_duress_alarm_is_pushed_even_if_acknowledged_first(
        ack: bool, engine: Engine, push_service: PushService, tmp_path: Path) -> None:  # noqa: F811
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
    with sessions(engine)() as s:
        a = Alarm(lock_id="front-door", rule="lock:duress", detail="duress credential used",
                  raised_at=datetime.now(UTC).replace(tzinfo=None))
        s.add(a)
        s.commit()
        aid = a.id
    token = client.post("/api/sessions", json={"email": "olga@example.org", "password": PASSWORD}).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    if ack:
        assert client.post(f"/api/alarms/{aid}/ack", headers=auth).status_code == 200  # coerced owner, in the app
    notifier.deliver_push()
    kinds = [phone.decrypt(p["body"])["kind"] for p in push_service.to("/push/phone")]
    assert kinds == ["lock:duress"]
