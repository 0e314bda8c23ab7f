"""The owner API: accounts, locks, history, alarms with acknowledge, relay of signed commands."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from limen import thresholds as T
from limen.clock import FixedClock
from limen.link.forward import claim_hash
from limen.service.ratelimit import RateLimiter
from limen_cloud.api import create_app
from limen_cloud.db import sessions
from limen_cloud.models import Alarm, Lock, Record

PASSWORD = "correct horse battery"


def connected(engine: Engine, lock_id: str, code: str) -> None:
    """What the bridge records when a lock first forwards: an unowned lock and the hash of its claim code."""
    with sessions(engine)() as s, s.begin():
        s.add(Lock(lock_id=lock_id, owner_id=None, name=lock_id, head_count=0, reported_count=0,
                   claim_hash=claim_hash(code)))


def login(client: TestClient, email: str) -> dict[str, str]:
    assert client.post("/api/owners", json={"email": email, "password": PASSWORD}).status_code == 201
    token = client.post("/api/sessions", json={"email": email, "password": PASSWORD}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def test_owner_journey_and_isolation(engine: Engine) -> None:
    relayed: list[tuple[str, bytes]] = []
    client = TestClient(create_app(engine, lambda lock, payload: relayed.append((lock, payload)), open_signup=True))
    olga = login(client, "olga@example.org")
    assert client.post("/api/owners", json={"email": "OLGA@example.org", "password": PASSWORD}).status_code == 409
    assert client.post("/api/sessions", json={"email": "olga@example.org", "password": "wrong password!"}
                       ).status_code == 401
    assert client.post("/api/sessions", json={"email": "nobody@example.org", "password": PASSWORD}
                       ).status_code == 401
    assert client.get("/api/locks").status_code == 401
    assert client.get("/api/locks", headers={"Authorization": "Bearer forged"}).status_code == 401

    connected(engine, "front-door", "abc-def-123")
    wrong = client.post("/api/locks", json={"lock_id": "front-door", "name": "Front", "claim_code": "abc-def-124"},
                        headers=olga)
    unknown = client.post("/api/locks", json={"lock_id": "back-door", "name": "Back", "claim_code": "abc-def-123"},
                          headers=olga)
    assert wrong.status_code == unknown.status_code == 404 and wrong.json() == unknown.json()
    claim = {"lock_id": "front-door", "name": "Front", "claim_code": " ABC-def-123 "}
    assert client.post("/api/locks", json=claim, headers=olga).status_code == 201
    assert client.post("/api/locks", json=claim, headers=olga).status_code == 404  # one owner, one time
    with sessions(engine)() as s, s.begin():
        s.add(Record(lock_id="front-door", idx=0, hash="a" * 64, kind="unlock_attempt", at="2026-03-02T09:00:00",
                     body='{"index": 0, "kind": "unlock_attempt"}'))
        s.add(Alarm(lock_id="front-door", rule="audit_truncated", detail="cut back", raised_at=datetime(2026, 3, 2)))
    locks = client.get("/api/locks", headers=olga).json()
    assert locks[0]["lock_id"] == "front-door" and locks[0]["pending_alarms"] == 1
    assert (locks[0]["bolt"], locks[0]["door"], locks[0]["online"]) == ("unknown", "unknown", False)
    assert client.get("/api/events", headers=olga).json()[0]["kind"] == "unlock_attempt"
    alarm = client.get("/api/alarms", headers=olga).json()[0]
    with sessions(engine)() as s, s.begin():
        s.add(Record(lock_id="front-door", idx=1, hash="b" * 64, kind="lock_state", at="2026-03-02T09:00:01",
                     body='{"index": 1, "kind": "lock_state", "data": {"state": "jammed"}}'))
        s.add(Record(lock_id="front-door", idx=2, hash="c" * 64, kind="tamper", at="2026-03-02T09:00:02",
                     body='{"index": 2, "kind": "tamper", "at": "2026-03-02T09:00:02"}'))
        s.get(Lock, "front-door").last_seen = datetime.now(UTC).replace(tzinfo=None)  # type: ignore[union-attr]
    state = client.get("/api/locks", headers=olga).json()[0]
    assert (state["bolt"], state["online"], state["last_tamper"]) == ("jammed", True, "2026-03-02T09:00:02")

    mallory = login(client, "mallory@example.org")
    assert client.get("/api/events", headers=mallory).json() == []
    assert client.post(f"/api/alarms/{alarm['id']}/ack", headers=mallory).status_code == 404
    assert client.post("/api/locks/front-door/commands", json={"payload": "{}"}, headers=mallory).status_code == 404

    acked = client.post(f"/api/alarms/{alarm['id']}/ack", headers=olga).json()
    assert acked["acknowledged_at"] is not None
    assert client.get("/api/alarms", headers=olga).json() == []
    assert len(client.get("/api/alarms?pending=false", headers=olga).json()) == 1

    sent = client.post("/api/locks/front-door/commands", json={"payload": '{"v":1,"body":"{}","sig":"AA=="}'},
                       headers=olga)
    assert sent.status_code == 202 and relayed == [("front-door", b'{"v":1,"body":"{}","sig":"AA=="}')]
    too_big = client.post("/api/locks/front-door/commands", json={"payload": "x" * 10_000}, headers=olga)
    assert too_big.status_code == 422 and len(relayed) == 1


def test_no_broker_means_no_relay_and_openapi_is_served(engine: Engine) -> None:
    client = TestClient(create_app(engine, open_signup=True))
    olga = login(client, "olga@example.org")
    connected(engine, "front-door", "abc-def-123")
    client.post("/api/locks", json={"lock_id": "front-door", "name": "Front", "claim_code": "abc-def-123"},
                headers=olga)
    assert client.post("/api/locks/front-door/commands", json={"payload": "{}"}, headers=olga).status_code == 503
    assert "/api/alarms/{alarm_id}/ack" in client.get("/openapi.json").json()["paths"]
    assert client.post("/api/owners", json={"email": "short@example.org", "password": "short"}).status_code == 422



def frozen_login(app: FastAPI) -> FastAPI:
    """`app` with its log-in buckets on a clock that does not move: a failed log-in costs an Argon2id verify, and
    on a loaded machine eleven of them took longer than the 12 s in which a bucket refills a token (no 429)."""
    app.state.limiter = RateLimiter(T.CLOUD_LOGIN_PER_MIN, T.CLOUD_LOGIN_BURST, T.CLOUD_LOGIN_GLOBAL_PER_MIN,
                                    clock=FixedClock(datetime(2026, 12, 1, tzinfo=UTC)))
    return app


def test_log_in_attempts_are_rate_limited(engine: Engine) -> None:
    client = TestClient(frozen_login(create_app(engine, open_signup=True)))
    wrong = {"email": "nobody@example.org", "password": "wrong password!"}
    codes = [client.post("/api/sessions", json=wrong).status_code for _ in range(12)]
    assert codes[0] == 401 and codes[-1] == 429
    limited = client.post("/api/sessions", json=wrong)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
