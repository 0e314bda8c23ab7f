"""The cloud refuses a request body over CLOUD_MAX_REQUEST_BYTES unread (413), before any route or rate limit:
an anonymous log-in of 300 MB took `limen-cloud serve` from 151 to 1,631 MB before its answer (422)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from limen import thresholds as T
from limen_cloud.api import create_app

from .test_api import PASSWORD


def test_an_oversize_body_is_413_by_its_length_or_while_it_streams(engine: Engine) -> None:
    client = TestClient(create_app(engine, open_signup=True))
    big = b'{"email":"a@b.c","password":"' + b"x" * T.CLOUD_MAX_REQUEST_BYTES + b'"}'
    r = client.post("/api/sessions", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["detail"]

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"email":"a@b.c","password":"'
        for _ in range(T.CLOUD_MAX_REQUEST_BYTES // 4096 + 2):
            yield b"x" * 4096

    r = client.post("/login", content=chunked(), headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413 and "larger than" in r.json()["detail"]


def test_the_largest_legitimate_body_still_passes(engine: Engine) -> None:
    """A replacement statement of LINK_MAX_PAYLOAD_BYTES, escaped in JSON or percent-encoded in the page's form
    (3 bytes a character), is under the limit: refused for what it says, not for its size."""
    client = TestClient(create_app(engine, open_signup=True), base_url="https://testserver")
    assert client.post("/api/owners", json={"email": "o@x.y", "password": PASSWORD}).status_code == 201
    token = client.post("/api/sessions", json={"email": "o@x.y", "password": PASSWORD}).json()["token"]
    statement = '{"' * (T.LINK_MAX_PAYLOAD_BYTES // 2)  # JSON: 2-3 bytes a character; a form: 3
    r = client.post("/api/locks/nope/replaced", json={"password": PASSWORD, "statement": statement},
                    headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 404  # no such lock: the body was read
    client.cookies.set("__Host-limen-cloud", token)
    r = client.post("/locks/nope/replaced", data={"csrf": "x", "password": PASSWORD, "statement": statement},
                    follow_redirects=False)
    assert r.status_code == 403  # the form's CSRF token checked: the body was read
