"""The owner starts and lifts an owner's lockdown on the console's Lock page (password step-up, CSRF, audited;
nothing erased); a tamper lockdown is worded as one and is not lifted there (review: the owner had no way to
lift a remote lockdown but `limen tamper clear`, which erased every face)."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import numpy as np

from limen.bio.templates import Modality
from limen.tamper.lockdown import LockdownCause, enter_lockdown, lockdown_status

from .conftest import PASSWORD, PIN, Owner

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def post(owner: Owner, on: bool, password: str | None = PASSWORD, csrf: str | None = None) -> object:
    data = {"csrf": owner.csrf if csrf is None else csrf, "on": "1" if on else "0"}
    if password is not None:
        data["password"] = password
    return owner.client.post("/owner/lockdown", data=data, follow_redirects=False)


def test_the_owner_starts_and_lifts_a_lockdown_without_erasing(client: TestClient, owner: Owner) -> None:
    lock = client.app.state.ctx.lock  # type: ignore[attr-defined]
    lock.rt.store.put(owner.user_id, Modality.FACE, np.full(128, 0.1))
    page = client.get("/owner").text
    assert 'id="start-lockdown"' in page and 'id="lockdown-start" hidden' not in page

    started = post(owner, True)
    assert started.status_code == 303 and started.headers["location"] == "/owner?done=lockdown-on"
    assert lockdown_status(lock.rt.conn).cause is LockdownCause.COMMAND and lock.status()["lockdown"]
    assert lock.status()["lockdown_cause"] == "command"
    page = client.get("/owner?done=lockdown-on").text
    assert "Owner lockdown:" in page and 'id="lift-lockdown"' in page
    assert 'id="lockdown-tamper" class="bad" hidden' in page and 'id="lockdown-start" hidden' in page
    refused = client.post("/owner/unlock", data={"csrf": owner.csrf, "pin": PIN}, follow_redirects=False)
    assert refused.headers["location"].endswith("why=lockdown_command")
    assert "owner&#39;s lockdown" in client.get(refused.headers["location"]).text

    lifted = post(owner, False)
    assert lifted.headers["location"] == "/owner?done=lockdown-off"
    assert not lock.status()["lockdown"]
    assert lock.rt.store.status().records == 1  # nothing erased
    trail = client.get("/api/audit", params={"kind": "config_change"}).json()
    assert {"lockdown on", "lockdown off"} <= {r["reason"] for r in trail}


def test_a_wrong_password_or_csrf_changes_nothing(client: TestClient, owner: Owner) -> None:
    lock = client.app.state.ctx.lock  # type: ignore[attr-defined]
    assert post(owner, True, csrf="forged").status_code in (400, 403)
    assert post(owner, True, password="not it").status_code == 403
    assert not lock.status()["lockdown"]
    assert post(owner, True, password=None).status_code == 403  # no password at all
    assert not lock.status()["lockdown"]


def test_a_tamper_lockdown_is_worded_as_one_and_not_lifted_here(client: TestClient, owner: Owner) -> None:
    lock = client.app.state.ctx.lock  # type: ignore[attr-defined]
    enter_lockdown(lock.rt.conn, "case-opened", "case: held", datetime.now(UTC))
    page = client.get("/owner").text
    assert "Tamper lockdown:" in page and "limen tamper clear" in page
    assert 'id="lockdown-command" hidden' in page
    answer = post(owner, False)
    assert answer.headers["location"] == "/owner?done=lockdown-tamper"
    assert lockdown_status(lock.rt.conn).cause is LockdownCause.TAMPER and lock.status()["lockdown"]
    assert post(owner, True).headers["location"] == "/owner?done=lockdown-tamper"  # stays a tamper's
    assert lock.status()["lockdown_cause"] == "tamper"
