"""The kiosk's randomised head-move challenge (Settings.kiosk_challenge): issued to a paired screen only, single use,
expiring, required for an unlock, and the lock's stored moves (never the client's) reach PAD."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from limen import thresholds as T
from limen.capture import Capture
from limen.clock import FixedClock
from limen.config import load_settings
from limen.pad.challenge import CAPTURE_META_KEY, ChallengeSequence
from limen.service import close_app, create_app
from limen.service.messages import FOLLOW_PROMPTS

from .conftest import Owner, do_setup, make_client


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def challenged(tmp_path: Path, clock: FixedClock) -> Iterator[tuple[Any, Owner]]:
    app = create_app(load_settings(tmp_path / "lock", kiosk_challenge=True), clock=clock)
    try:
        with make_client(app) as c:
            yield c, do_setup(c)
    finally:
        close_app(app)


def wall() -> list[tuple[str, tuple[str, bytes, str]]]:
    buf = io.BytesIO()
    Image.fromarray(np.full((480, 640, 3), 128, np.uint8)).save(buf, "JPEG")
    return [("frames", (f"f{i}.jpg", buf.getvalue(), "image/jpeg")) for i in range(3)]


def spy_faces(client: Any) -> list[Capture]:
    """Record every capture the controller hands to the recognizer (what PAD will see)."""
    faces = client.app.state.ctx.lock.controller.faces
    seen: list[Capture] = []
    real_identify, real_verify = faces.identify, faces.verify

    def identify(capture: Capture) -> Any:
        seen.append(capture)
        return real_identify(capture)

    def verify(name: str, capture: Capture) -> Any:
        seen.append(capture)
        return real_verify(name, capture)

    faces.identify, faces.verify = identify, verify
    return seen


def lockout_count(client: Any) -> int:
    return int(client.app.state.ctx.runtime.access().load_state().lockout.wrong_code_count)


def test_a_challenge_is_issued_only_to_a_paired_screen(challenged: tuple[Any, Owner]) -> None:
    client, _ = challenged
    r = client.post("/api/kiosk/challenge")
    assert r.status_code == 200, r.text
    body = r.json()
    moves = ChallengeSequence.parse(",".join(body["moves"]))  # a valid sequence: 2+ moves, no repeat in a row
    assert len(moves.moves) == 3 and body["expires_in_s"] == int(T.SERVICE_CHALLENGE_TTL_S) and len(body["id"]) >= 16
    assert client.post("/api/kiosk/challenge").json()["id"] != body["id"]
    with make_client(client.app, ("192.168.1.50", 40000)) as stranger:  # never paired
        r = stranger.post("/api/kiosk/challenge")
        assert r.status_code == 403 and "not paired" in r.json()["reason"]
    r = client.post("/api/kiosk/challenge", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403


def test_without_a_live_challenge_the_burst_is_refused_before_recognition(challenged: tuple[Any, Owner],
                                                                         clock: FixedClock) -> None:
    client, _ = challenged
    seen = spy_faces(client)
    before = lockout_count(client)
    events = client.app.state.ctx.runtime.audit.count()
    r = client.post("/api/kiosk/unlock", files=wall(), data={"interval_ms": "100"})  # no id at all
    assert r.status_code == 200 and r.json() == {"opened": False, "message": FOLLOW_PROMPTS, "awaiting_pin": False}
    r = client.post("/api/kiosk/unlock", files=wall(), data={"challenge": "made-up-id"})
    assert r.json()["message"] == FOLLOW_PROMPTS
    expired = client.post("/api/kiosk/challenge").json()["id"]
    clock.advance(T.SERVICE_CHALLENGE_TTL_S + 1)
    r = client.post("/api/kiosk/unlock", files=wall(), data={"challenge": expired})
    assert r.json()["message"] == FOLLOW_PROMPTS
    assert seen == []  # never reached recognition/PAD
    assert lockout_count(client) == before  # no lockout count
    assert client.app.state.ctx.runtime.access().load_state().lockout.bio_fail_count == 0
    audit = client.app.state.ctx.runtime.audit
    assert audit.count() == events + 3  # the controller recorded each refusal once, and raised no alarm
    new = audit.tail(3)
    assert [(e["kind"], e["outcome"], e["reason"]) for e in new] == [
        ("unlock_attempt", "reject", "insufficient_evidence")] * 3, new


def test_the_id_is_single_use_and_bound_to_its_screen(challenged: tuple[Any, Owner]) -> None:
    client, _ = challenged
    seen = spy_faces(client)
    issued = client.post("/api/kiosk/challenge").json()
    r = client.post("/api/kiosk/unlock", files=wall(), data={"challenge": issued["id"]})
    assert r.status_code == 200 and r.json()["opened"] is False
    assert len(seen) == 1  # this one was judged …
    assert seen[0].meta[CAPTURE_META_KEY] == ",".join(issued["moves"])  # … with the lock's stored moves
    r = client.post("/api/kiosk/unlock", files=wall(), data={"challenge": issued["id"]})  # replayed id
    assert r.json()["message"] == FOLLOW_PROMPTS and len(seen) == 1
    with make_client(client.app) as other:  # another screen on the lock, paired by opening /kiosk
        assert other.get("/kiosk").status_code == 200
        theirs = other.post("/api/kiosk/challenge").json()["id"]
    r = client.post("/api/kiosk/unlock", files=wall(), data={"challenge": theirs})
    assert r.json()["message"] == FOLLOW_PROMPTS and len(seen) == 1

def test_the_challenge_message_reads_like_any_refusal_in_chinese(challenged: tuple[Any, Owner]) -> None:
    from limen.service import i18n

    assert i18n.translations("zh_CN").gettext(FOLLOW_PROMPTS) != FOLLOW_PROMPTS
    client, _ = challenged
    r = client.post("/api/kiosk/unlock", files=wall(), headers={"Accept-Language": "zh-CN"})
    assert r.json()["message"] == i18n.translations("zh_CN").gettext(FOLLOW_PROMPTS)


def test_with_the_setting_off_no_challenge_is_required(client: Any, owner: Owner) -> None:
    seen = spy_faces(client)
    r = client.post("/api/kiosk/unlock", files=wall())
    assert r.status_code == 200 and r.json()["message"] != FOLLOW_PROMPTS
    assert len(seen) == 1 and CAPTURE_META_KEY not in seen[0].meta


def last_attempt(client: Any) -> dict[str, Any]:
    records = [r for r in client.app.state.ctx.runtime.audit.records() if r["kind"] == "unlock_attempt"]
    return dict(records[-1])


@pytest.mark.shared
def test_a_still_live_face_does_not_answer_the_challenge(tmp_path: Path, imported_face_models: Path) -> None:
    """Real NUAA webcam frames of a person sitting still (a static replay of a live face): without a challenge PAD
    lets them through to recognition; with one, the moves are not performed → insufficient evidence, refused
    with the challenge's message."""
    from ..conftest import install_face_models, shared
    from .fakecam import sequence

    frames = sequence(shared("nuaa-dev") / "live" / "0004", "02", 10)
    burst = [("frames", (p.name, p.read_bytes(), "image/jpeg")) for p in frames]
    reasons = {}
    for on in (False, True):
        install_face_models(imported_face_models, tmp_path / str(on))
        app = create_app(load_settings(tmp_path / str(on), kiosk_challenge=on))
        try:
            with make_client(app) as client:
                do_setup(client)
                seen = spy_faces(client)
                issued = client.post("/api/kiosk/challenge").json() if on else {"id": "", "moves": []}
                form = {"challenge": issued["id"], "interval_ms": "500"}
                r = client.post("/api/kiosk/unlock", files=burst, data=form)
                assert r.status_code == 200 and r.json()["opened"] is False
                assert seen[0].meta.get(CAPTURE_META_KEY, "") == ",".join(issued["moves"])
                reasons[on] = (last_attempt(client)["reason"], r.json()["message"])
        finally:
            close_app(app)
    assert reasons[False][0] != "insufficient_evidence", reasons  # PAD alone accepts this live burst …
    assert reasons[True] == ("insufficient_evidence", FOLLOW_PROMPTS), reasons  # … the challenge does not
