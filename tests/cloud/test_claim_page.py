"""Claiming a lock on the owner's pages with the one-time code the lock showed (same check as the API)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from limen import thresholds as T
from limen_cloud.api import create_app
from limen_cloud.db import sessions
from limen_cloud.models import Lock

from .test_api import connected, frozen_login
from .test_pages import ORIGIN, csrf_of, log_in, sign_up

CODE = "02e2fd-bfead1-25dff7"


def owner_of(engine: Engine, lock_id: str) -> int | None:
    with sessions(engine)() as s:
        lock = s.get(Lock, lock_id)
        assert lock is not None
        return lock.owner_id


def page_client(engine: Engine, address: str) -> TestClient:
    return TestClient(create_app(engine, open_signup=True), base_url=ORIGIN, follow_redirects=False,
                      client=(address, 40000))


def test_claim_a_lock_on_the_pages(engine: Engine) -> None:
    client = page_client(engine, "198.51.100.20")
    sign_up(client, "olga@example.org")
    log_in(client, "olga@example.org")
    connected(engine, "front-door", CODE)
    page = client.get("/locks")
    assert 'action="/locks/claim"' in page.text and "No lock yet" in page.text
    csrf = csrf_of(page.text)

    form = {"csrf": csrf, "lock_id": "front-door", "name": "Front door", "claim_code": "02e2fd-bfead1-000000"}
    wrong = client.post("/locks/claim", data=form)
    assert wrong.status_code == 404 and "No unclaimed lock with this id and code" in wrong.text
    assert "02e2fd-bfead1-000000" not in wrong.text  # the code typed is not echoed
    assert owner_of(engine, "front-door") is None
    unknown = client.post("/locks/claim", data={**form, "lock_id": "back-door", "claim_code": CODE})
    assert unknown.status_code == 404 and unknown.text.count("No unclaimed lock") == 1
    assert client.post("/locks/claim", data={**form, "claim_code": CODE, "csrf": "0" * 64}).status_code == 403
    assert client.post("/locks/claim", data={**form, "claim_code": CODE},
                       headers={"Origin": "https://evil.example"}).status_code == 403
    assert owner_of(engine, "front-door") is None

    done = client.post("/locks/claim", data={**form, "claim_code": CODE})
    assert done.status_code == 303 and done.headers["location"] == "/locks?done=claimed"
    listed = client.get("/locks?done=claimed")
    assert "Lock claimed" in listed.text and 'data-lock="front-door"' in listed.text and "Front door" in listed.text
    assert owner_of(engine, "front-door") is not None

    mallory = page_client(engine, "198.51.100.21")  # the code is spent: nobody else can take the lock
    sign_up(mallory, "mallory@example.org")
    log_in(mallory, "mallory@example.org")
    again = mallory.post("/locks/claim", data={"csrf": csrf_of(mallory.get("/locks").text), "lock_id": "front-door",
                                               "name": "Mine", "claim_code": CODE})
    assert again.status_code == 404 and 'data-lock="front-door"' not in mallory.get("/locks").text


def test_claim_page_needs_a_session_and_valid_fields(engine: Engine) -> None:
    client = page_client(engine, "198.51.100.22")
    connected(engine, "front-door", CODE)
    anonymous = client.post("/locks/claim", data={"csrf": "x", "lock_id": "front-door", "name": "F",
                                                  "claim_code": CODE})
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login"
    sign_up(client, "olga@example.org")
    log_in(client, "olga@example.org")
    csrf = csrf_of(client.get("/locks").text)
    bad = client.post("/locks/claim", data={"csrf": csrf, "lock_id": "front door/../x", "name": "F",
                                            "claim_code": CODE})
    assert bad.status_code == 422 and owner_of(engine, "front-door") is None


def test_claim_guesses_on_the_page_are_rate_limited(engine: Engine) -> None:
    client = page_client(engine, "198.51.100.23")
    frozen_login(client.app)  # type: ignore[arg-type]  # sign-up and log-in take real time: no refill meanwhile
    sign_up(client, "olga@example.org")
    log_in(client, "olga@example.org")  # takes one log-in token of this address
    connected(engine, "front-door", CODE)
    csrf = csrf_of(client.get("/locks").text)
    codes = [client.post("/locks/claim", data={"csrf": csrf, "lock_id": "front-door", "name": "F",
                                               "claim_code": f"guess-{i:06d}"}).status_code
             for i in range(T.CLOUD_LOGIN_BURST)]
    assert codes[:T.CLOUD_LOGIN_BURST - 1] == [404] * (T.CLOUD_LOGIN_BURST - 1) and codes[-1] == 429
    # even the right code waits now: guessing cannot go faster than the limit
    late = client.post("/locks/claim", data={"csrf": csrf, "lock_id": "front-door", "name": "F", "claim_code": CODE})
    assert late.status_code == 429 and int(late.headers["Retry-After"]) >= 1 and owner_of(engine, "front-door") is None
