"""Adding a face that fails leaves nothing behind: no consent row, no enrolment row, no template, no person —
for a bad file, a photo with no face, a refused presentation (PAD) and a vault that fails to store — both for a
new person and when adding a face to an existing one (the owner)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from limen.errors import StorageError

from ..conftest import shared
from .conftest import Owner
from .fakecam import sequence, write_avi


def rows(client: Any) -> dict[str, int]:
    conn = client.app.state.ctx.runtime.conn
    return {t: int(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])  # noqa: S608 - fixed names
            for t in ("consents", "enrolments", "vault_records", "users")}


def enrol(client: Any, owner: Owner, upload: tuple[str, bytes, str], existing: bool) -> Any:
    data = {"name": "Dana", "purpose": "opening the front door", "retention_days": "90", "consent": "true",
            "source": "upload"}
    owner.step_up()  # enrolling a face needs it
    if existing:
        data["user_id"] = owner.user_id
    return client.post("/api/users/enrol", data=data, headers=owner.api(), files=[("files", upload)])


def grey_photo() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((480, 640, 3), 128, np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("existing", [False, True], ids=["new person", "the owner"])
@pytest.mark.parametrize("upload", [
    ("notes.jpg", b"this is not a picture at all", "image/jpeg"),
    ("empty.jpg", b"", "image/jpeg"),
    ("wall.jpg", grey_photo(), "image/jpeg"),  # decodes, but holds no face
], ids=["not an image", "empty file", "no face"])
def test_a_failed_add_face_leaves_nothing(client: Any, owner: Owner, upload: tuple[str, bytes, str],
                                          existing: bool) -> None:
    before = rows(client)
    r = enrol(client, owner, upload, existing)
    assert 400 <= r.status_code < 500 and set(r.json()) == {"error", "reason"}, r.text
    assert rows(client) == before
    assert not client.get("/api/users").json()[0]["face"]


@pytest.mark.shared
@pytest.mark.parametrize("existing", [False, True], ids=["new person", "the owner"])
def test_a_refused_presentation_leaves_nothing(client: Any, owner: Owner, tmp_path: Path, face_models: Path,
                                               existing: bool) -> None:
    printed = write_avi(sequence(shared("nuaa-dev") / "print" / "0004", "01", 8), tmp_path / "print.avi")
    before = rows(client)
    r = enrol(client, owner, ("print.avi", printed.read_bytes(), "video/x-msvideo"), existing)
    assert r.status_code == 400, r.text
    assert rows(client) == before


@pytest.mark.shared
@pytest.mark.parametrize("existing", [False, True], ids=["new person", "the owner"])
def test_a_vault_failure_leaves_no_consent(client: Any, owner: Owner, tmp_path: Path, face_models: Path,
                                           monkeypatch: pytest.MonkeyPatch, existing: bool) -> None:
    video = write_avi(sequence(shared("nuaa-dev") / "live" / "0004", "01", 12), tmp_path / "me.avi")
    store = client.app.state.ctx.runtime.store

    def broken(*args: Any, **kwargs: Any) -> None:
        raise StorageError("the vault's disk is full")

    monkeypatch.setattr(store, "put", broken)
    before = rows(client)
    r = enrol(client, owner, ("me.avi", video.read_bytes(), "video/x-msvideo"), existing)
    assert r.status_code >= 500 or r.status_code == 400, r.text
    assert rows(client) == before  # neither the person nor their consent outlives the failed template
