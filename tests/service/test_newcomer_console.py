"""What a newcomer homeowner read wrong on the console (walkthrough): a schedule shown as "can open the door",
photos offered for enrolment, a test alarm "on its way" to no channel."""

from __future__ import annotations

from typing import Any

from .conftest import PASSWORD, Owner, csrf_of


def test_a_person_on_a_schedule_reads_by_schedule_not_can_open(client: Any, owner: Owner) -> None:
    client.post("/owner/users", data={"csrf": owner.csrf, "name": "Carla", "pin": "713502", "permission": "member",
                                      "password": PASSWORD})
    carla = next(u for u in client.get("/api/users").json() if u["name"] == "Carla")
    page = f"/owner/users/{carla['user_id']}"
    assert "can open the door" in client.get(page).text
    r = client.post(f"{page}/week-day", data={"csrf": owner.csrf, "days": ["tue"], "start": "09:00",
                                               "end": "12:00", "index": "1", "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert 'id="by-schedule">by schedule: tue 09:00–12:00' in r.text and "can open the door" not in r.text
    zh = client.get(page, headers={"Accept-Language": "zh-CN"}).text
    assert "按时间表： 周二 09:00–12:00" in zh


def test_enrolment_asks_for_a_video_or_a_burst_not_photos(client: Any, owner: Owner) -> None:
    page = client.get("/owner/enrol").text
    assert "a short video or a burst of frames (not separate photos)" in page and "Or from photos" not in page


def test_a_test_alarm_says_when_it_goes_nowhere(client: Any, owner: Owner) -> None:
    page = client.get("/owner/alarms")
    nowhere = client.post("/owner/alarms/test", data={"csrf": csrf_of(page.text)})
    assert "no alarm channel is set up" in nowhere.text and "on its way" not in nowhere.text
    client.app.state.ctx.alarms.add("olga", "json://127.0.0.1:9/limen")
    somewhere = client.post("/owner/alarms/test", data={"csrf": csrf_of(page.text)})
    assert "on its way to every configured channel" in somewhere.text


def test_the_console_says_where_backups_are_made(client: Any, owner: Owner) -> None:
    from datetime import UTC, datetime

    from limen.link.backup import Backups, RecipientKind, new_recovery_key

    assert '<a href="/owner/backups">' in client.get("/owner").text  # the menu, and a first-run step
    page = client.get("/owner/backups").text
    assert "No backup key yet" in page
    assert "limen link recovery-key --as Alice" in page and "limen link backup" in page
    ctx = client.app.state.ctx
    settings = ctx.settings
    _printed, public = new_recovery_key()
    Backups(ctx.runtime.conn, settings.device_id, settings.keys_dir, settings.data_dir / "backups").add_recipient(
        "recovery", RecipientKind.RECOVERY, public, owner.user_id, datetime.now(UTC))
    assert "Backups are on: encrypted to 1 key(s), 0 made so far." in client.get("/owner/backups").text
    assert "备份已开启" in client.get("/owner/backups", headers={"Accept-Language": "zh-CN"}).text
