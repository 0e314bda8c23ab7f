"""A tamper lockdown is lifted for the door only by the owner's command signed on a paired device (review, 3).

With an `unlock` token (or the owner's console session), `POST /api/lock/unlock` with the owner's PIN
opened the door during a tamper lockdown: the service passed the owner's login as if it were a verified
signature.  docs/access.md: only a command whose signature the link verified counts as owner-authorised.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

from limen.tamper.lockdown import enter_lockdown

from .conftest import PIN, Owner

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def test_web_and_token_unlocks_are_refused_in_a_tamper_lockdown(client: TestClient, owner: Owner) -> None:
    token = owner.token("read", "unlock")
    lock = client.app.state.ctx.lock  # type: ignore[attr-defined]
    enter_lockdown(lock.rt.conn, "case-opened", "case opened (simulated)", datetime.now(UTC))
    by_token = client.post("/api/lock/unlock", json={"pin": PIN}, headers={"Authorization": f"Bearer {token}"})
    by_session = client.post("/api/lock/unlock", json={"pin": PIN}, headers=owner.api())
    for answer in (by_token.json(), by_session.json()):
        assert answer["opened"] is False and answer["reason"] == "lockdown", answer
        assert "signed" in answer["detail"]  # the owner is told what would open
    assert lock.status()["state"] != "unlocked"
    trail = client.get("/api/audit", params={"kind": "unlock_attempt"}).json()
    assert [r["outcome"] for r in trail[:2]] == ["reject", "reject"] and trail[0]["reason"] == "lockdown"
