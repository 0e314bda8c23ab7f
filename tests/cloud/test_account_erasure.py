"""The owner's own cloud account: erased with the password and authenticator code again (refused while it holds a
lock), answered with a receipt signed by the cloud's receipt key; exported without secrets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text

from limen.errors import BadRequest
from limen_cloud.account import verify_account_receipt
from limen_cloud.api import create_app, new_reset
from limen_cloud.backups import _erase_lock
from limen_cloud.db import sessions
from limen_cloud.models import Base, Erasure, Lock, Owner, PushSubscription

from .test_api import PASSWORD, connected
from .test_pages import ORIGIN, csrf_of, log_in
from .test_pages import sign_up as page_sign_up

CHANNEL = "ntfy://ntfy.example.org/olga-secret-topic-4711"
WEBHOOK = "https://hooks.example.org/olga-hook-path"
WEBHOOK_SECRET = "ab" * 32
ENDPOINT = "https://push.example.net/send/olga-endpoint-capability"


def sign_up(client: TestClient, email: str) -> dict[str, str]:
    assert client.post("/api/owners", json={"email": email, "password": PASSWORD}).status_code == 201
    token = client.post("/api/sessions", json={"email": email, "password": PASSWORD}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def furnish(engine: Engine, email: str) -> tuple[int, str]:
    """An account with everything the cloud keeps of one: channel, webhook and secret, TOTP seed, a browser, a reset
    link, an erasure receipt (sessions and a command address come from the API)."""
    seed = pyotp.random_base32()
    with sessions(engine)() as s, s.begin():
        owner = s.scalars(select(Owner).where(Owner.email == email)).one()
        owner.alert_urls, owner.webhook_url, owner.webhook_secret = f'["{CHANNEL}"]', WEBHOOK, WEBHOOK_SECRET
        owner.totp_secret = seed
        s.add(PushSubscription(owner_id=owner.id, endpoint=ENDPOINT, p256dh="B" * 87, auth="A" * 22,
                               label="Olga's phone", created_at=datetime(2026, 3, 1), cursor=0, attempts=0))
        new_reset(s, owner, datetime.now(UTC).replace(tzinfo=None))
        s.add(Erasure(lock_id="old-door", owner_id=owner.id, user_ref="*", scope="lock", at=datetime(2026, 3, 1),
                      receipt='{"lock": {}, "cloud": {}}'))
        return owner.id, seed


def every_row(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [(table.name, repr(tuple(row))) for table in Base.metadata.sorted_tables
                for row in conn.execute(table.select())]


def test_the_owner_erases_the_account_and_gets_a_signed_receipt(engine: Engine) -> None:
    key = Ed25519PrivateKey.generate()
    app = create_app(engine, lambda lock, payload: None, open_signup=True, receipt_key=key)
    client = TestClient(app, client=("198.51.100.7", 40000))
    olga = sign_up(client, "olga@example.org")
    max_ = sign_up(client, "max@example.org")
    connected(engine, "front-door", "abc-def-123")
    assert client.post("/api/locks", json={"lock_id": "front-door", "name": "Front", "claim_code": "abc-def-123"},
                       headers=olga).status_code == 201
    olga_id, seed = furnish(engine, "olga@example.org")
    totp = pyotp.TOTP(seed)

    exported = client.get("/api/owners/me/export", headers=olga)
    assert exported.status_code == 200
    data = exported.json()
    assert data["account"]["email"] == "olga@example.org" and data["account"]["authenticator_enrolled"]
    assert data["account"]["alarm_channels"] and data["account"]["webhook_host"] == "hooks.example.org"
    assert data["browsers"][0]["label"] == "Olga's phone" and data["locks"][0]["lock_id"] == "front-door"
    assert data["command_addresses"][0]["address"] == "198.51.100.7" and len(data["erasures"]) == 1
    for secret in (CHANNEL, "olga-secret-topic", WEBHOOK, WEBHOOK_SECRET, seed, ENDPOINT, "argon2"):
        assert secret not in exported.text, secret

    wrong = client.request("DELETE", "/api/owners/me", json={"password": "not the password", "totp": totp.now()},
                           headers=olga)
    no_code = client.request("DELETE", "/api/owners/me", json={"password": PASSWORD}, headers=olga)
    assert wrong.status_code == no_code.status_code == 403
    held = client.request("DELETE", "/api/owners/me", json={"password": PASSWORD, "totp": totp.now()},
                          headers=olga)
    assert held.status_code == 409 and "front-door" in held.json()["detail"]
    with sessions(engine)() as s, s.begin():  # as the lock's signed decommission does (`erase_in_cloud`)
        lock = s.get(Lock, "front-door")
        assert lock is not None and lock.owner_id == olga_id
        _erase_lock(s, lock)

    step = totp.at(datetime.now(UTC) + timedelta(seconds=30))  # the code above was spent: the next step
    gone = client.request("DELETE", "/api/owners/me", json={"password": PASSWORD, "totp": step}, headers=olga)
    assert gone.status_code == 200, gone.text
    statement = verify_account_receipt(gone.json()["receipt"], key.public_key())
    erased = statement["erased"]["cloud"]
    assert statement["email"] == "olga@example.org" and statement["owner"] == olga_id
    assert erased["account"] == erased["totp_seed"] == erased["webhook"] == erased["alarm_channels"] == 1
    assert erased["browsers"] == erased["reset_links"] == erased["erasure_receipts"] == 1
    assert erased["sessions"] >= 1 and erased["command_addresses"] == 1
    with pytest.raises(BadRequest):
        verify_account_receipt(gone.json()["receipt"], Ed25519PrivateKey.generate().public_key())

    rows = every_row(engine)
    for secret in ("olga@example.org", CHANNEL, WEBHOOK, WEBHOOK_SECRET, seed, ENDPOINT, "Olga's phone",
                   "198.51.100.7"):
        assert not [t for t, r in rows if secret in r], secret
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for column in ("owner_id", "marked_by"):
                if column in table.c:
                    assert not conn.execute(select(table).where(table.c[column] == olga_id)).first(), table.name
        assert conn.execute(text("SELECT count(*) FROM owners")).scalar() == 1  # Max's
    assert client.get("/api/owners/me/export", headers=olga).status_code == 401
    assert client.post("/api/sessions", json={"email": "olga@example.org", "password": PASSWORD}).status_code == 401
    assert client.get("/api/owners/me/export", headers=max_).json()["account"]["email"] == "max@example.org"


def test_the_account_page_exports_and_deletes_with_the_password(engine: Engine) -> None:
    key = Ed25519PrivateKey.generate()
    client = TestClient(create_app(engine, open_signup=True, receipt_key=key), base_url=ORIGIN,
                        follow_redirects=False)
    page_sign_up(client, "olga@example.org")
    log_in(client, "olga@example.org")
    page = client.get("/account").text
    assert 'action="/account/delete"' in page and 'href="/account/export"' in page
    exported = client.get("/account/export")
    assert exported.status_code == 200 and exported.json()["account"]["email"] == "olga@example.org"
    good = {"csrf": csrf_of(page), "password": PASSWORD}
    assert client.post("/account/delete", data={**good, "csrf": "f" * 64}).status_code == 403
    assert client.post("/account/delete", data=good, headers={"Origin": "https://evil.example"}).status_code == 403
    wrong = client.post("/account/delete", data={**good, "password": "not the password"})
    assert wrong.status_code == 403 and "nothing was erased" in wrong.text
    done = client.post("/account/delete", data=good)
    assert done.status_code == 200 and "Account deleted" in done.text
    with sessions(engine)() as s:
        assert s.scalars(select(Owner)).first() is None
    assert client.get("/account", follow_redirects=False).status_code == 303  # logged out: no session left
