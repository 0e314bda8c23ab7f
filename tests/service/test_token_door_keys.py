"""A token is not a door key, nor a way to make one (security review, finding 1).

The review's attack: a token with only the `manage` scope (one day) issued a code valid for a
year and added a user with a PIN; both opened the door and both survived the token's revocation,
and the audit named the owner but not the token.  Now issuing a PIN or a code needs the `unlock`
scope (or the owner's confirmed session), what a token issues ends by the token's expiry and is
revoked with it, and the audit records name the token (its id, never the secret).
"""

from __future__ import annotations

import warnings
from typing import Any

from .conftest import Owner, make_client

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_id(token: str) -> str:
    return token.split("_")[1]


def keypad(client: TestClient, entry: str) -> dict[str, Any]:
    r = client.post("/api/kiosk/keypad", json={"entry": entry})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_manage_token_issues_no_code_and_no_pin(client: TestClient, owner: Owner) -> None:
    token = owner.token("read", "manage", days=1)
    with make_client(client.app, ("203.0.113.7", 41000)) as attacker:
        r = attacker.post("/api/codes", json={"kind": "period_quota", "days": 366, "uses_per_day": 9},
                          headers=bearer(token))
        assert r.status_code == 403 and "unlock" in r.json()["reason"]
        r = attacker.post("/api/users", json={"name": "Mallory", "pin": "615243", "permission": "member"},
                          headers=bearer(token))
        assert r.status_code == 403 and "unlock" in r.json()["reason"]
    assert client.get("/api/codes").json() == []
    assert "Mallory" not in {u["name"] for u in client.get("/api/users").json()}
    assert keypad(client, "615243")["opened"] is False


def test_what_a_token_issues_ends_by_its_expiry_and_dies_with_it(client: TestClient, owner: Owner) -> None:
    token = owner.token("read", "manage", "unlock", days=1)
    with make_client(client.app, ("203.0.113.7", 41000)) as integration:
        r = integration.post("/api/codes", json={"kind": "period_quota", "days": 366, "uses_per_day": 9},
                             headers=bearer(token))
        assert r.status_code == 400 and "expiry" in r.json()["reason"]  # a year-long code from a one-day token
        code = integration.post("/api/codes", json={"kind": "limited", "hours": 2}, headers=bearer(token))
        assert code.status_code == 200, code.text
        r = integration.post("/api/users", json={"name": "Mallory", "pin": "615243", "permission": "member"},
                             headers=bearer(token))
        assert r.status_code == 200, r.text
    assert keypad(client, code.json()["enter_as"])["opened"] is True
    assert keypad(client, "615243")["opened"] is True
    expires = next(t["expires_at"] for t in client.get("/api/tokens").json() if t["id"] == token_id(token))
    store = client.app.state.ctx.lock.access  # type: ignore[attr-defined]
    pin = next(c for c in store.credentials(r.json()["id"]) if c.type.value == "pin")
    assert pin.valid_until is not None and pin.valid_until.isoformat() <= expires  # never past the token

    r = client.delete(f"/api/tokens/{token_id(token)}", headers=owner.api())
    assert r.status_code == 200, r.text
    assert keypad(client, code.json()["enter_as"])["opened"] is False
    assert keypad(client, "615243")["opened"] is False
    assert next(c for c in client.get("/api/codes").json() if c["code_id"] == code.json()["code_id"])["revoked"]


def test_the_audit_names_the_issuing_token_never_its_secret(client: TestClient, owner: Owner) -> None:
    token = owner.token("read", "manage", "unlock", days=1)
    code = client.post("/api/codes", json={"kind": "single_use"}, headers=bearer(token)).json()
    user = client.post("/api/users", json={"name": "Mallory", "pin": "615243"}, headers=bearer(token)).json()
    client.delete(f"/api/tokens/{token_id(token)}", headers=owner.api())
    trail = client.get("/api/audit", params={"limit": 1000}).json()
    issued = next(r for r in trail if r["kind"] == "code_change" and r["reason"] == "offline code issued")
    added = next(r for r in trail if r["kind"] == "user_change" and r["subject"] == user["id"])
    revoked = [r for r in trail if "with its API token" in (r["reason"] or "")]
    assert issued["data"]["code_id"] == code["code_id"] and issued["data"]["token_id"] == token_id(token)
    assert added["data"]["token_id"] == token_id(token) and added["source"] == "api"
    assert len(revoked) == 2 and all(r["data"]["token_id"] == token_id(token) for r in revoked)
    assert token.split("_", 2)[2] not in str(trail)


def test_the_owners_session_confirms_before_issuing_a_door_key(client: TestClient, owner: Owner) -> None:
    r = client.post("/api/codes", json={"kind": "single_use"}, headers=owner.api())
    assert r.status_code == 403 and "step-up" in r.json()["reason"]
    r = client.post("/api/users", json={"name": "Bob", "pin": "615243"}, headers=owner.api())
    assert r.status_code == 403
    owner.step_up()
    assert client.post("/api/codes", json={"kind": "single_use"}, headers=owner.api()).status_code == 200
    assert client.post("/api/users", json={"name": "Bob", "pin": "615243"}, headers=owner.api()).status_code == 200
