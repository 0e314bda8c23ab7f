"""The cloud's half of "command from an unknown device or address": a command relayed for an account from an
address it never claimed a lock or sent a command from raises `remote_unknown_source` (once per address)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from limen.audit.anomaly import Rule
from limen_cloud.api import create_app
from limen_cloud.db import sessions
from limen_cloud.models import Alarm, CommandSource

from .test_api import PASSWORD, connected

PAYLOAD = {"payload": '{"v":1,"body":"{}","sig":"AA=="}'}


def client_at(app: FastAPI, address: str) -> TestClient:
    return TestClient(app, client=(address, 40000))


def alarms(engine: Engine) -> list[Alarm]:
    with sessions(engine)() as s:
        return list(s.scalars(select(Alarm).where(Alarm.rule == Rule.REMOTE_UNKNOWN.value).order_by(Alarm.id)))


def test_a_command_from_an_address_never_seen_for_the_owner_raises_the_remote_anomaly(engine: Engine) -> None:
    relayed: list[tuple[str, bytes]] = []
    app = create_app(engine, lambda lock, payload: relayed.append((lock, payload)), open_signup=True)
    home = client_at(app, "198.51.100.7")
    assert home.post("/api/owners", json={"email": "olga@example.org", "password": PASSWORD}).status_code == 201
    token = home.post("/api/sessions", json={"email": "olga@example.org", "password": PASSWORD}).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    connected(engine, "front-door", "abc-def-123")
    claim = {"lock_id": "front-door", "name": "Front", "claim_code": "abc-def-123"}
    assert home.post("/api/locks", json=claim, headers=auth).status_code == 201

    assert home.post("/api/locks/front-door/commands", json=PAYLOAD, headers=auth).status_code == 202
    assert alarms(engine) == []  # the address the lock was claimed from

    thief = client_at(app, "203.0.113.9")  # the same bearer token, used from elsewhere
    assert thief.post("/api/locks/front-door/commands", json=PAYLOAD, headers=auth).status_code == 202
    assert len(relayed) == 2  # relayed all the same: the lock verifies it
    raised = alarms(engine)
    assert len(raised) == 1 and raised[0].lock_id == "front-door" and "203.0.113.9" in raised[0].detail
    assert thief.post("/api/locks/front-door/commands", json=PAYLOAD, headers=auth).status_code == 202
    assert len(alarms(engine)) == 1  # one alarm per new address, not per command

    ipv6 = client_at(app, "2001:db8:1:2::10")
    assert ipv6.post("/api/locks/front-door/commands", json=PAYLOAD, headers=auth).status_code == 202
    same_net = client_at(app, "2001:db8:1:2::99")  # the same /64: one subscriber's network
    assert same_net.post("/api/locks/front-door/commands", json=PAYLOAD, headers=auth).status_code == 202
    assert len(alarms(engine)) == 2
    listed = home.get("/api/alarms", headers=auth).json()
    assert {a["rule"] for a in listed} == {"remote_unknown_source"}


def test_addresses_are_per_account(engine: Engine) -> None:
    app = create_app(engine, lambda lock, payload: None, open_signup=True)
    for email, address, lock in (("olga@example.org", "198.51.100.7", "front-door"),
                                 ("max@example.org", "198.51.100.8", "back-door")):
        client = client_at(app, address)
        assert client.post("/api/owners", json={"email": email, "password": PASSWORD}).status_code == 201
        token = client.post("/api/sessions", json={"email": email, "password": PASSWORD}).json()["token"]
        connected(engine, lock, "abc-def-123")
        assert client.post("/api/locks", json={"lock_id": lock, "name": lock, "claim_code": "abc-def-123"},
                           headers={"Authorization": f"Bearer {token}"}).status_code == 201
    with sessions(engine)() as s:
        assert len(s.scalars(select(CommandSource)).all()) == 2
    max_token = client_at(app, "198.51.100.8").post(
        "/api/sessions", json={"email": "max@example.org", "password": PASSWORD}).json()["token"]
    from_olgas = client_at(app, "198.51.100.7")  # Olga's address is not Max's
    assert from_olgas.post("/api/locks/back-door/commands", json=PAYLOAD,
                           headers={"Authorization": f"Bearer {max_token}"}).status_code == 202
    assert [a.lock_id for a in alarms(engine)] == ["back-door"]
