import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest

from limen import thresholds as T
from limen.clock import FixedClock
from limen.config import Settings
from limen.db import open_db
from limen.errors import BadRequest
from limen.service import accounts as accounts_module
from limen.service.accounts import Accounts, Scope


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


def test_weak_passwords_and_a_second_setup_are_refused(accounts: Accounts) -> None:
    token = accounts.new_setup_token()
    with pytest.raises(BadRequest):
        accounts.create_first_owner(token, "alice", "short", "u1")
    assert accounts.setup_token_valid(token)  # nothing was used up
    accounts.create_first_owner(token, "alice", "a long password", "u1")
    with pytest.raises(BadRequest, match="setup link"):  # once there is an owner, setup makes no other account
        accounts.create_first_owner(accounts.new_setup_token(), "bob", "another long one", "u2")


def test_login_checks_password_and_totp(accounts: Accounts, settings: Settings, clock: FixedClock) -> None:
    secret = pyotp.random_base32()
    accounts.create_first_owner(accounts.new_setup_token(), "alice", "a long password", "u1", secret)
    assert b"a long password" not in Path(settings.db_path).read_bytes()
    assert accounts.login("alice", "wrong password!") is None
    assert accounts.login("nobody", "a long password") is None
    now = pyotp.TOTP(secret).at(clock.now())  # the service's clock decides the time step
    assert accounts.login("alice", "a long password", "000000" if now != "000000" else "111111") is None
    owner = accounts.login("alice", "a long password", now)
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


def test_api_tokens_carry_scopes_and_work_until_revoked_or_expired(accounts: Accounts, clock: FixedClock) -> None:
    owner = accounts.create_first_owner(accounts.new_setup_token(), "alice", "a long password", "u1")
    token_id, token = accounts.issue_token(owner, "home automation", {Scope.READ, Scope.UNLOCK}, days=2)
    grant = accounts.token_grant(token)
    assert grant is not None and grant.owner == owner and grant.scopes == {Scope.READ, Scope.UNLOCK}
    assert accounts.tokens(owner)[0]["last_used"] is not None
    assert accounts.tokens(owner)[0]["scopes"] == ["read", "unlock"]
    assert accounts.token_grant(token[:-1] + ("A" if token[-1] != "A" else "B")) is None  # same id, wrong secret
    clock.advance(2 * 86400)
    assert accounts.token_grant(token) is None and accounts.tokens(owner)[0]["expired"] is True
    _, second = accounts.issue_token(owner, "second", {Scope.READ}, days=1)
    other_id = accounts.tokens(owner)[1]["id"]
    accounts.revoke_token(owner, str(other_id))
    assert accounts.token_grant(second) is None
    assert token_id != other_id


def test_tokens_need_a_scope_and_a_bounded_lifetime(accounts: Accounts) -> None:
    owner = accounts.create_first_owner(accounts.new_setup_token(), "alice", "a long password", "u1")
    with pytest.raises(BadRequest):
        accounts.issue_token(owner, "x", set(), days=1)
    with pytest.raises(BadRequest):
        accounts.issue_token(owner, "x", {Scope.READ}, days=T.SERVICE_TOKEN_MAX_DAYS + 1)


def test_a_totp_code_is_accepted_once(accounts: Accounts, clock: FixedClock) -> None:
    secret = pyotp.random_base32()
    accounts.create_first_owner(accounts.new_setup_token(), "alice", "a long password", "u1", secret)
    code = pyotp.TOTP(secret).at(clock.now())
    assert accounts.login("alice", "a long password", code) is not None
    assert accounts.login("alice", "a long password", code) is None  # replayed within its window
    clock.advance(30)
    assert accounts.login("alice", "a long password", code) is None  # an older step than the one used
    assert accounts.login("alice", "a long password", pyotp.TOTP(secret).at(clock.now())) is not None


def test_step_up_needs_the_password_and_lapses(accounts: Accounts, clock: FixedClock) -> None:
    owner = accounts.create_first_owner(accounts.new_setup_token(), "alice", "a long password", "u1")
    sid, session = accounts.open_session(owner)
    assert not session.stepped_up(clock.now())
    assert not accounts.step_up(sid, "wrong password")
    assert accounts.step_up(sid, "a long password")
    fresh = accounts.session(sid)
    assert fresh is not None and fresh.stepped_up(clock.now())
    clock.advance(T.SERVICE_STEP_UP_S + 1)
    assert not fresh.stepped_up(clock.now())


def test_pairing_links_work_once_and_expire(accounts: Accounts, clock: FixedClock) -> None:
    owner = accounts.create_first_owner(accounts.new_setup_token(), "alice", "a long password", "u1")
    _, link = accounts.pair_kiosk(owner, "tablet")
    assert not accounts.kiosk_paired(link)  # the link itself is not a door-screen credential
    cookie = accounts.redeem_pairing(link)
    assert cookie is not None and accounts.kiosk_paired(cookie) and cookie != link
    assert accounts.redeem_pairing(link) is None  # single use
    _, late = accounts.pair_kiosk(owner, "late tablet")
    clock.advance(T.SERVICE_PAIRING_TTL_S + 1)
    assert accounts.redeem_pairing(late) is None


class _CountingHasher:
    """Wraps the real hasher, counting how many verifications run at once."""

    def __init__(self, real: object) -> None:
        self.real, self.now, self.most = real, 0, 0
        self._lock = threading.Lock()
        self.memory_cost = 65536

    def hash(self, password: str) -> str:
        return self.real.hash(password)  # type: ignore[attr-defined, no-any-return]

    def verify(self, password_hash: str, password: str) -> bool:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(0.05)  # long enough for the other threads to arrive
            return self.real.verify(password_hash, password)  # type: ignore[attr-defined, no-any-return]
        finally:
            with self._lock:
                self.now -= 1


def test_concurrent_logins_hash_one_at_a_time(accounts: Accounts, monkeypatch: pytest.MonkeyPatch) -> None:
    accounts.create_first_owner(accounts.new_setup_token(), "alice", "a long password", "u1")
    counting = _CountingHasher(accounts_module._HASHER)
    monkeypatch.setattr(accounts_module, "_HASHER", counting)
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(accounts.login("alice", "wrong password!") is None))
               for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 5
    assert counting.most == accounts_module.PASSWORD_CHECKS_AT_ONCE == 1  # 64 MiB each: one at a time
