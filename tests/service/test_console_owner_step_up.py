"""The console's forms ask for the owner's password before changing an owner or administrator (review finding).

The API needed the step-up to remove a co-owner, set an owner's week days or revoke their credential, but the
console's forms did not: with a session not stepped up (a stolen cookie), `POST /owner/users/{co-owner}/remove`
with the page's CSRF token removed the co-owner.  Now each of these forms, and removing an owner's finger,
needs the password (+ TOTP) in the same form when the person is an owner or administrator; members are
changed as before.  Adding a finger needs it for anyone (a finger is a way in, as a PIN is).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import shared

from .conftest import PASSWORD, Owner

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

WRONG = "not the owner's password"
CONFIRM = "confirm with your password"


def add(owner: Owner, name: str, pin: str, permission: str) -> str:
    """A person added on the lock directly: the session stays as it was (not stepped up)."""
    return str(owner.client.app.state.ctx.lock.add_user(owner.user_id, name, pin, permission))  # type: ignore[attr-defined]


def person(client: TestClient, user_id: str) -> dict[str, Any] | None:
    return next((u for u in client.get("/api/users").json() if u["user_id"] == user_id), None)


def pin_of(client: TestClient, user_id: str) -> str:
    found = person(client, user_id)
    assert found is not None
    return str(next(c["id"] for c in found["credentials"] if c["type"] == "pin"))


def fingers_of(client: TestClient, user_id: str) -> list[int]:
    from limen.bio.finger.references import open_references

    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    return list(open_references(ctx.runtime.conn, ctx.settings.data_dir).fingers(user_id))


@pytest.fixture(autouse=True)
def _close_simulator(client: TestClient) -> Iterator[None]:
    yield
    client.app.state.fingers.close()  # type: ignore[attr-defined]


# Each change: (post it with these extra fields → response, was it made?)
Change = Callable[[Owner, str, dict[str, str]], Any]


def remove(owner: Owner, target: str, extra: dict[str, str]) -> Any:
    return owner.client.post(f"/owner/users/{target}/remove", data={"csrf": owner.csrf, **extra},
                             follow_redirects=False)


def removed(owner: Owner, target: str) -> bool:
    return person(owner.client, target) is None


def week_day(owner: Owner, target: str, extra: dict[str, str]) -> Any:
    data = {"csrf": owner.csrf, "index": "1", "days": "mon", "start": "03:00", "end": "03:01", **extra}
    return owner.client.post(f"/owner/users/{target}/week-day", data=data, follow_redirects=False)


def scheduled(owner: Owner, target: str) -> bool:
    found = person(owner.client, target)
    return found is not None and bool(found["week_days"])


def revoke(owner: Owner, target: str, extra: dict[str, str]) -> Any:
    data = {"csrf": owner.csrf, "back": f"/owner/users/{target}", **extra}
    return owner.client.post(f"/owner/credentials/{pin_of(owner.client, target)}/revoke", data=data,
                             follow_redirects=False)


def revoked(owner: Owner, target: str) -> bool:
    found = person(owner.client, target)
    return found is not None and all(c["revoked"] for c in found["credentials"] if c["type"] == "pin")


def add_finger(owner: Owner, target: str, extra: dict[str, str]) -> Any:
    fvc = shared("fvc2002", "DB1_B")
    files = [("images", (f"101_{i}.tif", (fvc / f"101_{i}.tif").read_bytes(), "image/tiff")) for i in (1, 2, 3)]
    data = {"csrf": owner.csrf, "position": "2", "purpose": "door", "retention_days": "30", "consent": "yes",
            **extra}
    return owner.client.post(f"/owner/users/{target}/fingers", data=data, files=files, follow_redirects=False)


def finger_added(owner: Owner, target: str) -> bool:
    return fingers_of(owner.client, target) == [2]


CHANGES: dict[str, tuple[Change, Callable[[Owner, str], bool]]] = {
    "remove": (remove, removed), "week-day": (week_day, scheduled), "revoke": (revoke, revoked),
    "add-finger": (add_finger, finger_added)}


@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.parametrize("permission", ["owner", "administrator"])
def test_an_owner_or_administrator_is_changed_only_with_the_password(owner: Owner, change: str,
                                                                      permission: str) -> None:
    post, made = CHANGES[change]
    target = add(owner, "Bob", "503817", permission)
    for extra in ({}, {"password": WRONG}):  # the stolen cookie: no password, or a guess
        r = post(owner, target, extra)
        assert r.status_code == 403 and CONFIRM in r.text, r.text[:300]
        assert not made(owner, target)  # nothing changed
    r = post(owner, target, {"password": PASSWORD})
    assert r.status_code == 303, r.text[:300]
    assert made(owner, target)


@pytest.mark.parametrize("change", [c for c in CHANGES if c != "add-finger"])
def test_a_member_is_changed_without_the_password(owner: Owner, change: str) -> None:
    post, made = CHANGES[change]
    target = add(owner, "Dana", "736194", "member")
    r = post(owner, target, {})
    assert r.status_code == 303, r.text[:300]
    assert made(owner, target)


def test_adding_a_finger_needs_the_password_for_anyone(owner: Owner) -> None:
    """A finger is a way in, as a PIN is: a stolen cookie alone adds none, to a member either (final review,
    finding 3)."""
    member = add(owner, "Dana", "736194", "member")
    for extra in ({}, {"password": WRONG}):
        r = add_finger(owner, member, extra)
        assert r.status_code == 403 and CONFIRM in r.text, r.text[:300]
        assert fingers_of(owner.client, member) == []
    assert add_finger(owner, member, {"password": PASSWORD}).status_code == 303
    assert finger_added(owner, member)


def test_the_owners_own_schedule_and_pin_need_the_password(owner: Owner) -> None:
    for post, made in (CHANGES["week-day"], CHANGES["revoke"]):
        r = post(owner, owner.user_id, {})
        assert r.status_code == 403 and not made(owner, owner.user_id)


def test_removing_an_owners_finger_needs_the_password(owner: Owner) -> None:
    co_owner = add(owner, "Bob", "503817", "owner")
    assert add_finger(owner, co_owner, {"password": PASSWORD}).status_code == 303
    conn = owner.client.app.state.ctx.accounts.conn  # type: ignore[attr-defined]
    conn.execute("UPDATE service_sessions SET stepped_up_until = NULL")  # the 5-minute step-up lapses
    conn.commit()
    url = f"/owner/users/{co_owner}/fingers/2/remove"
    r = owner.client.post(url, data={"csrf": owner.csrf}, follow_redirects=False)
    assert r.status_code == 403 and fingers_of(owner.client, co_owner) == [2]
    r = owner.client.post(url, data={"csrf": owner.csrf, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303 and fingers_of(owner.client, co_owner) == []


def test_the_forms_ask_for_the_password_for_owners_only(owner: Owner) -> None:
    co_owner = add(owner, "Bob", "503817", "owner")
    member = add(owner, "Dana", "736194", "member")
    fields = re.compile(r'name="password"')
    page = owner.client.get(f"/owner/users/{co_owner}").text
    # the PIN form always had it; now also revoke, schedule and remove
    assert len(fields.findall(page)) == 4, page
    page = owner.client.get(f"/owner/users/{member}").text
    assert len(fields.findall(page)) == 1  # the PIN form only
    adding = re.compile(r'id="finger-add-form".*?name="password"', re.S)  # adding a finger: anyone's
    assert adding.search(owner.client.get(f"/owner/users/{co_owner}/fingers").text)
    assert adding.search(owner.client.get(f"/owner/users/{member}/fingers").text)


def test_the_refusal_is_in_the_pages_language(owner: Owner) -> None:
    co_owner = add(owner, "Bob", "503817", "owner")
    r = owner.client.post(f"/owner/users/{co_owner}/remove?lang=zh_CN", data={"csrf": owner.csrf},
                          headers={"Accept": "text/html", "Accept-Language": "zh-CN"}, follow_redirects=False)
    assert r.status_code == 403 and "请用登录密码" in r.text and person(owner.client, co_owner) is not None



def test_pairing_a_door_screen_needs_the_password(client: TestClient, owner: Owner) -> None:
    """A paired screen types PINs and shows faces to the lock from wherever it is: a stolen console cookie alone
    (session not stepped up) pairs none."""
    def screens() -> list[str]:
        return [str(k["name"]) for k in client.app.state.ctx.accounts.kiosks()]  # type: ignore[attr-defined]

    for extra in ({}, {"password": WRONG}):
        refused = client.post("/owner/kiosks", data={"csrf": owner.csrf, "name": "attic tablet", **extra})
        assert refused.status_code == 403 and CONFIRM in refused.text
        assert "attic tablet" not in screens() and "kiosk?pair=" not in refused.text
    paired = client.post("/owner/kiosks", data={"csrf": owner.csrf, "name": "attic tablet", "password": PASSWORD})
    assert paired.status_code == 200 and re.search(r'id="pairing-link">[^<]*kiosk\?pair=', paired.text)
    assert "attic tablet" in screens()
