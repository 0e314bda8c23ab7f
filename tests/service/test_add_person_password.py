"""Adding a person on the console always needs the owner's password (a PIN opens the door); the page says so, and
a missing or wrong password brings the form back with what was typed, not a dead-end error page (newcomer walk)."""

from __future__ import annotations

from typing import Any

from .conftest import PASSWORD, Owner


def test_the_people_page_says_adding_anyone_needs_the_password(client: Any, owner: Owner) -> None:
    page = client.get("/owner/users").text
    assert "Adding a person needs your password" in page and "Adding an administrator" not in page


def test_a_missing_or_wrong_password_keeps_the_form_and_never_the_secrets(client: Any, owner: Owner) -> None:
    for password in ("", "not-the-password"):
        r = client.post("/owner/users", data={"csrf": owner.csrf, "name": "Carla", "pin": "713502",
                                              "permission": "guest", "valid_hours": "8", "password": password})
        assert r.status_code == 403 and 'id="add-user"' in r.text and 'role="alert"' in r.text
        assert "confirm with your password" in r.text and "Something went wrong" not in r.text
        assert 'value="Carla"' in r.text and 'value="8"' in r.text and 'value="guest" selected' in r.text
        assert "713502" not in r.text and (not password or password not in r.text)
    assert "Carla" not in client.get("/owner/users").text  # nobody was added
    done = client.post("/owner/users", data={"csrf": owner.csrf, "name": "Carla", "pin": "713502",
                                             "permission": "guest", "password": PASSWORD})
    assert done.status_code == 200 and "Carla" in done.text
