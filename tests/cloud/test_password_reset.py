"""The operator's password reset: `limen-cloud reset-password OWNER [--clear-totp] [--valid-minutes N]` and `/reset`.

Gap: an owner who lost the cloud password, or whose password a thief changed (`password_changed` says "ask the cloud's
operator"), had no way back.  The operator now prints a one-time link (256 random bits, only the SHA-256 stored, in
the sign-up invites' table: an invite naming the account); it changes nothing itself.  `/reset` sets a new password by
sign-up's rules (typed twice) with a live link, spends it, ends every session and API token of the account, logs the
reset (no secret) and raises `password_reset` to the owner's destinations; `--clear-totp` also removes the
authenticator.  An unknown, expired, used or superseded link is a 410 page that changes nothing; the form is
same-origin only and rate-limited with log-in."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from datetime import timedelta

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text, update
from typer.testing import CliRunner

from limen.service.ratelimit import RateLimiter
from limen_cloud import db as cloud_db
from limen_cloud.api import create_app, new_invite, utcnow
from limen_cloud.cli import app as cli
from limen_cloud.db import sessions, upgrade
from limen_cloud.models import Alarm, Invite, Owner

from .test_alert_step_up import claim, enrol
from .test_api import PASSWORD, frozen_login
from .test_pages import ORIGIN, log_in, sign_up

EMAIL = "olga@example.org"
NEW = "a brand new passphrase"
PASSWORD_RESET = "password_reset"  # the owner's alarm (limen_cloud.pages)


def client_for(engine: Engine, open_signup: bool = True) -> TestClient:
    app = create_app(engine, open_signup=open_signup)
    app.state.limiter = RateLimiter(1000, 1000, 1000)  # the rate limit has its own test, on the real limits
    return TestClient(app, base_url=ORIGIN, follow_redirects=False)


def db_url(engine: Engine) -> str:
    """`engine`'s URL for the CLI's --db (on PostgreSQL with the test's schema as the search path)."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name != "postgresql":
        return url
    with engine.connect() as conn:
        schema = str(conn.execute(text("SELECT current_schema()")).scalar())
    return f"{url}?options=-csearch_path%3D{schema}"


def reset_link(engine: Engine, *args: str) -> str:
    """The operator's command; the token of the link it printed."""
    result = CliRunner().invoke(cli, ["reset-password", EMAIL, "--db", db_url(engine), *args])
    assert result.exit_code == 0, result.output
    found = re.search(r"^http://127\.0\.0\.1:8090/reset\?token=([A-Za-z0-9_-]+)$", result.stdout, re.M)
    assert found is not None, result.stdout
    return found.group(1)


def api_token(client: TestClient, password: str = PASSWORD, totp: str = "") -> dict[str, str] | None:
    answer = client.post("/api/sessions", json={"email": EMAIL, "password": password, "totp": totp})
    return {"Authorization": f"Bearer {answer.json()['token']}"} if answer.status_code == 201 else None


def password_hash(engine: Engine) -> str:
    with sessions(engine)() as s:
        owner = s.scalar(select(Owner).where(Owner.email == EMAIL))
        assert owner is not None
        return owner.password_hash


def alarms(engine: Engine) -> list[str]:
    with sessions(engine)() as s:
        return [a.detail for a in s.scalars(select(Alarm).where(Alarm.rule == PASSWORD_RESET))]


def reset(client: TestClient, token: str, new: str = NEW, again: str | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, str]:
    answer = client.post("/reset", data={"token": token, "new": new, "again": new if again is None else again},
                         headers=headers)
    return answer.status_code, answer.headers.get("location", answer.text)


def test_the_cli_prints_a_link_that_sets_the_password_once_and_ends_every_session(
        engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    client = client_for(engine)
    sign_up(client, EMAIL)
    mine, other = api_token(client), api_token(client)
    assert mine is not None and other is not None
    claim(engine, client, mine)
    log_in(client, EMAIL)  # a browser session of the account: ended too
    before = password_hash(engine)
    with caplog.at_level(logging.DEBUG):
        token = reset_link(engine)
        assert len(token) >= 43  # 256 random bits (base64url)
        with sessions(engine)() as s:  # only the token's SHA-256 is kept
            [row] = s.scalars(select(Invite).where(Invite.owner_id.is_not(None)))
            assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and not row.clear_totp
            assert timedelta(minutes=29) < row.expires_at - row.created_at <= timedelta(minutes=30)
        assert password_hash(engine) == before  # the link itself changes nothing
        form = client.get(f"/reset?token={token}")
        assert form.status_code == 200 and f'name="token" value="{token}"' in form.text
        assert form.headers["Cache-Control"] == "no-store" and form.headers["Referrer-Policy"] == "same-origin"
        assert password_hash(engine) == before and client.get("/api/locks", headers=other).status_code == 200

        assert reset(client, token) == (303, "/login?done=password-reset")
        assert api_token(client) is None  # the old password is refused
        assert api_token(client, NEW) is not None
        assert client.get("/api/locks", headers=mine).status_code == 401  # every API token ended
        assert client.get("/api/locks", headers=other).status_code == 401
        assert client.get("/locks").status_code == 303  # the page's session too
        [detail] = alarms(engine)  # told to the owner's destinations, on the first lock
        assert "reset with a link from the cloud's operator" in detail and "authenticator" not in detail

        changed = password_hash(engine)  # used once: a second use changes nothing
        status, page = reset(client, token, "yet another passphrase")
        assert status == 410 and "already used" in page
        assert client.get(f"/reset?token={token}").status_code == 410
        assert password_hash(engine) == changed and len(alarms(engine)) == 1
    server = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("limen", "uvicorn")))
    assert "reset the account's password with the operator's link: 3 session(s) ended" in server
    assert "operator made a password-reset link" in server
    access = logging.LogRecord("uvicorn.access", logging.INFO, "h11_impl.py", 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", f"/reset?token={token}&x=1", "1.1", 200), None)
    assert logging.getLogger("uvicorn.access").filter(access)  # the served cloud's access log line of the link
    server += "\n" + access.getMessage()
    assert "/reset?token=[redacted]&x=1" in server
    for secret in (token, hashlib.sha256(token.encode()).hexdigest(), PASSWORD, NEW):
        assert secret not in server and secret not in detail


def test_an_expired_superseded_or_wrong_link_changes_nothing(engine: Engine) -> None:
    client = client_for(engine)
    sign_up(client, EMAIL)
    mine = api_token(client)
    assert mine is not None
    claim(engine, client, mine)
    before = password_hash(engine)
    older = reset_link(engine, "--valid-minutes", "5")
    newer = reset_link(engine)
    expired = reset_link(engine, "--valid-minutes", "1")  # supersedes `newer` too
    with sessions(engine)() as s, s.begin():
        s.execute(update(Invite).where(Invite.token_hash == hashlib.sha256(expired.encode()).hexdigest())
                  .values(expires_at=utcnow() - timedelta(seconds=1)))
        invite = new_invite(s, utcnow())  # a sign-up invite is no reset link
    for token in (older, newer, expired, invite, secrets.token_urlsafe(32), ""):
        assert client.get("/reset", params={"token": token}).status_code == 410, token
        status, page = reset(client, token)
        assert status == 410 and "operator for a new one" in page, (token, page)
    assert password_hash(engine) == before and alarms(engine) == []
    assert client.get("/api/locks", headers=mine).status_code == 200  # no session ended
    assert api_token(client) is not None

    latest = reset_link(engine)
    assert reset(client, latest) == (303, "/login?done=password-reset")  # the newest link works


def test_a_weak_or_mistyped_password_spends_nothing(engine: Engine) -> None:
    client = client_for(engine)
    sign_up(client, EMAIL)
    before = password_hash(engine)
    token = reset_link(engine)
    for new, again, reason in (("too short", None, "at least 12 characters"),
                               (NEW, NEW + "!", "The two passwords differ")):
        status, page = reset(client, token, new, again)
        assert status == 422 and reason in page and f'value="{token}"' in page, page
    assert password_hash(engine) == before
    assert reset(client, token) == (303, "/login?done=password-reset")


def test_a_reset_link_is_no_sign_up_invite(engine: Engine) -> None:
    client = client_for(engine)
    sign_up(client, EMAIL)
    token = reset_link(engine)
    closed = TestClient(create_app(engine), base_url=ORIGIN)
    answer = closed.post("/api/owners", json={"email": "mallory@example.org", "password": PASSWORD,
                                              "invite": token})
    assert answer.status_code == 403
    assert reset(client, token) == (303, "/login?done=password-reset")  # and it was not spent


def test_clear_totp_removes_the_authenticator_and_says_so(engine: Engine) -> None:
    client = client_for(engine)
    sign_up(client, EMAIL)
    totp = enrol(engine)
    mine = api_token(client, totp=totp.now())
    assert mine is not None
    claim(engine, client, mine)
    help_text = CliRunner().invoke(cli, ["reset-password", "--help"]).stdout
    assert "--clear-totp" in help_text and "out of band" in help_text

    kept = reset_link(engine)  # without --clear-totp the authenticator stays
    assert reset(client, kept) == (303, "/login?done=password-reset")
    assert api_token(client, NEW) is None
    with sessions(engine)() as s:
        owner = s.scalar(select(Owner).where(Owner.email == EMAIL))
        assert owner is not None and owner.totp_secret is not None

    cleared = reset_link(engine, "--clear-totp")
    with sessions(engine)() as s:
        assert s.scalar(select(Invite.clear_totp).where(Invite.owner_id.is_not(None), Invite.used_at.is_(None)))
    assert reset(client, cleared, "the owner's own passphrase") == (303, "/login?done=password-reset")
    assert api_token(client, "the owner's own passphrase") is not None  # no code asked any more
    details = alarms(engine)
    assert len(details) == 2 and "authenticator removed" in details[1] and "authenticator" not in details[0]


def test_a_cross_origin_form_is_refused(engine: Engine) -> None:
    client = client_for(engine)
    sign_up(client, EMAIL)
    before = password_hash(engine)
    token = reset_link(engine)
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
        status, page = reset(client, token, headers=headers)
        assert status == 403 and "cross-origin" in page, (headers, page)
    assert password_hash(engine) == before
    assert reset(client, token, headers={"Origin": ORIGIN}) == (303, "/login?done=password-reset")


def test_wrong_links_are_rate_limited_with_log_in(engine: Engine) -> None:
    client = TestClient(frozen_login(create_app(engine, open_signup=True)), base_url=ORIGIN,
                        follow_redirects=False)
    sign_up(client, EMAIL)
    before = password_hash(engine)
    token = reset_link(engine)
    codes = [reset(client, secrets.token_urlsafe(32))[0] for _ in range(11)]
    assert codes[:10] == [410] * 10 and codes[10] == 429, codes
    assert reset(client, token)[0] == 429  # even the right one
    assert client.get(f"/reset?token={token}").status_code == 429
    assert client.post("/api/sessions", json={"email": EMAIL, "password": PASSWORD}).status_code == 429  # shared
    assert password_hash(engine) == before


def test_the_command_refuses_an_unknown_owner_and_unbounded_validity(engine: Engine) -> None:
    runner, url = CliRunner(), db_url(engine)
    unknown = runner.invoke(cli, ["reset-password", "nobody@example.org", "--db", url])
    assert unknown.exit_code == 1 and "no owner account" in unknown.output
    client = client_for(engine)
    sign_up(client, EMAIL)
    for minutes in ("0", str(24 * 60 + 1)):
        assert runner.invoke(cli, ["reset-password", EMAIL, "--db", url, "--valid-minutes", minutes]).exit_code == 2
    with sessions(engine)() as s:
        assert s.scalars(select(Invite).where(Invite.owner_id.is_not(None))).all() == []


def test_the_migration_goes_down_and_up_keeping_sign_up_invites(engine: Engine) -> None:
    client = client_for(engine)
    sign_up(client, EMAIL)
    reset_link(engine)
    with sessions(engine)() as s, s.begin():
        invite = new_invite(s, utcnow())
    cfg = Config()
    cfg.set_main_option("script_location", str(cloud_db.__file__).replace("db.py", "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0011")
    with engine.connect() as conn:
        hashes = list(conn.execute(text("SELECT token_hash FROM invites")).scalars())
    assert hashes == [hashlib.sha256(invite.encode()).hexdigest()]  # the reset went, the invite stayed
    upgrade(engine)
    token = reset_link(engine)
    assert reset(client_for(engine), token) == (303, "/login?done=password-reset")
    signed = client_for(engine, open_signup=False).post(
        "/api/owners", json={"email": "ivan@example.org", "password": PASSWORD, "invite": invite})
    assert signed.status_code == 201
