"""The console's password confirmation is rate-limited and ends the session after a few wrong ones (review, 2).

`confirm_owner` checked the password with no limit: 12 wrong passwords to
`POST /owner/users/<owner>/week-day` were 12 × 403, never 429 (the API's step-up gave 429 after 5), so a
stolen console cookie could guess the owner's password without end.  Now each password tried spends a login
attempt, and `SERVICE_STEP_UP_MAX_FAILURES` wrong ones in a row for the account — from any address — end the
session.
"""

from __future__ import annotations

import warnings

from limen import thresholds as T
from limen.service.auth import COOKIE
from limen.service.ratelimit import RateLimiter

from .conftest import PASSWORD, Owner, make_client

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

WEEK_DAY = {"index": "1", "days": "mon", "start": "07:00", "end": "19:00"}


def confirm(client: TestClient, owner: Owner, password: str) -> int | str:
    """The answer's status, or where it redirects (the person's page when done, the login page otherwise)."""
    r = client.post(f"/owner/users/{owner.user_id}/week-day", data={**WEEK_DAY, "csrf": owner.csrf,
                                                                     "password": password},
                    follow_redirects=False)
    return r.headers["location"].split("?")[0] if r.status_code == 303 else r.status_code


def test_a_confirmation_spends_a_login_attempt(client: TestClient, owner: Owner) -> None:
    limiter = client.app.state.ctx.login_limiter  # type: ignore[attr-defined]
    while limiter.allow("127.0.0.1") == 0:  # this address has tried its burst of passwords
        pass
    assert confirm(client, owner, PASSWORD) == 429  # refused before any password is checked
    assert client.get("/owner", follow_redirects=False).status_code == 200  # and not counted against the session


def test_twelve_wrong_confirmations_check_at_most_a_few_passwords(client: TestClient, owner: Owner) -> None:
    codes = [confirm(client, owner, "not the owner's password") for _ in range(12)]
    assert codes.count(403) <= T.SERVICE_STEP_UP_MAX_FAILURES - 1, codes  # then a 429 or the session ended
    assert set(codes) <= {403, 429, "/login"} and codes[-1] in (429, "/login"), codes


def roomy_global_bucket(client: TestClient) -> None:
    """The login limiter with a global bucket no test run empties: these tests are about the per-account count,
    and the global bucket (5 at once, refilled 0.5 a second) emptied or not depending on how fast the machine ran
    them (429 on a quiet CI machine)."""
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    ctx.login_limiter = RateLimiter(T.SERVICE_LOGIN_RATE_PER_MIN, T.SERVICE_LOGIN_BURST, 6000.0, ctx.clock)


def test_wrong_confirmations_from_many_addresses_end_the_session(client: TestClient, owner: Owner) -> None:
    roomy_global_bucket(client)
    sid = client.cookies.get(COOKIE)
    codes = []
    for n in range(T.SERVICE_STEP_UP_MAX_FAILURES):  # one try per address: no address meets its limit
        with make_client(client.app, (f"198.51.100.{n + 1}", 40000)) as thief:
            thief.cookies.set(COOKIE, sid)
            codes.append(confirm(thief, owner, f"guess {n}"))
    assert codes == [403] * (T.SERVICE_STEP_UP_MAX_FAILURES - 1) + ["/login"]  # the last: log in again
    r = client.get("/owner", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")  # the session is gone
    assert confirm(client, owner, PASSWORD) == "/login"  # even the right password: log in again first


def test_a_right_confirmation_resets_the_count(client: TestClient, owner: Owner) -> None:
    roomy_global_bucket(client)
    for _ in range(T.SERVICE_STEP_UP_MAX_FAILURES - 1):
        assert confirm(client, owner, "not the owner's password") == 403
    with make_client(client.app, ("198.51.100.77", 40000)) as same_owner:
        same_owner.cookies.set(COOKIE, client.cookies.get(COOKIE))
        assert confirm(same_owner, owner, PASSWORD) == f"/owner/users/{owner.user_id}"  # accepted
        assert same_owner.get("/owner", follow_redirects=False).status_code == 200
