"""Face work runs on the one face thread (one malloc arena), one request at a time, in the caller's context."""

from __future__ import annotations

import contextvars
import io
import threading
import time
from typing import Any

import numpy as np
import pytest
from PIL import Image

from limen.service import facework
from limen.service.facework import FACE_WORK, FaceWork
from limen.service.lockservice import Upload

from .conftest import Owner

_LANG: contextvars.ContextVar[str] = contextvars.ContextVar("test_lang", default="en")


def test_calls_from_many_threads_run_on_one_thread_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[str] = []
    monkeypatch.setattr(facework, "release_free_heap", lambda: trims.append(threading.current_thread().name) or True)
    work, guard = FaceWork(), threading.Lock()
    ran: list[tuple[int, str]] = []
    running, most = [0], [0]

    def compute(i: int, *, lang: str) -> str:
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        ran.append((threading.get_ident(), threading.current_thread().name))
        time.sleep(0.01)
        with guard:
            running[0] -= 1
        return f"{i}:{lang}:{_LANG.get()}"

    answers: dict[int, str] = {}

    def request(i: int) -> None:
        _LANG.set(f"lang{i}")  # the caller's context (the request's language) goes with the call
        answers[i] = work.run(compute, i, lang="x")

    callers = [threading.Thread(target=request, args=(i,)) for i in range(5)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert answers == {i: f"{i}:x:lang{i}" for i in range(5)}
    assert len({ident for ident, _ in ran}) == 1 and ran[0][1].startswith("limen-face")
    assert most[0] == 1
    assert len(trims) == 5 and all(name.startswith("limen-face") for name in trims)  # trimmed on the face thread


def test_a_failure_is_raised_to_the_caller_and_frees_the_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[int] = []
    monkeypatch.setattr(facework, "release_free_heap", lambda: trims.append(1) or True)
    work = FaceWork()

    def broken() -> None:
        raise ValueError("bad frame")

    with pytest.raises(ValueError, match="bad frame"):
        work.run(broken)
    assert trims == [1] and not work._work.locked()
    assert work.run(lambda: 7) == 7


def _wall() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((480, 640, 3), 128, np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def test_a_kiosk_burst_is_decoded_and_judged_on_the_face_thread(client: Any, owner: Owner,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    lock = client.app.state.ctx.lock
    seen: list[tuple[str, bool]] = []
    real = lock.controller.face

    def face(capture: Any, **kw: Any) -> Any:
        seen.append((threading.current_thread().name, FACE_WORK._work.locked()))
        return real(capture, **kw)

    monkeypatch.setattr(lock.controller, "face", face)
    r = client.post("/api/kiosk/unlock", files=[("frames", ("wall.jpg", _wall(), "image/jpeg"))])
    assert r.status_code == 200 and r.json()["opened"] is False, r.text
    result = lock.unlock_face([Upload("wall.jpg", "image/jpeg", _wall())])
    assert not result.opened
    assert len(seen) == 2 and all(name.startswith("limen-face") and held for name, held in seen)
    assert not FACE_WORK._work.locked()
