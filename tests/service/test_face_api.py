"""Face enrolment and kiosk unlock through the API on real NUAA webcam frames (no browser)."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from ..conftest import shared
from .conftest import Owner
from .fakecam import sequence, write_avi

pytestmark = pytest.mark.shared
ENROLLED, STRANGER = "0004", "0005"
DANA_PIN = "736194"


def files(field: str, paths: list[Path]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [(field, (p.name, p.read_bytes(), "image/jpeg")) for p in paths]


def enrol_form(name: str = "Dana") -> dict[str, str]:
    return {"name": name, "purpose": "opening the front door", "retention_days": "90", "consent": "true",
            "source": "upload"}


def unlock(client: Any, paths: list[Path]) -> dict[str, Any]:
    r = client.post("/api/kiosk/unlock", files=files("frames", paths), data={"interval_ms": "100"})
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def test_enrol_then_open_refuse_stranger_and_print(client: Any, owner: Owner, tmp_path: Path,
                                                   face_models: Path) -> None:
    nuaa = shared("nuaa-dev")
    photos = sequence(nuaa / "live" / ENROLLED, "01", 12)
    owner.step_up()  # enrolling a face needs it
    r = client.post("/api/users/enrol", data=enrol_form(), headers=owner.api(), files=files("files", photos[:1]))
    assert r.status_code == 400 and "still photo cannot prove liveness" in r.json()["reason"]
    printed = sequence(nuaa / "print" / ENROLLED, "01", 8)
    r = client.post("/api/users/enrol", data=enrol_form(), headers=owner.api(), files=files("files", printed))
    assert r.status_code == 400 and "live person" in r.json()["reason"]
    video = write_avi(photos, tmp_path / "dana.avi")  # one video per session: each is one continuous capture
    later = write_avi(sequence(nuaa / "live" / ENROLLED, "02", 10), tmp_path / "dana-2.avi")
    r = client.post("/api/users/enrol", data=enrol_form(), headers=owner.api(),
                    files=[("files", (v.name, v.read_bytes(), "video/x-msvideo")) for v in (video, later)])
    assert r.status_code == 200, r.text
    enrolled = r.json()
    assert enrolled["samples"] >= 3 and enrolled["purpose"] == "opening the front door"
    dana = next(u for u in client.get("/api/users").json() if u["name"] == "Dana")
    assert dana["face"] and dana["permission"] == "member"

    # an RGB camera: the recognised face is a first factor, held by the lock for this kiosk; the PIN completes it
    client.app.state.ctx.lock.set_pin(owner.user_id, dana["user_id"], DANA_PIN)
    assert unlock(client, sequence(nuaa / "live" / ENROLLED, "02", 5, start=10)) == {
        "opened": False, "message": "enter your PIN as well", "awaiting_pin": True}
    r = client.post("/api/kiosk/keypad", json={"entry": DANA_PIN})
    assert r.status_code == 200 and r.json()["opened"] is True
    assert unlock(client, sequence(nuaa / "live" / STRANGER, "01", 5)) == {
        "opened": False, "message": "not recognised", "awaiting_pin": False}
    attack = unlock(client, sequence(nuaa / "print" / ENROLLED, "01", 5))
    assert attack == {"opened": False, "message": "not recognised", "awaiting_pin": False}  # never says which cue

    trail = client.get("/api/audit", params={"kind": "unlock_attempt", "limit": 20}).json()
    camera = [(r["outcome"], r["reason"]) for r in trail if r["source"] == "camera"]
    assert camera[:3] == [("reject", "pad_failed"), ("reject", "no_match"), ("reject", "second_factor_missing")]
    both = [r for r in trail if r["source"] == "keypad"]
    assert [(r["outcome"], r["data"]["factors"]) for r in both] == [("accept", ["face", "pin"])]
    assert len(trail) == 4  # each attempt audited once (by the controller), so anomaly rules count it once
    consent = client.get("/api/audit", params={"kind": "enrolment"}).json()[0]
    assert consent["data"]["purpose"] == "opening the front door" and consent["data"]["retention_days"] == 90
    assert "embedding" not in str(trail) and "frames" not in str(trail)


def test_concurrent_face_unlocks_are_all_answered(client: Any, owner: Owner, face_models: Path) -> None:
    """One door screen sending three bursts at once: one is judged, a repeat while it runs hears "busy"
    (a screen holds one face admission at a time); nothing is lost from the trail."""
    nuaa = shared("nuaa-dev")
    burst = sequence(nuaa / "live" / STRANGER, "01", 3)
    answers: list[tuple[int, dict[str, Any]]] = []

    def post() -> None:
        r = client.post("/api/kiosk/unlock", files=files("frames", burst), data={"interval_ms": "100"})
        answers.append((r.status_code, r.json()))

    threads = [threading.Thread(target=post) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    judged = [a for code, a in answers if code == 200]
    busy = [a for code, a in answers if code == 503]
    assert len(judged) + len(busy) == 3 and judged, answers
    assert judged == [{"opened": False, "message": "not recognised", "awaiting_pin": False}] * len(judged)
    assert all(a["error"] == "busy" for a in busy)
    client.app.state.ctx.runtime.audit.verify()
    assert unlock(client, burst)["message"] == "not recognised"  # and the screen is served again after


def test_a_photo_without_a_face_enrols_nobody(client: Any, owner: Owner) -> None:
    buf = io.BytesIO()
    Image.fromarray(np.full((480, 640, 3), 128, np.uint8)).save(buf, "JPEG")
    owner.step_up()  # enrolling a face needs it
    r = client.post("/api/users/enrol", data=enrol_form("Nobody"), headers=owner.api(),
                    files=[("files", ("wall.jpg", buf.getvalue(), "image/jpeg"))])
    assert r.status_code == 400 and r.json()["reason"].startswith(("enrolment refused", "no usable face"))
    assert [u["name"] for u in client.get("/api/users").json()] == ["Alice"]
    r = client.post("/api/kiosk/unlock", files=[("frames", ("wall.jpg", buf.getvalue(), "image/jpeg"))])
    assert r.json()["opened"] is False  # no face: PAD has no evidence, so it fails closed
    assert r.json()["message"] in ("not recognised", "hold still, face the camera")
