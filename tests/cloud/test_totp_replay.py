"""One authenticator code logs in once, also when the log-ins race (review finding: on PostgreSQL one code and
6 concurrent log-ins gave 6 × 201, the last TOTP step being read then written with no lock)."""

from __future__ import annotations

import threading

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from limen_cloud.api import create_app
from limen_cloud.db import sessions
from limen_cloud.models import Owner

from .test_api import PASSWORD
from .test_pages import ORIGIN

RACERS = 6
EMAIL = "olga@example.org"


def with_authenticator(engine: Engine, client: TestClient) -> str:
    assert client.post("/api/owners", json={"email": EMAIL, "password": PASSWORD}).status_code == 201
    with sessions(engine)() as s, s.begin():
        owner = s.scalar(select(Owner).where(Owner.email == EMAIL))
        assert owner is not None
        owner.totp_secret = pyotp.random_base32()
        return owner.totp_secret


def race(app: object, path: str, body: dict[str, str], as_json: bool) -> list[int]:
    """RACERS clients (each its own address: the rate limit is not what stops them) send `body` at once."""
    start = threading.Barrier(RACERS)
    codes: list[int] = []

    def one(i: int) -> None:
        client = TestClient(app, base_url=ORIGIN, client=(f"203.0.113.{i + 1}", 40000),  # type: ignore[arg-type]
                            follow_redirects=False)
        start.wait()
        answer = client.post(path, json=body) if as_json else client.post(path, data=body)
        codes.append(answer.status_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(codes)


@pytest.mark.parametrize(("path", "as_json", "won", "lost"), [
    ("/api/sessions", True, 201, 401), ("/login", False, 303, 401)], ids=["api", "page"])
def test_one_code_logs_in_once_under_concurrency(engine: Engine, path: str, as_json: bool, won: int,
                                                 lost: int) -> None:
    app = create_app(engine, open_signup=True)
    secret = with_authenticator(engine, TestClient(app, base_url=ORIGIN))
    code = pyotp.TOTP(secret).now()
    codes = race(app, path, {"email": EMAIL, "password": PASSWORD, "totp": code}, as_json)
    assert codes == sorted([won] + [lost] * (RACERS - 1)), codes
