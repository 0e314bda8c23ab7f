"""Fixtures for the lock service: an app on a fresh data directory and an owner already set up."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from limen.config import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from limen.service import close_app, create_app

BASE = "http://127.0.0.1:8080"
LOCAL = ("127.0.0.1", 50000)  # requests come from the lock itself (the door screen runs there)


def make_client(app: object, client: tuple[str, int] = LOCAL) -> TestClient:
    return TestClient(app, base_url=BASE, client=client)  # type: ignore[arg-type]
PASSWORD = "correct horse battery staple"
PIN = "482915"


@dataclass
class Owner:
    client: TestClient
    csrf: str
    user_id: str

    def api(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf}

    def step_up(self, totp: str = "") -> None:
        """Confirm the password (+ TOTP) as minting tokens and changing PINs require."""
        r = self.client.post("/api/step-up", json={"password": PASSWORD, "totp": totp}, headers=self.api())
        assert r.status_code == 200, r.text

    def token(self, *scopes: str, days: int | None = None) -> str:
        self.step_up()
        body: dict[str, object] = {"name": "integration", "scopes": list(scopes or ("read",))}
        if days is not None:
            body["days"] = days
        r = self.client.post("/api/tokens", json=body, headers=self.api())
        assert r.status_code == 200, r.text
        return str(r.json()["token"])


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found, "page has no CSRF token"
    return found.group(1)


def do_setup(client: TestClient, username: str = "alice", pin: str = PIN) -> Owner:
    token = client.app.state.ctx.setup_token  # type: ignore[attr-defined]
    r = client.post("/setup", data={"token": token, "username": username, "password": PASSWORD,
                                    "password2": PASSWORD, "name": username.title(), "pin": pin})
    assert r.status_code == 200, r.text[:500]
    csrf = csrf_of(r.text)
    me = client.get("/api/users").json()
    assert client.get("/kiosk").status_code == 200  # this browser on the lock is also its door screen
    return Owner(client, csrf, next(u["user_id"] for u in me if u["permission"] == "owner"))


@pytest.fixture
def app(settings: Settings) -> Iterator[object]:
    application = create_app(settings)
    yield application
    close_app(application)


@pytest.fixture
def client(app: object) -> Iterator[TestClient]:
    with make_client(app) as c:
        yield c


@pytest.fixture
def owner(client: TestClient) -> Owner:
    return do_setup(client)
