"""People are the unit: a page per person, "add a face / PIN" for existing people, the first owner always made."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from limen import people
from limen.access import AccessStore, PermissionLevel, ensure_user
from limen.config import Settings
from limen.db import transaction
from limen.runtime import open_runtime

from ..conftest import shared
from .conftest import PASSWORD, PIN, Owner, csrf_of, do_setup

FACE_FIRST = "Fay"


def face_first_person(settings: Settings) -> str:
    """A person as a face enrolment before any owner leaves them: a core row and a member access row."""
    rt = open_runtime(settings)
    try:
        at = datetime.now(UTC)
        with transaction(rt.conn):
            person = people.new_person(rt.conn, FACE_FIRST, "cli", at)
        ensure_user(rt.conn, person.id, "cli", at)
        assert rt.access().has_users() and not rt.access().has_owner()
        return person.id
    finally:
        rt.close()


def test_first_owner_is_creatable_after_a_face_first_person(settings: Settings) -> None:
    face_first_person(settings)
    rt = open_runtime(settings)
    try:
        store: AccessStore = rt.access()
        at = datetime.now(UTC)
        with pytest.raises(Exception, match="first user must be an owner"):
            store.add_user("Mo", "nobody", at, pin="604172")  # still only an owner may come first
        owner = store.add_user("Olga", "ignored", at, pin=PIN, permission=PermissionLevel.OWNER)
        assert owner.permission is PermissionLevel.OWNER and store.has_owner()
        with pytest.raises(Exception, match="already has an owner"):
            store.claim_first_owner(FACE_FIRST, "604172", at)  # the bootstrap step closes once an owner exists
    finally:
        rt.close()


def test_face_first_person_becomes_the_owner_at_setup(settings: Settings) -> None:
    from limen.service import close_app, create_app

    from .conftest import make_client

    fay = face_first_person(settings)
    app = create_app(settings)
    try:
        with make_client(app) as client:
            page = client.get(f"/setup?token={app.state.ctx.setup_token}")
            assert page.status_code == 200 and "existing owner" not in page.text.lower()
            owner = do_setup(client, "fay")  # the form's name "Fay" is the face-enrolled person
            assert owner.user_id == fay
            me = next(u for u in client.get("/api/users").json() if u["user_id"] == fay)
            assert me["permission"] == "owner" and any(c["type"] == "pin" for c in me["credentials"])
    finally:
        close_app(app)


def test_person_page_shows_states_and_adds_a_pin(client: Any, owner: Owner) -> None:
    lock = client.app.state.ctx.lock
    temp = lock.add_user(owner.user_id, "Cleaner", "604172", "guest", 3)
    page = client.get(f"/owner/users/{temp}")
    assert page.status_code == 200
    assert "expires in 3 h" in page.text, page.text
    # a person with no credential yet (as after a face enrolment that failed to add a PIN): says so, offers a PIN
    rt = client.app.state.ctx.runtime
    at = datetime.now(UTC)
    with transaction(rt.conn):
        bare = people.new_person(rt.conn, "Bo", owner.user_id, at)
    ensure_user(rt.conn, bare.id, owner.user_id, at)
    page = client.get(f"/owner/users/{bare.id}")
    assert "no way in yet" in page.text and "Add a PIN" in page.text
    assert f'href="/owner/enrol?user={bare.id}"' in page.text  # "add a face" for this existing person
    assert "digits, not one repeated digit" in page.text  # the rules before typing
    r = client.post(f"/owner/users/{bare.id}/pin", data={"csrf": csrf_of(page.text), "pin": "583016",
                                                          "password": "correct horse battery staple"})
    assert r.status_code == 200 and "PIN changed" in r.text and "no way in yet" not in r.text
    assert str(r.url).endswith(f"/owner/users/{bare.id}?done=pin")
    # the owner's own page offers a face too, and no "remove"
    mine = client.get(f"/owner/users/{owner.user_id}")
    assert f"/owner/enrol?user={owner.user_id}" in mine.text and "remove-person" not in mine.text
    # removing someone else asks first (the form carries the confirmation text)
    assert 'data-confirm="Remove Bo?' in client.get(f"/owner/users/{bare.id}").text
    assert client.get("/owner/users/00000000000000000000000000000000").status_code == 404


def test_add_person_error_keeps_the_form(client: Any, owner: Owner) -> None:
    page = client.get("/owner/users")
    r = client.post("/owner/users", data={"csrf": csrf_of(page.text), "name": "Gus", "pin": "777777",
                                          "permission": "guest", "valid_hours": "5", "password": PASSWORD})
    assert r.status_code == 400 and 'role="alert"' in r.text
    assert 'value="Gus"' in r.text and 'value="5"' in r.text and 'value="guest" selected' in r.text
    assert "777777" not in r.text  # the PIN is never echoed back


def test_enrol_to_an_unknown_person_is_one_clear_error(client: Any, owner: Owner) -> None:
    owner.step_up()  # replacing a face needs it
    r = client.post("/api/users/enrol", headers=owner.api(),
                    data={"name": "x", "purpose": "door", "retention_days": "30", "consent": "true",
                          "user_id": "0123456789abcdef"},
                    files=[("files", ("a.jpg", b"\xff\xd8not-a-jpeg", "image/jpeg"))])
    assert r.status_code == 404 and r.json()["error"] == "not_found"


@pytest.mark.shared
def test_a_face_is_added_to_the_existing_owner(client: Any, owner: Owner, tmp_path: Path,
                                               face_models: Path) -> None:
    from .fakecam import sequence, write_avi

    nuaa = shared("nuaa-dev")
    video = write_avi(sequence(nuaa / "live" / "0004", "01", 12), tmp_path / "me.avi")
    owner.step_up()  # replacing a face needs it
    r = client.post("/api/users/enrol", headers=owner.api(),
                    data={"name": "ignored", "purpose": "opening the front door", "retention_days": "90",
                          "consent": "true", "source": "upload", "user_id": owner.user_id},
                    files=[("files", ("me.avi", video.read_bytes(), "video/x-msvideo"))])
    assert r.status_code == 200, r.text
    assert r.json()["user_id"] == owner.user_id and r.json()["name"] == "Alice"
    users = client.get("/api/users").json()
    assert [u["name"] for u in users] == ["Alice"] and users[0]["face"] and users[0]["permission"] == "owner"
    page = client.get(f"/owner/users/{owner.user_id}")
    assert "Replace Alice’s face" in page.text and "opening the front door" in page.text


def test_a_refused_pin_keeps_the_person_page(client: Any, owner: Owner) -> None:
    page = client.get(f"/owner/users/{owner.user_id}")
    r = client.post(f"/owner/users/{owner.user_id}/pin", data={"csrf": csrf_of(page.text), "pin": "111111",
                                                                "password": "correct horse battery staple"})
    assert r.status_code == 400 and 'role="alert"' in r.text and 'id="pin-form"' in r.text
    assert '<details id="pin-details" open>' in r.text and "111111" not in r.text
