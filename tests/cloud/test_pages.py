"""The owner's web pages: log in (Argon2id + TOTP), locks with their state, history across locks, alarms + ack."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from limen_cloud.api import create_app, utcnow
from limen_cloud.db import sessions
from limen_cloud.models import Alarm, Lock, Owner, Record

from .test_api import PASSWORD, connected

ORIGIN = "https://testserver"


def browser(engine: Engine) -> TestClient:
    return TestClient(create_app(engine, open_signup=True), base_url=ORIGIN, follow_redirects=False)


def sign_up(client: TestClient, email: str) -> None:
    assert client.post("/api/owners", json={"email": email, "password": PASSWORD}).status_code == 201


def log_in(client: TestClient, email: str, totp: str = "") -> None:
    answer = client.post("/login", data={"email": email, "password": PASSWORD, "totp": totp})
    assert answer.status_code == 303 and answer.headers["location"] == "/locks", answer.text


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert found is not None
    return found.group(1)


def own_lock(engine: Engine, client: TestClient, email: str, lock_id: str, name: str) -> None:
    token = client.post("/api/sessions", json={"email": email, "password": PASSWORD}).json()["token"]
    connected(engine, lock_id, "abc-def-123")
    claimed = client.post("/api/locks", json={"lock_id": lock_id, "name": name, "claim_code": "abc-def-123"},
                          headers={"Authorization": f"Bearer {token}"})
    assert claimed.status_code == 201


def record(engine: Engine, lock_id: str, idx: int, kind: str, **fields: object) -> None:
    body = {"index": idx, "kind": kind, "at": f"2026-03-02T09:{idx:02d}:00+00:00", **fields}
    with sessions(engine)() as s, s.begin():
        s.add(Record(lock_id=lock_id, idx=idx, hash=f"{idx:064x}", kind=kind, at=str(body["at"]),
                     body=json.dumps(body, sort_keys=True)))
        lock = s.get(Lock, lock_id)
        assert lock is not None
        lock.head_count = lock.reported_count = idx + 1
        lock.last_seen = utcnow()


def test_a_page_needs_a_session_and_log_in_sets_a_host_only_secure_cookie(engine: Engine) -> None:
    client = browser(engine)
    sign_up(client, "olga@example.org")
    for path in ("/locks", "/history", "/alarms", "/account", "/account/totp"):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/login"
    wrong = client.post("/login", data={"email": "olga@example.org", "password": "wrong password!"})
    unknown = client.post("/login", data={"email": "nobody@example.org", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401 and "Wrong e-mail" in wrong.text
    assert "set-cookie" not in wrong.headers
    answer = client.post("/login", data={"email": "olga@example.org", "password": PASSWORD})
    cookie = answer.headers["set-cookie"]
    assert answer.status_code == 303 and cookie.startswith("__Host-limen-cloud=")
    for flag in ("Secure", "HttpOnly", "SameSite=strict", "Path=/"):
        assert flag.lower() in cookie.lower()
    assert "domain=" not in cookie.lower()
    page = client.get("/locks")
    assert page.status_code == 200 and "olga@example.org" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store" and page.headers["x-frame-options"] == "DENY"
    assert "<script" not in page.text and not re.search(r'(src|href)="(https?:)?//', page.text)  # no CDN
    logged_out = client.post("/logout", data={"csrf": csrf_of(page.text)})
    assert logged_out.status_code == 303
    assert client.get("/locks").status_code == 303  # the session row is gone, not just the cookie


def test_locks_history_and_alarms_across_locks_and_only_the_owners(engine: Engine) -> None:
    client = browser(engine)
    sign_up(client, "olga@example.org")
    own_lock(engine, client, "olga@example.org", "front-door", "Front door")
    record(engine, "front-door", 0, "lock_state", actor="system", data={"state": "locked"})
    record(engine, "front-door", 1, "unlock_attempt", actor="u-olga", outcome="granted", reason="face")
    record(engine, "front-door", 2, "lock_state", actor="u-olga", data={"state": "unlocked"})
    record(engine, "front-door", 3, "door_state", data={"state": "open"})
    connected(engine, "garage", "zzz-zzz-999")  # someone else's lock, unclaimed by Olga
    with sessions(engine)() as s, s.begin():
        g = s.get(Lock, "garage")
        assert g is not None
        g.name = "Mallory's garage"
    record(engine, "garage", 0, "lock_state", data={"state": "jammed"})
    with sessions(engine)() as s, s.begin():
        s.add(Alarm(lock_id="front-door", rule="audit_truncated", detail="trail cut back to 2",
                    raised_at=datetime(2026, 3, 2, 9, 5)))
        s.add(Alarm(lock_id="garage", rule="lock:tamper", detail="garage tamper", raised_at=datetime(2026, 3, 2)))
    log_in(client, "olga@example.org")

    locks = client.get("/locks").text
    row = re.search(r'<tr data-lock="front-door">(.*?)</tr>', locks, re.S)
    assert row is not None
    assert '<td class="state-lock">unlocked</td>' in row.group(1)
    assert '<td class="state-door">open</td>' in row.group(1) and "online" in row.group(1)
    assert "Mallory" not in locks and "garage" not in locks

    history = client.get("/history").text
    assert history.index("door_state") < history.index("unlock_attempt")  # newest first
    assert "u-olga" in history and "granted" in history and "jammed" not in history
    assert client.get("/history?lock=garage").status_code == 404
    assert "door_state" in client.get("/history?lock=front-door").text

    alarms = client.get("/alarms")
    assert "trail cut back to 2" in alarms.text and "garage tamper" not in alarms.text
    alarm_id = int(re.findall(r'data-alarm="(\d+)"', alarms.text)[0])
    csrf = csrf_of(alarms.text)
    assert client.post(f"/alarms/{alarm_id}/ack", data={"csrf": "0" * 64}).status_code == 403
    assert client.post(f"/alarms/{alarm_id}/ack", data={"csrf": csrf},
                       headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.post(f"/alarms/{alarm_id}/ack", data={"csrf": csrf},
                       headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    with sessions(engine)() as s:
        theirs = s.scalar(select(Alarm.id).where(Alarm.lock_id == "garage"))
        assert s.scalar(select(Alarm.acknowledged_at).where(Alarm.id == alarm_id)) is None
    assert client.post(f"/alarms/{theirs}/ack", data={"csrf": csrf}).status_code == 404
    done = client.post(f"/alarms/{alarm_id}/ack", data={"csrf": csrf}, headers={"Origin": ORIGIN})
    assert done.status_code == 303 and done.headers["location"] == "/alarms?done=acknowledged"
    after = client.get(done.headers["location"]).text
    assert "Alarm acknowledged." in after and "trail cut back to 2" not in after
    with sessions(engine)() as s:
        assert s.scalar(select(Alarm.acknowledged_at).where(Alarm.id == alarm_id)) is not None
        assert s.scalar(select(Alarm.acknowledged_at).where(Alarm.id == theirs)) is None


def test_totp_enrolment_with_a_qr_then_required_on_pages_and_api_and_never_replayed(engine: Engine) -> None:
    client = browser(engine)
    sign_up(client, "olga@example.org")
    log_in(client, "olga@example.org")
    form = client.get("/account/totp").text
    secret = re.search(r'name="secret" value="([A-Z2-7]{32})"', form)
    assert secret is not None and 'src="data:image/svg+xml' in form
    totp = pyotp.TOTP(secret.group(1))
    csrf = csrf_of(form)
    wrong = client.post("/account/totp", data={"csrf": csrf, "secret": secret.group(1), "code": "000000"
                                               if totp.now() != "000000" else "111111", "password": PASSWORD})
    assert wrong.status_code == 422 and "does not match" in wrong.text
    assert client.post("/account/totp", data={"csrf": "f" * 64, "secret": secret.group(1), "code": totp.now(),
                                              "password": PASSWORD}).status_code == 403
    for password in ("", "not the password"):  # a stolen session alone enrols no seed of its own
        refused = client.post("/account/totp", data={"csrf": csrf, "secret": secret.group(1), "code": totp.now(),
                                                     "password": password})
        assert refused.status_code == 403 and "Wrong password" in refused.text
    with sessions(engine)() as s:
        assert s.scalar(select(Owner.totp_secret).where(Owner.email == "olga@example.org")) is None
    code = totp.now()  # one step throughout: a 30 s boundary between two now() calls would make a fresh code
    enrolled = client.post("/account/totp", data={"csrf": csrf, "secret": secret.group(1), "code": code,
                                                  "password": PASSWORD})
    assert enrolled.status_code == 303
    with sessions(engine)() as s:
        owner = s.scalar(select(Owner).where(Owner.email == "olga@example.org"))
        assert owner is not None and owner.totp_secret == secret.group(1)
    assert "Enrolled" in client.get("/account").text
    assert client.get("/account/totp").status_code == 303  # no second seed over the first

    other = browser(engine)
    assert other.post("/login", data={"email": "olga@example.org", "password": PASSWORD}).status_code == 401
    api = {"email": "olga@example.org", "password": PASSWORD}
    assert other.post("/api/sessions", json=api).status_code == 401
    used = code  # the enrolment used this step: it does not log in again
    assert other.post("/api/sessions", json={**api, "totp": used}).status_code == 401
    later = totp.at(datetime.now() + timedelta(seconds=30))
    assert other.post("/api/sessions", json={**api, "totp": later}).status_code == 201
    assert other.post("/login", data={**api, "totp": later}).status_code == 401  # replay of the API's step


def test_the_community_webhook_takes_https_only_and_shows_its_secret_once(engine: Engine) -> None:
    client = browser(engine)
    sign_up(client, "olga@example.org")
    log_in(client, "olga@example.org")
    csrf = csrf_of(client.get("/account").text)
    for bad in ("http://hooks.example.org/x", "ftp://hooks.example.org", "https://user@hooks.example.org/",
                "http://127.0.0.1:8090/", "https://localhost/x", "https://10.0.0.7/", "https://169.254.169.254/",
                "https://[::1]:22/", "https://[::ffff:192.168.1.1]/", "https://hooks.example.org:99999/"):
        refused = client.post("/account/webhook", data={"csrf": csrf, "url": bad})
        assert refused.status_code == 422 and "Not a usable webhook" in refused.text
    saved = client.post("/account/webhook", data={"csrf": csrf, "url": "https://watch.example.org/limen",
                                                  "password": PASSWORD})  # setting it needs the password too
    shown = re.search(r'class="secret">([0-9a-f]{64})<', saved.text)
    with sessions(engine)() as s:
        owner = s.scalar(select(Owner).where(Owner.email == "olga@example.org"))
        assert owner is not None and owner.webhook_url == "https://watch.example.org/limen"
        assert shown is not None and owner.webhook_secret == shown.group(1)
    assert shown.group(1) not in client.get("/account").text  # once
    removed = client.post("/account/webhook", data={"csrf": csrf, "url": "", "password": PASSWORD})
    assert removed.status_code == 303  # the password again for each change (tests/cloud/test_alert_step_up.py)
    with sessions(engine)() as s:
        owner = s.scalar(select(Owner).where(Owner.email == "olga@example.org"))
        assert owner is not None and owner.webhook_url is None and owner.webhook_secret is None
