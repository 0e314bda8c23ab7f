"""The service over HTTP (in-process): setup, login, CSRF, codes, keypad, limits and errors.

Face recognition is exercised in test_face_api.py and the browser tests; these
tests use the keypad and codes so they run in a few seconds.
"""

from __future__ import annotations

import errno
import re
import sqlite3
import tempfile
import threading
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest

from limen import thresholds as T
from limen.clock import FixedClock
from limen.config import Settings
from limen.service import close_app, create_app

from .conftest import BASE, PASSWORD, PIN, Owner, csrf_of, do_setup, make_client

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def test_first_run_has_no_default_password_only_a_one_time_link(client: TestClient) -> None:
    assert client.get("/api/health").json() == {"status": "ok", "setup_required": True}
    assert client.post("/login", data={"username": "admin", "password": "admin"}).status_code in (401, 303)
    assert client.get("/owner", follow_redirects=False).status_code == 303
    assert client.get("/setup", params={"token": "guess"}).status_code == 403
    owner = do_setup(client)
    assert client.get("/api/health").json()["setup_required"] is False
    token = client.app.state.ctx.setup_token  # type: ignore[attr-defined]
    assert token is None
    again = client.post("/setup", data={"token": "x", "username": "eve", "password": PASSWORD,
                                        "password2": PASSWORD, "pin": "135790"})
    assert again.status_code == 403
    assert owner.user_id


def test_setup_link_cannot_be_reused(settings: Settings) -> None:
    app = create_app(settings)
    try:
        with make_client(app) as c:
            token = app.state.ctx.setup_token
            do_setup(c)
            c.cookies.clear()
            r = c.post("/setup", data={"token": token, "username": "eve", "password": PASSWORD,
                                       "password2": PASSWORD, "name": "Eve", "pin": "135790"})
            assert r.status_code == 403
    finally:
        close_app(app)


def test_session_cookie_is_http_only_and_same_site_strict(client: TestClient) -> None:
    token = client.app.state.ctx.setup_token  # type: ignore[attr-defined]
    r = client.post("/setup", data={"token": token, "username": "alice", "password": PASSWORD,
                                    "password2": PASSWORD, "name": "Alice", "pin": PIN}, follow_redirects=False)
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "secure" not in cookie  # plain HTTP on loopback only; see docs/service.md
    r = client.get("/owner")
    assert r.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_login_logout_and_wrong_password(client: TestClient, owner: Owner) -> None:
    client.post("/logout", data={})
    assert client.get("/api/users").status_code == 401
    bad = client.post("/login", data={"username": "alice", "password": "wrong password"})
    assert bad.status_code == 401 and "Wrong user name" in bad.text
    ok = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert ok.status_code == 200 and client.get("/api/users").status_code == 200


