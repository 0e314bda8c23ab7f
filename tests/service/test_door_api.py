"""The door endpoints as the runtime wires them: kiosk PIN after a face, erase-then-delete, tamper intent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from limen.tamper import journal_dir
from limen.tamper.journal import Intent, IntentJournal

from .conftest import PIN, Owner


def test_deleting_a_user_after_a_zeroize_is_a_2xx_and_audited(client: Any, owner: Owner) -> None:
    owner.step_up()
    r = client.post("/api/users", json={"name": "Gus", "pin": "713502"}, headers=owner.api())
    assert r.status_code == 200, r.text
    gus = r.json()["id"]
    client.app.state.ctx.runtime.store.zeroize()
    r = client.delete(f"/api/users/{gus}", headers=owner.api())
    assert r.status_code == 200, r.text
    assert gus not in [u["user_id"] for u in client.get("/api/users").json()]
    privacy = client.get("/api/audit", params={"kind": "privacy", "limit": 1}).json()[0]
    assert privacy["subject"] == gus and privacy["data"]["vault_already_erased"] is True


def test_a_killed_tamper_response_makes_the_running_service_refuse_a_valid_pin(client: Any, owner: Owner) -> None:
    settings = client.app.state.ctx.settings
    journal = IntentJournal(journal_dir(settings))
    journal.begin(Intent("f" * 32, "case", "case", "opened", datetime.now(UTC).isoformat()))  # then SIGKILL
    journal.close()
    for _ in range(2):
        r = client.post("/api/kiosk/keypad", json={"entry": PIN})
        assert r.status_code == 200 and r.json()["opened"] is False
    assert client.get("/api/lock", headers=owner.api()).json()["lockdown"] is True
