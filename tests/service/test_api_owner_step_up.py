"""A manage token cannot change the owners (review finding): replacing a face, removing an owner or
administrator, restricting their days or revoking their PIN needs the owner's session with step-up.

The attack from the review: from a manage token, another person's face replaced the owner's, the owner was
restricted to Mon 03:00–03:01, the owner's PIN was revoked and a co-owner was removed — each answered 200.
"""

from __future__ import annotations

import warnings
from typing import Any

from .conftest import PIN, Owner, make_client

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

MONDAY_NIGHT = {"index": 1, "days": ["mon"], "start": "03:00", "end": "03:01"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def add(owner: Owner, name: str, pin: str, permission: str) -> str:
    owner.step_up()
    r = owner.client.post("/api/users", json={"name": name, "pin": pin, "permission": permission},
                          headers=owner.api())
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def person(client: TestClient, user_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(u for u in client.get("/api/users").json() if u["user_id"] == user_id)
    return found


def pin_of(client: TestClient, user_id: str) -> str:
    return str(next(c["id"] for c in person(client, user_id)["credentials"] if c["type"] == "pin"))


def replace_face(client: TestClient, user_id: str, headers: dict[str, str]) -> Any:
    data = {"name": "x", "purpose": "opening the front door", "retention_days": "90", "consent": "true",
            "source": "upload", "user_id": user_id}
    return client.post("/api/users/enrol", data=data, headers=headers,
                       files=[("files", ("me.jpg", b"not decoded: refused before", "image/jpeg"))])


def test_a_manage_token_cannot_change_an_owner_or_administrator(client: TestClient, owner: Owner) -> None:
    co_owner = add(owner, "Bob", "503817", "owner")
    admin = add(owner, "Cleo", "619284", "administrator")
    token = owner.token("read", "manage")
    with make_client(client.app, ("203.0.113.7", 41000)) as attacker:
        for target in (owner.user_id, co_owner, admin):
            r = attacker.post(f"/api/users/{target}/week-days", json=MONDAY_NIGHT, headers=bearer(token))
            assert r.status_code == 403 and "token cannot" in r.json()["reason"], r.text
            r = attacker.post(f"/api/credentials/{pin_of(client, target)}/revoke", headers=bearer(token))
            assert r.status_code == 403, r.text
            r = attacker.delete(f"/api/users/{target}", headers=bearer(token))
            assert r.status_code == 403, r.text
    for target in (owner.user_id, co_owner, admin):
        held = person(client, target)
        assert held["week_days"] == [] and not any(c["revoked"] for c in held["credentials"])
    assert client.post("/api/kiosk/keypad", json={"entry": PIN}).json()["opened"] is True  # the owner's PIN works


def test_a_manage_token_cannot_replace_anyones_face(client: TestClient, owner: Owner) -> None:
    member = add(owner, "Dana", "736194", "member")
    token = owner.token("read", "manage")
    with make_client(client.app, ("203.0.113.7", 41000)) as attacker:
        for target in (owner.user_id, member):
            r = replace_face(attacker, target, bearer(token))
            assert r.status_code == 403 and "token cannot" in r.json()["reason"], r.text


def test_a_manage_token_still_manages_members(client: TestClient, owner: Owner) -> None:
    member = add(owner, "Dana", "736194", "member")
    leaving = add(owner, "Eve", "280461", "guest")
    token = owner.token("read", "manage")
    with make_client(client.app, ("203.0.113.7", 41000)) as other:
        r = other.post(f"/api/users/{member}/week-days", json=MONDAY_NIGHT, headers=bearer(token))
        assert r.status_code == 200, r.text
        r = other.post(f"/api/credentials/{pin_of(client, member)}/revoke", headers=bearer(token))
        assert r.status_code == 200, r.text
        assert other.delete(f"/api/users/{leaving}", headers=bearer(token)).status_code == 200
    assert person(client, member)["week_days"] and all(c["revoked"] for c in person(client, member)["credentials"])


def test_the_stepped_up_owner_can_change_a_co_owner(client: TestClient, owner: Owner) -> None:
    co_owner = add(owner, "Bob", "503817", "owner")
    owner.step_up()
    r = client.post(f"/api/users/{co_owner}/week-days", json=MONDAY_NIGHT, headers=owner.api())
    assert r.status_code == 200, r.text
    r = replace_face(client, co_owner, owner.api())
    assert r.status_code == 400, r.text  # past the step-up, the (fake) photo itself is refused
    assert client.delete(f"/api/users/{co_owner}", headers=owner.api()).status_code == 200
    assert all(u["user_id"] != co_owner for u in client.get("/api/users").json())


def test_the_console_asks_for_the_password_to_enrol_any_face(client: TestClient, owner: Owner) -> None:
    assert 'name="password"' in client.get(f"/owner/enrol?user={owner.user_id}").text
    assert 'name="password"' in client.get("/owner/enrol").text  # a new person's face is a way in too


def test_the_owners_session_enrols_no_face_without_the_step_up(client: TestClient, owner: Owner) -> None:
    """A face is a way in, as a PIN is: a stolen console cookie (+ its CSRF token) alone enrols nobody's face,
    a new person's included (final review, finding 3)."""
    data = {"name": "Mallory", "purpose": "opening the front door", "retention_days": "90", "consent": "true",
            "source": "upload"}
    upload = [("files", ("me.jpg", b"not decoded: refused before", "image/jpeg"))]
    r = client.post("/api/users/enrol", data=data, headers=owner.api(), files=upload)
    assert r.status_code == 403 and "confirm your password" in r.json()["reason"], r.text
    assert [u["name"] for u in client.get("/api/users").json()] == ["Alice"]
    owner.step_up()
    r = client.post("/api/users/enrol", data=data, headers=owner.api(), files=upload)
    assert r.status_code == 400, r.text  # past the step-up, the (fake) photo itself is refused