def test_login_is_rate_limited(client: TestClient, owner: Owner) -> None:
    codes = [client.post("/login", data={"username": "alice", "password": "nope nope"}).status_code
             for _ in range(T.SERVICE_LOGIN_BURST + 2)]
    assert codes[-1] == 429 and 401 in codes
    r = client.post("/login", data={"username": "alice", "password": PASSWORD},
                    headers={"accept": "application/json"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0 and r.json()["reason"]


def test_state_changes_need_the_csrf_token(client: TestClient, owner: Owner) -> None:
    assert client.post("/api/codes", json={"kind": "single_use"}).status_code == 403
    assert client.post("/api/codes", json={"kind": "single_use"},
                       headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.post("/owner/lock", data={"csrf": "forged"}).status_code == 403
    assert client.post("/owner/lock", data={"csrf": owner.csrf}).status_code == 200
    owner.step_up()  # a code opens the door: the owner confirms first
    assert client.post("/api/codes", json={"kind": "single_use"}, headers=owner.api()).status_code == 200


def test_cross_site_requests_are_refused(client: TestClient, owner: Owner) -> None:
    r = client.post("/api/kiosk/keypad", json={"entry": PIN}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    r = client.post("/api/kiosk/keypad", json={"entry": PIN}, headers={"Origin": BASE})
    assert r.status_code == 200


def test_api_tokens_authenticate_integrations_without_cookies(client: TestClient, owner: Owner) -> None:
    token = owner.token("read", "manage")
    issued = {"token": token, "id": client.get("/api/tokens").json()[0]["id"]}
    with make_client(client.app) as other:
        assert other.get("/api/lock").status_code == 401
        auth = {"Authorization": f"Bearer {issued['token']}"}
        assert other.get("/api/lock", headers=auth).json()["state"] in ("locked", "unlocked", "locking", "unlocking")
        assert other.post("/api/lock/lock", headers=auth).status_code == 200  # no CSRF for bearer tokens
        client.delete(f"/api/tokens/{issued['id']}", headers=owner.api())
        assert other.get("/api/lock", headers=auth).status_code == 401


def test_pin_at_the_kiosk_with_decoy_digits_opens(client: TestClient, owner: Owner) -> None:
    assert client.post("/api/kiosk/keypad", json={"entry": "93" + PIN + "7"}).json() == {
        "opened": True, "message": "Welcome, Alice", "name": "Alice", "relock_in_s": T.AUTO_RELOCK_TIME_S}
    assert client.post("/api/kiosk/keypad", json={"entry": "000000"}).json()["opened"] is False


def test_a_revoked_code_is_refused_and_audited(client: TestClient, owner: Owner) -> None:
    owner.step_up()
    issued = client.post("/api/codes", json={"kind": "single_use"}, headers=owner.api()).json()
    listed = client.get("/api/codes").json()
    assert [c["code_id"] for c in listed] == [issued["code_id"]]
    assert "code" not in listed[0]  # digits are shown once only
    r = client.post(f"/api/codes/{issued['code_id']}/revoke", headers=owner.api())
    assert r.status_code == 200
    refused = client.post("/api/kiosk/keypad", json={"entry": issued["enter_as"]}).json()
    assert refused["opened"] is False and refused["message"].startswith("code not accepted")
    trail = client.get("/api/audit", params={"kind": "unlock_attempt", "outcome": "reject"}).json()
    assert trail[0]["reason"] == "credential_revoked"
    changes = [r["reason"] for r in client.get("/api/audit", params={"kind": "code_change"}).json()]
    assert "offline code revoked" in changes and "offline code issued" in changes
    assert client.post("/api/codes/nope/revoke", headers=owner.api()).json()["error"] == "not_found"


def test_remote_unlock_follows_the_access_rules(client: TestClient, owner: Owner) -> None:
    no_pin = client.post("/api/lock/unlock", json={}, headers=owner.api()).json()
    assert no_pin["opened"] is False and no_pin["reason"] == "pin_required"
    ok = client.post("/api/lock/unlock", json={"pin": PIN}, headers=owner.api()).json()
    assert ok["opened"] is True
    page = client.post("/owner/unlock", data={"csrf": owner.csrf, "pin": "111111"})
    assert "Refused" in page.text


def test_owner_pages_render_for_a_logged_in_owner(client: TestClient, owner: Owner) -> None:
    for path, marker in (("/owner", "lock-state"), ("/owner/users", "Alice"), ("/owner/codes", "Issue code"),
                         ("/owner/audit", "audit"), ("/owner/tokens", "Create token"), ("/owner/enrol", "consent-text"),
                         ("/kiosk", "keypad")):
        r = client.get(path)
        assert r.status_code == 200 and marker in r.text, path
    issued = client.post("/owner/codes", data={"csrf": owner.csrf, "kind": "limited", "hours": "2",
                                                "password": PASSWORD})
    assert "shown once" in issued.text and "issued-digits" in issued.text
    assert "issued-digits" not in client.get("/owner/codes").text


def test_schedules_and_pins_change_through_the_access_engine(client: TestClient, owner: Owner) -> None:
    owner.step_up()  # the owner's own schedule: an owner's change needs it
    r = client.post(f"/api/users/{owner.user_id}/week-days", json={"index": 1, "days": ["mon", "tue"],
                                                                    "start": "07:00", "end": "19:00"},
                    headers=owner.api())
    assert r.status_code == 200
    me = next(u for u in client.get("/api/users").json() if u["user_id"] == owner.user_id)
    assert me["week_days"] == [{"index": 1, "days": ["mon", "tue"], "start": "07:00", "end": "19:00"}]
    bad = client.post(f"/api/users/{owner.user_id}/week-days", json={"index": 1, "days": ["someday"],
                                                                      "start": "07:00", "end": "19:00"},
                      headers=owner.api())
    assert bad.status_code == 422 and "days" in bad.json()["reason"]  # the schema lists the day names
    owner.step_up()
    assert client.post(f"/api/users/{owner.user_id}/pin", json={"pin": "12"}, headers=owner.api()).status_code == 422
    r = client.post(f"/api/users/{owner.user_id}/pin", json={"pin": "111111"}, headers=owner.api())
    assert r.status_code == 400 and "repeated digit" in r.json()["reason"]  # the one rule the schema cannot say


def test_bad_uploads_get_clear_errors(client: TestClient, owner: Owner) -> None:
    r = client.post("/api/kiosk/unlock", files=[("frames", ("notes.txt", b"hello", "text/plain"))])
    assert r.status_code == 400 and r.json()["error"] == "bad_image" and "not an image" in r.json()["reason"]
    r = client.post("/api/kiosk/unlock", data={"interval_ms": "100"})
    assert r.status_code == 422 and r.json()["reason"]
    big = b"\xff\xd8" + b"\0" * (T.SERVICE_MAX_FRAME_BYTES + 10)
    r = client.post("/api/kiosk/unlock", files=[("frames", ("big.jpg", big, "image/jpeg"))])
    assert r.status_code == 400 and "too large" in r.json()["reason"]
    huge = b"\0" * (T.SERVICE_MAX_REQUEST_BYTES + 1)
    r = client.post("/api/users/enrol", content=huge,
                    headers={**owner.api(), "content-type": "application/octet-stream"})
    assert r.status_code == 413 and "larger than" in r.json()["reason"]
    owner.step_up()  # enrolling a face needs it
    many = [("frames", (f"f{i}.jpg", b"x", "image/jpeg")) for i in range(T.SERVICE_MAX_UNLOCK_FRAMES + 1)]
    r = client.post("/api/kiosk/unlock", files=many)
    assert r.status_code == 422 and r.json()["reason"].startswith("frames")  # the schema says at most 10
    r = client.post("/api/users/enrol", headers=owner.api(), data={"name": "Bob", "purpose": "door",
                                                                   "retention_days": "30", "consent": "false"},
                    files=[("files", ("a.jpg", b"x", "image/jpeg"))])
    assert r.status_code == 400 and r.json()["error"] == "consent_required"
    assert client.get("/api/users").json()[0]["name"] == "Alice" and len(client.get("/api/users").json()) == 1


def test_unknown_things_answer_json_errors(client: TestClient, owner: Owner) -> None:
    assert client.get("/api/nothing").json()["error"] == "not_found"
    assert client.delete("/api/users/" + "0" * 32, headers=owner.api()).json()["error"] == "not_found"
    assert client.delete("/api/users/nobody", headers=owner.api()).status_code == 404  # not an id at all
    r = client.get("/api/audit", params={"kind": "bogus"})
    assert r.status_code == 422 and "kind" in r.json()["reason"]
    page = client.get("/owner/nothing", headers={"accept": "text/html"})
    assert page.status_code == 404 and "<html" in page.text


def test_expired_sessions_send_the_owner_back_to_login(settings: Settings) -> None:
    clock = FixedClock(datetime.now(UTC))
    app = create_app(settings, clock=clock)
    try:
        with make_client(app) as c:
            do_setup(c)
            assert c.get("/owner").status_code == 200
            clock.advance(T.SERVICE_SESSION_IDLE_S + 5)
            r = c.get("/owner", follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"].startswith("/login")
            assert c.get("/api/users").status_code == 401
    finally:
        close_app(app)


def test_concurrent_keypad_attempts_are_serialised_and_counted(client: TestClient, owner: Owner,
                                                               settings: Settings) -> None:
    answers: list[int] = []

    def attempt(entry: str) -> None:
        answers.append(client.post("/api/kiosk/keypad", json={"entry": entry}).status_code)

    threads = [threading.Thread(target=attempt, args=(PIN if i % 2 else "000000",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(set(answers)) == [200]
    trail = client.get("/api/audit", params={"kind": "unlock_attempt", "limit": 50}).json()
    assert len([r for r in trail if r["source"] == "keypad"]) == 8
    conn = sqlite3.connect(settings.db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    client.app.state.ctx.runtime.audit.verify()  # type: ignore[attr-defined]


def test_existing_owner_made_with_the_cli_links_their_web_account(settings: Settings) -> None:
    from limen.access import AccessStore, PermissionLevel
    from limen.runtime import open_runtime

    rt = open_runtime(settings)
    AccessStore(rt.conn, rt.audit).add_user("Carol", "bootstrap", datetime.now(UTC), pin="246813",
                                            permission=PermissionLevel.OWNER)
    app = create_app(settings, runtime=rt)
    try:
        with make_client(app) as c:
            token = app.state.ctx.setup_token
            form = {"token": token, "username": "carol", "password": PASSWORD, "password2": PASSWORD,
                    "name": "Carol"}
            wrong = c.post("/setup", data={**form, "pin": "999999"})
            assert wrong.status_code == 400 and "wrong PIN" in wrong.text
            ok = c.post("/setup", data={**form, "pin": "246813"})
            assert ok.status_code == 200 and csrf_of(ok.text)
    finally:
        close_app(app)


def test_owner_adds_a_pin_user_who_then_opens_at_the_keypad(client: TestClient, owner: Owner) -> None:
    r = client.post("/owner/users", data={"csrf": owner.csrf, "name": "Gus", "pin": "713502", "permission": "guest",
                                          "password": PASSWORD})
    assert r.status_code == 200 and "User added" in r.text and "Gus" in r.text
    assert client.post("/api/kiosk/keypad", json={"entry": "713502"}).json()["opened"] is True
    gus = next(u for u in client.get("/api/users").json() if u["name"] == "Gus")
    assert gus["permission"] == "guest"
    dup = client.post("/api/users", json={"name": "Gus", "pin": "924613"}, headers=owner.api())
    assert dup.status_code == 409 and dup.json()["error"] == "conflict"
    assert client.delete(f"/api/users/{gus['user_id']}", headers=owner.api()).status_code == 200
    assert client.post("/api/kiosk/keypad", json={"entry": "713502"}).json()["opened"] is False


def test_two_factor_login_needs_the_authenticator_code(settings: Settings) -> None:
    import pyotp

    clock = FixedClock(datetime.now(UTC))
    app = create_app(settings, clock=clock)
    try:
        with make_client(app) as client:
            secret = pyotp.random_base32()
            code = pyotp.TOTP(secret).at(clock.now())
            form = {"token": app.state.ctx.setup_token, "username": "alice", "password": PASSWORD,
                    "password2": PASSWORD, "name": "Alice", "pin": PIN, "use_totp": "1", "totp_secret": secret}
            wrong = client.post("/setup", data={**form, "totp_code": "000000" if code != "000000" else "111111"})
            assert wrong.status_code == 400 and "authenticator code" in wrong.text
            assert client.post("/setup", data={**form, "totp_code": code}).status_code == 200
            client.post("/logout", data={})
            no_code = client.post("/login", data={"username": "alice", "password": PASSWORD})
            assert no_code.status_code == 401
            replay = client.post("/login", data={"username": "alice", "password": PASSWORD, "totp": code})
            assert replay.status_code == 401  # the setup's code is used up
            clock.advance(30)
            ok = client.post("/login", data={"username": "alice", "password": PASSWORD,
                                             "totp": pyotp.TOTP(secret).at(clock.now())})
            assert ok.status_code == 200 and "lock-state" in ok.text
    finally:
        close_app(app)


def test_repeated_wrong_pins_raise_an_alarm_the_owner_sees(client: TestClient, owner: Owner) -> None:
    assert client.get("/api/alarms").json() == []
    for _ in range(T.AUDIT_FAILS_PER_METHOD["pin"]):
        client.post("/api/kiosk/keypad", json={"entry": "000000"})
    alarms = client.get("/api/alarms").json()
    assert alarms and alarms[0]["kind"] == "alarm"
    page = client.get("/owner").text
    assert alarms[0]["reason"] in page and "No alarms." not in page


def test_a_door_screen_elsewhere_must_be_paired(client: TestClient, owner: Owner) -> None:
    with make_client(client.app, ("192.168.1.50", 40000)) as tablet:
        refused = tablet.post("/api/kiosk/keypad", json={"entry": PIN})
        assert refused.status_code == 403 and "not paired" in refused.json()["reason"]
        page = client.post("/owner/kiosks", data={"csrf": owner.csrf, "name": "front door tablet",
                                                   "password": PASSWORD})
        link = re.search(r'id="pairing-link">([^<]+)<', page.text)
        assert link, page.text[-800:]
        assert tablet.get(link.group(1).replace("http://127.0.0.1:8080", "")).status_code == 200
        assert tablet.post("/api/kiosk/keypad", json={"entry": PIN}).json()["opened"] is True
        with make_client(client.app, ("192.168.1.66", 40000)) as copier:  # the link works once only
            assert copier.get(link.group(1).replace("http://127.0.0.1:8080", "")).status_code == 403
            assert copier.post("/api/kiosk/keypad", json={"entry": PIN}).status_code == 403
        kiosks = client.app.state.ctx.accounts.kiosks()  # type: ignore[attr-defined]
        kiosk_id = next(k["id"] for k in kiosks if k["name"] == "front door tablet")
        client.post(f"/owner/kiosks/{kiosk_id}/revoke", data={"csrf": owner.csrf})
        assert tablet.post("/api/kiosk/keypad", json={"entry": PIN}).status_code == 403
        assert tablet.get("/kiosk", params={"pair": "forged"}).status_code == 403


def test_a_broken_install_answers_503_with_a_reason_not_a_traceback(client: TestClient, owner: Owner,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from limen.errors import ConfigError, StorageError

    lock = client.app.state.ctx.lock  # type: ignore[attr-defined]
    for error in (ConfigError("PAD model missing"), StorageError("/secret/path: disk I/O error")):
        def broken(*args: object, error: Exception = error) -> None:
            raise error

        monkeypatch.setattr(lock, "keypad", broken)
        r = client.post("/api/kiosk/keypad", json={"entry": PIN})
        assert r.status_code == 503 and r.json()["reason"] and "/secret/path" not in r.text
        assert "Traceback" not in r.text


def test_an_owner_disabled_on_the_lock_loses_web_access(client: TestClient, owner: Owner) -> None:
    assert client.get("/api/users").status_code == 200
    rt = client.app.state.ctx.runtime  # type: ignore[attr-defined]
    with client.app.state.ctx.lock._lock:  # type: ignore[attr-defined]
        rt.conn.execute("UPDATE access_users SET status = 'disabled' WHERE user_id = ?", (owner.user_id,))
    assert client.get("/api/users").status_code == 401
    assert client.post("/api/tokens", json={"name": "x"}, headers=owner.api()).status_code == 401
    page = client.get("/owner", follow_redirects=False)
    assert page.status_code in (302, 303) and "/login" in page.headers["location"]


def test_strangers_cannot_drain_the_door_screens_rate_limit(client: TestClient, owner: Owner) -> None:
    stranger = make_client(client.app, ("203.0.113.9", 50000))
    answers = {stranger.post("/api/lock/unlock", json={"pin": "000000"}).status_code for _ in range(60)}
    assert answers == {401}  # refused as unauthenticated, never counted against the unlock budget
    assert client.post("/api/kiosk/keypad", json={"entry": PIN}).status_code == 200


def test_a_bad_video_is_refused_without_showing_server_paths(client: TestClient, owner: Owner) -> None:
    form = {"name": "Bob", "purpose": "door", "retention_days": "30", "consent": "true"}
    owner.step_up()  # enrolling a face needs it
    r = client.post("/api/users/enrol", headers=owner.api(), data=form,
                    files=[("files", ("holiday.mp4", b"\x00" * 4096, "video/mp4"))])
    assert r.status_code == 400 and r.json()["reason"].startswith("holiday.mp4:")
    assert "limen-upload" not in r.text and "/tmp" not in r.text


def test_a_full_ram_disk_answers_503_no_room_not_500(client: TestClient, owner: Owner,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """/dev/shm is small (Docker's 64 MB, a small Pi): an upload the lock writes there, or one Starlette spools
    there (over 1 MB), failed with ENOSPC as a bare 500 (or FastAPI's 400 'error parsing the body')."""
    write_bytes = Path.write_bytes

    def full(path: Path, data: bytes) -> int:
        if "limen-upload-" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return write_bytes(path, data)

    def over_quota(*args: object, **kwargs: object) -> object:
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    owner.step_up()  # enrolling a face needs it
    monkeypatch.setattr(Path, "write_bytes", full)
    r = client.post("/api/users/enrol", headers=owner.api(),
                    data={"name": "Bob", "purpose": "door", "retention_days": "30", "consent": "true"},
                    files=[("files", ("door.mp4", b"\x00" * 4096, "video/mp4"))])
    assert r.status_code == 503 and r.json()["error"] == "no_room", r.text
    assert r.json()["reason"].startswith("no room to decode the upload;") and "/dev/shm" in r.json()["reason"]
    monkeypatch.setattr(tempfile, "TemporaryFile", over_quota)  # Starlette spools an upload over 1 MB
    frame = b"\xff\xd8" + b"\0" * (3 * T.SERVICE_MAX_FRAME_BYTES // 4)
    r = client.post("/api/kiosk/unlock", files=[("frames", ("big.jpg", frame, "image/jpeg"))])
    assert r.status_code == 503 and r.json()["reason"].startswith("no room to decode the upload;"), r.text


def test_a_full_data_disk_or_database_is_storage_unavailable_not_dev_shm(client: TestClient, owner: Owner,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC on a file of the data directory during an upload, or SQLite's "database or disk is full", is not
    /dev/shm: 503 with the storage line, never the RAM advice, never a bare 500 (review of a603b1c)."""
    from limen.service import lockservice

    def disk_full(*args: object, **kwargs: object) -> object:
        raise OSError(errno.ENOSPC, "No space left on device", str(owner_data_file))

    def db_full(*args: object, **kwargs: object) -> object:
        raise sqlite3.OperationalError("database or disk is full")

    from limen.service import scratch

    owner_data_file = Path(client.app.state.ctx.settings.data_dir) / "faces.db"  # type: ignore[attr-defined]
    if scratch.scratch_dir() is None:  # as limen serve makes it at start (the data directory is under /tmp here)
        pytest.skip("no RAM disk on this machine")
    owner.step_up()
    form = {"name": "Bob", "purpose": "door", "retention_days": "30", "consent": "true"}
    video = [("files", ("door.mp4", b"\x00" * 4096, "video/mp4"))]
    monkeypatch.setattr(lockservice.LockService, "enrol", disk_full)
    r = client.post("/api/users/enrol", headers=owner.api(), data=form, files=video)
    assert r.status_code == 503 and r.json()["error"] == "unavailable", r.text
    assert "/dev/shm" not in r.json()["reason"]
    monkeypatch.setattr(lockservice.LockService, "enrol", db_full)
    r = client.post("/api/users/enrol", headers=owner.api(), data=form, files=video)
    assert r.status_code == 503 and r.json()["error"] == "unavailable", r.text
