"""Deleting a lock's backup in the cloud needs the password (and authenticator code) again and alarms the owner
(review finding: `DELETE /api/locks/{id}/backups/{bid}` with only a session token answered 204 — a stolen session
deleted the backups, the only way to restore a smashed lock — and nobody heard of it)."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from limen_cloud.api import create_app, utcnow
from limen_cloud.db import sessions
from limen_cloud.models import Alarm, Backup, Owner

from .test_alert_step_up import EMAIL, claim
from .test_api import PASSWORD, login

LOCK = "front-door"
BACKUP_DELETED = "backup_deleted"  # the owner's alarm (limen_cloud.backups)


def backups(engine: Engine) -> list[int]:
    """The counters of the lock's backups held."""
    with sessions(engine)() as s:
        return list(s.scalars(select(Backup.counter).where(Backup.lock_id == LOCK).order_by(Backup.counter)))


def held(engine: Engine, *counters: int) -> dict[int, int]:
    """Backups the lock uploaded (opaque blobs here: the route never reads them); {counter: id}."""
    with sessions(engine)() as s, s.begin():
        rows = [Backup(lock_id=LOCK, counter=c, sha256=hashlib.sha256(b"%d" % c).hexdigest(), size=1,
                       created_at=f"2026-11-{c:02d}T03:00:00+00:00", received_at=utcnow(), blob=b"%d" % c)
                for c in counters]
        s.add_all(rows)
        s.flush()
        return {r.counter: r.id for r in rows}


def alarms(engine: Engine) -> list[str]:
    with sessions(engine)() as s:
        return [a.detail for a in s.scalars(select(Alarm).where(Alarm.rule == BACKUP_DELETED).order_by(Alarm.id))]


def test_deleting_a_backup_needs_the_password_and_alarms_the_owner(engine: Engine,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    client = TestClient(create_app(engine, open_signup=True))
    olga = login(client, EMAIL)
    claim(engine, client, olga, LOCK)
    ids = held(engine, 1, 2)
    newest = f"/api/locks/{LOCK}/backups/{ids[2]}"
    assert client.delete(newest, headers=olga).status_code == 403  # the session alone
    r = client.request("DELETE", newest, json={"password": "not the password"}, headers=olga)
    assert r.status_code == 403 and "password" in r.json()["detail"]
    assert backups(engine) == [1, 2] and alarms(engine) == []
    with caplog.at_level(logging.WARNING, logger="limen_cloud.backups"):
        assert client.request("DELETE", newest, json={"password": PASSWORD}, headers=olga).status_code == 204
    assert backups(engine) == [1]
    [detail] = alarms(engine)
    assert "backup 2" in detail and "the newest" in detail and "1 backup(s) of this lock left" in detail
    assert "deleted backup" in caplog.text and "the newest" in caplog.text
    older = f"/api/locks/{LOCK}/backups/{ids[1]}"
    assert client.request("DELETE", older, json={"password": PASSWORD}, headers=olga).status_code == 204
    assert backups(engine) == [] and "0 backup(s) of this lock left" in alarms(engine)[-1]


def test_with_an_authenticator_deleting_a_backup_asks_a_fresh_code(engine: Engine) -> None:
    client = TestClient(create_app(engine, open_signup=True))
    olga = login(client, EMAIL)
    claim(engine, client, olga, LOCK)
    ids = held(engine, 1)
    with sessions(engine)() as s, s.begin():
        owner = s.scalar(select(Owner).where(Owner.email == EMAIL))
        assert owner is not None
        owner.totp_secret = secret = pyotp.random_base32()
    url = f"/api/locks/{LOCK}/backups/{ids[1]}"
    assert client.request("DELETE", url, json={"password": PASSWORD}, headers=olga).status_code == 403
    code = pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30))
    assert client.request("DELETE", url, json={"password": PASSWORD, "totp": code}, headers=olga).status_code == 204
    assert backups(engine) == []

