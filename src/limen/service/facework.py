"""Face work in the service: one request computes at a time, a few wait, the rest hear "busy".

A face request (a kiosk unlock burst, an enrolment) decodes its frames and
runs detection, PAD and the embedding: tens of megabytes and a full core for
a few hundred milliseconds.  On a 2-core board with 1 GB, two of them at once
only share the core and add their memory.  So, process-wide:

* `FACE_WORK.run(fn, ...)` — the decoding and the models of one face request
  at a time (`LockService.unlock_face` and `enrol`), always on the process's
  one face thread; afterwards glibc is asked to return the freed heap to the
  system (`malloc_trim`), so a burst's frames and PAD's activations do not
  stay resident while the lock idles.  One thread, because glibc gives the
  threads of a process one of its malloc arenas each (`limen serve` keeps
  two, handed out in turn): face requests ran on whichever HTTP worker
  thread took them, and a request's working memory in one arena came on top
  of what the other kept (`malloc_trim` does not shrink the top of a
  secondary arena: ≈ 8–10 MB stay between requests).  Measured with
  bench/unlock.py's server under 2 face clients: peak 242.9–256.4 MB over 6
  runs before, 246.2–246.7 MB over 4 runs after (load 3.5–5.5).  The
  caller's context variables (the request's language, its trace) go with
  the call.  `FACE_WORK.working()` holds the same slot on the caller's thread
  (the start's warm-up).
* `FACE_WORK.admitted(key, door=…)` — taken by the HTTP route before it
  decodes the uploads (FastAPI has already received the multipart body):
  besides the one at work, at most `thresholds.SERVICE_FACE_WAITING`
  requests wait (each holding only its compressed upload); one more is
  refused at once with `FaceBusy` (503, `Retry-After`).  Fair shares, so one
  client cannot keep the door screen out: a `key` (a door screen's session,
  an enrolling account) holds at most one admission, and enrolments never
  take the last slot — it stays for a door screen.

Nothing is decided differently: a request that waits runs the same checks.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import functools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from limen import thresholds as T

P = ParamSpec("P")
R = TypeVar("R")

BUSY = "the lock is busy with another face; try again in a moment"


class FaceBusy(Exception):
    """More face requests than the service takes at once (one at work + `SERVICE_FACE_WAITING`)."""


class FaceWork:
    """The process's face work: see the module docstring."""

    def __init__(self, waiting: int = T.SERVICE_FACE_WAITING) -> None:
        self.waiting = waiting
        self._work = threading.Lock()
        self._count = threading.Lock()
        self._inside = 0  # admitted requests: the one at work and those waiting
        self._keys: set[str] = set()  # who holds them (one each)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="limen-face")

    @property
    def inside(self) -> int:
        return self._inside

    @contextlib.contextmanager
    def admitted(self, key: str, *, door: bool) -> Iterator[None]:
        """Admit one face request of `key` (never blocks); `FaceBusy` when `key` already has one in, when
        `waiting` others already wait, or — for anything but a door screen (`door`) — when only one slot is left.
        """
        with self._count:
            room = self.waiting + 1 if door else self.waiting  # the last slot is a door screen's
            if key in self._keys or self._inside >= room:
                raise FaceBusy(BUSY)
            self._inside += 1
            self._keys.add(key)
        try:
            yield
        finally:
            with self._count:
                self._inside -= 1
                self._keys.discard(key)

    def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """`fn(*args, **kwargs)` on the face thread, holding the face slot (blocking); its freed heap goes back
        to the system after, from that thread.  Returns what `fn` returns, raises what it raises."""
        context, call = contextvars.copy_context(), functools.partial(fn, *args, **kwargs)

        def on_face_thread() -> R:
            return context.run(_then_trim, call)

        with self._work:
            return self._thread.submit(on_face_thread).result()

    @contextlib.contextmanager
    def working(self) -> Iterator[None]:
        """Hold the process's one face slot (blocking); the freed heap goes back to the system after."""
        with self._work:
            try:
                yield
            finally:
                release_free_heap()


def _then_trim(call: Callable[[], R]) -> R:
    try:
        return call()
    finally:
        release_free_heap()


def release_free_heap() -> bool:
    """glibc's `malloc_trim(0)`: return freed heap pages to the system; False where there is no glibc."""
    trim = _malloc_trim()
    return bool(trim is not None and trim(0))


@functools.cache
def _malloc_trim() -> Any:
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the process's own symbols (find_library would spawn ldconfig)
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


FACE_WORK = FaceWork()
