"""Face work in the service: one request computes at a time, a few wait, the rest hear "busy".

A face request (a kiosk unlock burst, an enrolment) decodes its frames and
runs detection, PAD and the embedding: tens of megabytes and a full core for
a few hundred milliseconds.  On a 2-core board with 1 GB, two of them at once
only share the core and add their memory.  So, process-wide:

* `FACE_WORK.working()` — the decoding and the models of one face request at
  a time (`LockService.unlock_face` and `enrol` hold it); afterwards glibc is
  asked to return the freed heap to the system (`malloc_trim`), so a burst's
  frames and PAD's activations do not stay resident while the lock idles.
* `FACE_WORK.admitted()` — taken by the HTTP route before it reads the
  uploads: besides the one at work, at most `thresholds.SERVICE_FACE_WAITING`
  requests wait (each holding only its compressed upload); one more is
  refused at once with `FaceBusy` (503, `Retry-After`), before it is read.

Nothing is decided differently: a request that waits runs the same checks.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import threading
from collections.abc import Iterator
from functools import cache
from typing import Any

from limen import thresholds as T

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

    @property
    def inside(self) -> int:
        return self._inside

    @contextlib.contextmanager
    def admitted(self) -> Iterator[None]:
        """Admit one face request (never blocks); `FaceBusy` when `waiting` others already wait."""
        with self._count:
            if self._inside > self.waiting:
                raise FaceBusy(BUSY)
            self._inside += 1
        try:
            yield
        finally:
            with self._count:
                self._inside -= 1

    @contextlib.contextmanager
    def working(self) -> Iterator[None]:
        """Hold the process's one face slot (blocking); the freed heap goes back to the system after."""
        with self._work:
            try:
                yield
            finally:
                release_free_heap()


def release_free_heap() -> bool:
    """glibc's `malloc_trim(0)`: return freed heap pages to the system; False where there is no glibc."""
    trim = _malloc_trim()
    return bool(trim is not None and trim(0))


@cache
def _malloc_trim() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


FACE_WORK = FaceWork()
