"""The OpenAPI document: every operation has a real summary and description and documents the errors it can
answer (401/403 with an owner, 403/429 at the door, 404 for a path id, 409 for a duplicate, 422 for input), each
with its own sentence and the ErrorBody shape; and the documented errors are the ones the API really answers."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Owner

GENERIC = {"Invalid input", "Not authenticated", "Forbidden (CSRF)", "Not found", "Conflict", "Invalid request",
           "Rate limited", "Validation Error", "Successful Response", ""}
DOOR = ("/api/kiosk/keypad", "/api/kiosk/unlock", "/api/kiosk/challenge")


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, ops in doc["paths"].items() for m, op in ops.items()]


@pytest.fixture
def doc(client: Any) -> dict[str, Any]:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    return dict(r.json())


def test_every_operation_has_a_summary_a_description_and_its_errors(doc: dict[str, Any]) -> None:
    problems = []
    for method, path, op in operations(doc):
        where = f"{method.upper()} {path}"
        summary, description = op.get("summary", ""), op.get("description", "")
        auto = op.get("operationId", "").split("_api_")[0].replace("_", " ").title()
        if not summary or summary == auto or len(summary) > 140:
            problems.append(f"{where}: summary {summary!r}")
        if not description:
            problems.append(f"{where}: no description")
        errors = {int(code): r for code, r in op["responses"].items() if code[0] in "45"}
        wanted: set[int] = set()
        if op.get("security"):
            wanted |= {401, 403}
        if any(p["in"] == "path" for p in op.get("parameters", [])):
            wanted |= {404, 422}
        if op.get("parameters") or op.get("requestBody"):
            wanted.add(422)
        if path in DOOR or path == "/api/step-up":
            wanted |= {403, 429}
        if missing := wanted - set(errors):
            problems.append(f"{where}: errors {sorted(missing)} not documented")
        for code, response in errors.items():
            if response.get("description", "") in GENERIC:
                problems.append(f"{where}: {code} has no sentence of its own")
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref") != "#/components/schemas/ErrorBody":
                problems.append(f"{where}: {code} is not an ErrorBody")
    assert not problems, "\n".join(problems)


def test_operation_specific_errors(doc: dict[str, Any]) -> None:
    ops = {(m, p): op for m, p, op in operations(doc)}
    assert "409" in ops[("post", "/api/users")]["responses"]  # a duplicate name
    assert "423" in ops[("post", "/api/kiosk/keypad")]["responses"]  # tamper lockdown
    assert "429" in ops[("post", "/api/lock/unlock")]["responses"]  # remote unlocks per owner
    assert "401" not in ops[("post", "/api/kiosk/keypad")]["responses"]  # the door needs a paired screen, not a login
    assert ops[("get", "/api/health")]["responses"].keys() == {"200"}  # nothing can go wrong there
    assert all(p.startswith("/api/") for p in doc["paths"])  # pages are not part of the API
    assert "ErrorBody" in doc["components"]["schemas"]
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids))


def test_documented_errors_are_answered(client: Any, owner: Owner, doc: dict[str, Any]) -> None:
    token = owner.token("read")
    read_only = {"Authorization": f"Bearer {token}"}
    anonymous = client.__class__(client.app, base_url=str(client.base_url))
    cases = [
        (anonymous.get("/api/users"), 401, ("get", "/api/users")),
        (client.post("/api/users", json={"name": "x", "pin": "482915"}, headers=read_only), 403,
         ("post", "/api/users")),
        (client.delete("/api/users/" + "0" * 16, headers=owner.api()), 404, ("delete", "/api/users/{user_id}")),
        (client.post("/api/users", json={"name": 5}, headers=owner.api()), 422, ("post", "/api/users")),
        (client.post("/api/users", json={"name": "Alice", "pin": "604172"}, headers=owner.api()), 409,
         ("post", "/api/users")),
    ]
    for response, status, (method, path) in cases:
        assert response.status_code == status, (path, response.status_code, response.text)
        assert str(status) in doc["paths"][path][method]["responses"], (path, status)
        assert set(response.json()) == {"error", "reason"}
