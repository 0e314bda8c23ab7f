"""Face work in the service: one request decodes and computes at a time, a few wait, one more hears 503 busy."""

from __future__ import annotations

import io
import threading
import time
from typing import Any

import numpy as np
import pytest
from PIL import Image

from limen import thresholds as T
from limen.service import facework
from limen.service.facework import FACE_WORK, FaceBusy, FaceWork
from limen.service.lockservice import Upload

from .conftest import Owner


def test_beyond_the_waiting_requests_one_more_is_refused_at_once() -> None:
    work = FaceWork(waiting=1)
    with work.admitted("kiosk:a", door=True), work.admitted("kiosk:b", door=True):  # at work and waiting
        with pytest.raises(FaceBusy), work.admitted("kiosk:c", door=True):
            pass
        assert work.inside == 2
    assert work.inside == 0
    with work.admitted("kiosk:a", door=True):  # room again once they are done
        assert work.inside == 1


def test_one_client_holds_one_slot_and_enrolments_leave_the_last_to_the_door() -> None:
    work = FaceWork(waiting=3)
    with work.admitted("kiosk:screen-2", door=True):
        with pytest.raises(FaceBusy), work.admitted("kiosk:screen-2", door=True):  # the same screen again
            pass
        with work.admitted("enrol:olga", door=False), work.admitted("enrol:max", door=False):
            with pytest.raises(FaceBusy), work.admitted("enrol:ann", door=False):  # only the last slot is left
                pass
            with work.admitted("addr:127.0.0.1", door=True):  # … and the lock's own screen gets it
                assert work.inside == 4
    assert work.inside == 0


def test_face_work_runs_one_at_a_time_and_gives_the_heap_back(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[int] = []
    monkeypatch.setattr(facework, "release_free_heap", lambda: trims.append(1) or True)
    work, running, most = FaceWork(), [0], [0]
    guard = threading.Lock()

    def request() -> None:
        with work.working():
            with guard:
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.02)
            with guard:
                running[0] -= 1

    threads = [threading.Thread(target=request) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1 and len(trims) == 4


def test_the_heap_is_given_back_on_glibc() -> None:
    if facework._malloc_trim() is None:
        pytest.skip("not glibc")
    assert isinstance(facework.release_free_heap(), bool)


def _wall() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((480, 640, 3), 128, np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def test_a_kiosk_burst_beyond_the_queue_is_answered_busy_unread(client: Any, owner: Owner,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[int] = []
    real = facework.FaceWork.admitted
    monkeypatch.setattr("limen.service.api.uploads", lambda files: read.append(1))  # never reached when busy
    holders = [real(FACE_WORK, f"kiosk:other-{i}", door=True)  # the one at work + all waiting
               for i in range(T.SERVICE_FACE_WAITING + 1)]
    for held in holders:
        held.__enter__()
    try:
        before = len(client.app.state.ctx.runtime.audit.tail(50))
        r = client.post("/api/kiosk/unlock", files=[("frames", ("wall.jpg", _wall(), "image/jpeg"))])
        assert r.status_code == 503 and r.json()["error"] == "busy", r.text
        assert r.headers["retry-after"] == str(T.SERVICE_FACE_RETRY_AFTER_S)
        assert read == [] and len(client.app.state.ctx.runtime.audit.tail(50)) == before  # no attempt made
    finally:
        for held in holders:
            held.__exit__(None, None, None)
    assert FACE_WORK.inside == 0
    monkeypatch.undo()
    r = client.post("/api/kiosk/unlock", files=[("frames", ("wall.jpg", _wall(), "image/jpeg"))])
    assert r.status_code == 200 and r.json()["opened"] is False  # with room again: read, judged, refused (no face)


def test_a_face_request_holds_the_face_slot_from_decoding_to_the_answer(client: Any,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    lock = client.app.state.ctx.lock
    seen: list[bool] = []
    real = lock.controller.face

    def face(capture: Any, **kw: Any) -> Any:
        seen.append(FACE_WORK._work.locked())
        return real(capture, **kw)

    monkeypatch.setattr(lock.controller, "face", face)
    result = lock.unlock_face([Upload("wall.jpg", "image/jpeg", _wall())])
    assert seen == [True] and not result.opened
    assert not FACE_WORK._work.locked()  # released after the answer


def test_the_busy_answer_is_documented_where_it_can_happen(client: Any) -> None:
    paths = client.app.openapi()["paths"]
    for path in ("/api/kiosk/unlock", "/api/users/enrol"):
        assert "busy" in paths[path]["post"]["responses"]["503"]["description"]
    assert "503" not in paths["/api/kiosk/keypad"]["post"]["responses"]
