"""Per-stage timings of each attempt, for whoever runs the lock (`limen serve --trace FILE`).

Stage code calls `trace.emit(stage, value)` without checking: the default
sink does nothing.  `limen serve --trace FILE` sets a `TimingsFile`, which
writes one JSON line per attempt (`AccessController` emits stage "attempt":
the way in and how many milliseconds each stage took — evidence and its
parts, decide, audit, door).  Nothing else is written: no person, no
outcome, no score, no image or embedding — but timings are not neutral: the
door stage takes real time only when the door was driven, so the file tells
openings from refusals (it is 0600, for the lock's owner).  Values marked `biometric=True`
never reach any sink, and other stages' values (face quality, PAD's
verdict: an oracle for someone tuning an attack) are not written to the file.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)
ATTEMPT = "attempt"  # the controller's record: {"method": str, "stages_ms": {stage: ms}, "total_ms": ms}


class TraceSink(Protocol):
    def emit(self, stage: str, value: Any) -> None: ...

    def close(self) -> None: ...


class NullSink:
    def emit(self, stage: str, value: Any) -> None:
        return None

    def close(self) -> None:
        return None


class TimingsFile:
    """Appends each attempt's timings to `path` as JSON lines (mode 0600); thread-safe; other stages are dropped."""

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file = os.fdopen(fd, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def emit(self, stage: str, value: Any) -> None:
        if stage != ATTEMPT:
            return
        line = json.dumps({"at": datetime.now(UTC).isoformat(timespec="milliseconds"), "stage": stage, **value})
        try:
            with self._lock:
                self._file.write(line + "\n")
                self._file.flush()
        except (OSError, ValueError) as exc:  # a full disk or a closed file never touches the attempt itself
            log.warning("trace file not written: %s", type(exc).__name__)

    def close(self) -> None:
        with self._lock:
            self._file.close()


_sink: TraceSink = NullSink()


def set_sink(sink: TraceSink) -> TraceSink:
    """Make `sink` the process's sink; returns the one it replaces."""
    global _sink
    previous, _sink = _sink, sink
    return previous


def emit(stage: str, value: Any | Callable[[], Any], *, biometric: bool = False) -> None:
    """Send `value` (or what calling it returns) to the sink; a biometric value is never sent."""
    if biometric or isinstance(_sink, NullSink):
        return
    _sink.emit(stage, value() if callable(value) else value)
