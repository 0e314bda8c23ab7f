from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest

from limen import thresholds as T
from limen.clock import FixedClock
from limen.config import Settings
from limen.db import open_db
from limen.errors import BadRequest, Conflict
from limen.service.accounts import Accounts


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))


@pytest.fixture
def accounts(settings: Settings, clock: FixedClock) -> Accounts:
    conn = open_db(settings.db_path)
    conn.execute("INSERT INTO users(id, name, created_at, created_by) VALUES ('u1', 'Alice', 'now', 'test')")
    return Accounts(conn, clock)


def test_setup_token_is_single_use_and_stored_hashed(accounts: Accounts, settings: Settings) -> None:
    token = accounts.new_setup_token()
    assert accounts.setup_token_valid(token)
    assert token.encode() not in Path(settings.db_path).read_bytes()
    accounts.create_first_owner(token, "alice", "a long password", "u1")
    assert not accounts.setup_token_valid(token)
    with pytest.raises(BadRequest):
        accounts.create_first_owner(token, "mallory", "another password", "u1")


def test_a_new_token_replaces_the_old_one(accounts: Accounts) -> None:
    first = accounts.new_setup_token()
    second = accounts.new_setup_token()
    assert not accounts.setup_token_valid(first)
    assert accounts.setup_token_valid(second)


def test_weak_passwords_and_duplicate_names_are_refused(accounts: Accounts) -> None:
    token = accounts.new_setup_token()
    with pytest.raises(BadRequest):
        accounts.create_first_owner(token, "alice", "short", "u1")
    assert accounts.setup_token_valid(token)  # nothing was used up
    accounts.create_first_owner(token, "alice", "a long password", "u1")
    with pytest.raises(Conflict):
        accounts.add_owner("alice", "another long one", "u1")


def test_login_checks_password_and_totp(accounts: Accounts, settings: Settings) -> None:
    secret = pyotp.random_base32()
    accounts.create_first_owner(accounts.new_setup_token(), "alice", "a long password", "u1", secret)
    assert b"a long password" not in Path(settings.db_path).read_bytes()
    assert accounts.login("alice", "wrong password!") is None
    assert accounts.login("nobody", "a long password") is None
    assert accounts.login("alice", "a long password", "000000" if pyotp.TOTP(secret).now() != "000000"
                          else "111111") is None
    owner = accounts.login("alice", "a long password", pyotp.TOTP(secret).now())
    assert owner is not None and owner.user_id == "u1" and owner.totp


def test_sessions_expire_when_idle_and_after_their_lifetime(accounts: Accounts, clock: FixedClock) -> None:
    owner = accounts.create_first_owner(accounts.new_setup_token(), "alice", "a long password", "u1")
    sid, session = accounts.open_session(owner)
    assert accounts.session(sid) is not None
    clock.advance(T.SERVICE_SESSION_IDLE_S + 1)
    assert accounts.session(sid) is None
    assert accounts.session(sid) is None  # deleted, not revived
    sid, _ = accounts.open_session(owner)
    steps = int(T.SERVICE_SESSION_TTL_S // (T.SERVICE_SESSION_IDLE_S / 2)) + 1
    alive = 0
    for _ in range(steps):
        clock.advance(T.SERVICE_SESSION_IDLE_S / 2)
        alive += accounts.session(sid) is not None
    assert alive < steps and accounts.session(sid) is None
    assert accounts.session("not-a-session") is None


def test_api_tokens_work_until_revoked(accounts: Accounts) -> None:
    owner = accounts.create_first_owner(accounts.new_setup_token(), "alice", "a long password", "u1")
    token_id, token = accounts.issue_token(owner, "home automation")
    assert accounts.token_owner(token) == owner
    assert accounts.tokens(owner)[0]["last_used"] is not None
    accounts.revoke_token(owner, token_id)
    assert accounts.token_owner(token) is None
