"""History and alarms people read: sentences with names in the lock's zone, filters, one incident per burst,
acknowledge, the no-channel warning, a test alarm, clearing a lockout, and an unlock that a reload never resends."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from limen import thresholds as T

from .conftest import PASSWORD, PIN, Owner, csrf_of

BOB_PIN = "604172"
WRONG = "951357"


def lines(html: str, list_id: str) -> list[str]:
    body = html.split(f'id="{list_id}"', 1)[1].split("</ul>", 1)[0]
    return [" ".join(re.sub(r"<[^>]+>", " ", "<li" + li).split()) for li in body.split("<li")[1:]]


def test_activity_reads_as_sentences_with_names_in_local_time(client: Any, owner: Owner) -> None:
    lock = client.app.state.ctx.lock
    rt = client.app.state.ctx.runtime
    rt.access().set_config(owner.user_id, datetime.now(UTC), timezone="Asia/Shanghai")
    bob = lock.add_user(owner.user_id, "Bob", BOB_PIN)
    assert client.post("/api/kiosk/keypad", json={"entry": BOB_PIN}).json()["opened"] is True
    for _ in range(3):
        assert client.post("/api/kiosk/keypad", json={"entry": WRONG}).json()["opened"] is False
    page = client.get("/owner/activity")
    feed = lines(page.text, "activity")
    assert feed[0].endswith("3 wrong codes at the door"), feed  # one line for the run, newest first
    assert feed[1].endswith("Bob opened with their PIN"), feed
    local = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai"))
    assert "CST" in feed[1] and f"{local:%H}:" in feed[1]  # the owner's zone, said
    assert bob not in page.text.split('id="activity"')[1]  # names, never ids, in the feed
    only_bob = lines(client.get("/owner/activity", params={"person": bob}).text, "activity")
    assert len(only_bob) == 1 and "Bob opened" in only_bob[0]
    refused = lines(client.get("/owner/activity", params={"outcome": "refused", "method": "pin"}).text, "activity")
    assert len(refused) == 1 and "wrong codes" in refused[0]
    assert client.get("/owner/activity", params={"method": "teleport"}).status_code == 400
    assert "Bob opened with their PIN" in client.get("/owner").text  # the dashboard's recent activity too


def test_one_burst_is_one_incident_acknowledged_once(client: Any, owner: Owner) -> None:
    for _ in range(T.WRONG_CODE_ENTRY_LIMIT):
        client.post("/api/kiosk/keypad", json={"entry": WRONG})
    raw = client.get("/api/alarms").json()
    assert len(raw) >= 2  # the trail keeps every rule's alarm …
    page = client.get("/owner/alarms")
    shown = lines(page.text, "alarms")
    assert len(shown) == 1, shown  # … the owner reads one incident
    assert re.match(r"warning\s+\d+ failed attempts in a row at the door", shown[0]), shown
    assert "consecutive_failures" not in shown[0]  # a sentence, not the rule id
    assert 'id="no-channel"' in page.text  # nobody is told: said plainly
    ids = re.findall(r'name="alarm" value="(\d+)"', page.text)
    r = client.post("/owner/alarms/ack", data={"csrf": csrf_of(page.text), "alarm": ids, "back": "alarms"})
    assert r.status_code == 200 and "Alarm acknowledged" in r.text and "acknowledged</span>" in r.text
    assert 'name="alarm"' not in r.text  # nothing left to acknowledge
    r = client.post("/owner/alarms/ack", data={"csrf": csrf_of(page.text), "alarm": ["999999"]})
    assert r.status_code == 404
    r = client.post("/owner/alarms/test", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 200 and lines(r.text, "alarms")[0].startswith("info")
    assert "Test alarm" in lines(r.text, "alarms")[0]


def test_lockout_shown_and_cleared_by_the_owner(client: Any, owner: Owner) -> None:
    for _ in range(T.WRONG_CODE_ENTRY_LIMIT):
        client.post("/api/kiosk/keypad", json={"entry": WRONG})
    assert client.post("/api/kiosk/keypad", json={"entry": PIN}).json()["opened"] is False  # locked out
    page = client.get("/owner")
    assert re.search(r'<div id="lockout-state">', page.text) and "Keypad locked out" in page.text
    for password in ("", "not the password"):  # a stolen console cookie alone lifts no lockout
        r = client.post("/owner/lockout/clear", data={"csrf": csrf_of(page.text), "password": password})
        assert r.status_code == 403
    assert client.post("/api/kiosk/keypad", json={"entry": PIN}).json()["opened"] is False  # still locked out
    r = client.post("/owner/lockout/clear", data={"csrf": csrf_of(page.text), "password": PASSWORD})
    assert r.status_code == 200 and "Lockout cleared" in r.text and '<div id="lockout-state" hidden>' in r.text
    assert client.post("/api/kiosk/keypad", json={"entry": PIN}).json()["opened"] is True
    changes = client.get("/api/audit", params={"kind": "config_change"}).json()
    assert any(x["reason"] == "lockout cleared" for x in changes)


def test_remote_unlock_is_post_redirect_get(client: Any, owner: Owner) -> None:
    r = client.post("/owner/unlock", data={"csrf": owner.csrf, "pin": PIN}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/owner?done=opened"
    r = client.post("/owner/unlock", data={"csrf": owner.csrf, "pin": "135790"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/owner?done=refused&why=")
    assert "Refused: " in client.get(r.headers["location"]).text
