"""The audit trail the link forwards holds ids; the console shows the person's name, resolved when it draws."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from .conftest import PASSWORD, Owner

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


def test_user_added_record_has_no_name_and_the_audit_page_shows_it(client: TestClient, owner: Owner) -> None:
    r = client.post("/owner/users", data={"csrf": owner.csrf, "name": "Gwendolyn", "pin": "713502",
                                          "permission": "guest", "password": PASSWORD})
    assert r.status_code == 200 and "Gwendolyn" in r.text
    records = client.get("/api/audit", params={"kind": "user_change"}).json()
    added = [rec for rec in records if rec["reason"] == "user added"]
    assert added and "Gwendolyn" not in json.dumps(records)
    gwen = next(u for u in client.get("/api/users").json() if u["name"] == "Gwendolyn")
    assert any(rec["subject"] == gwen["user_id"] for rec in added)
    page = client.get("/owner/audit", params={"kind": "user_change"})
    assert page.status_code == 200 and "<td>Gwendolyn</td>" in page.text  # the row, not just the filter
