"""A watchdog on the lock's own processes: each beats; one silent for too long is a tamper.

In-process workers call `beat(name)`; another process beats through a
heartbeat file (`beat_file(path)` touches it, the watchdog reads its age).
Killing the capture or access process to replay frames, or freezing it under
a debugger, stops its heartbeat and trips `TAMPER_WATCHDOG_TIMEOUT_S` later.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from limen import thresholds as T
from limen.tamper.signals import SourceKind


class Watchdog:
    """A tamper source (`poll`) over named heartbeats; thread-safe."""

    kind = SourceKind.WATCHDOG

    def __init__(self, name: str = "watchdog", timeout_s: float = T.TAMPER_WATCHDOG_TIMEOUT_S,
                 monotonic: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.name, self.timeout_s = name, timeout_s
        self._monotonic, self._wall = monotonic, wall
        self._lock = threading.Lock()
        self._beats: dict[str, float] = {}
        self._files: dict[str, Path] = {}
        self._tripped: set[str] = set()

    def watch(self, process: str, heartbeat_file: Path | None = None) -> None:
        """Start watching `process` now (it has one timeout to send its first beat)."""
        with self._lock:
            self._beats[process] = self._monotonic()
            if heartbeat_file is not None:
                self._files[process] = heartbeat_file

    def beat(self, process: str) -> None:
        with self._lock:
            if process in self._beats:
                self._beats[process] = self._monotonic()
                self._tripped.discard(process)

    def silent(self, t: float) -> list[str]:
        """The watched processes whose last beat is older than the timeout at monotonic time `t`."""
        with self._lock:
            out = []
            for process, last in self._beats.items():
                age = t - last
                path = self._files.get(process)
                if path is not None:
                    age = min(age, self._file_age(path))
                if age >= self.timeout_s:
                    out.append(process)
            return out

    def _file_age(self, path: Path) -> float:
        try:
            return max(0.0, self._wall() - path.stat().st_mtime)
        except OSError:
            return float("inf")

    def poll(self, t: float) -> str | None:
        new = [p for p in self.silent(t) if p not in self._tripped]
        if not new:
            return None
        with self._lock:
            self._tripped.update(new)
        return "silent:" + ",".join(sorted(new))

    def close(self) -> None:
        return None


def open_watchdog(entries: list[str], timeout_s: float = T.TAMPER_WATCHDOG_TIMEOUT_S,
                  monotonic: Callable[[], float] = time.monotonic,
                  wall: Callable[[], float] = time.time) -> Watchdog:
    """A watchdog over the heartbeat files a setting lists (``NAME:/path/to/NAME.beat``).

    Each watched process has one timeout from now to touch its file (`beat_file`);
    after that, a file older than the timeout, or missing, is a silence: a tamper.
    """
    dog = Watchdog(timeout_s=timeout_s, monotonic=monotonic, wall=wall)
    for entry in entries:
        name, _, path = entry.partition(":")
        dog.watch(name, Path(path))
    return dog


def beat_file(path: Path) -> None:
    """Heartbeat of another process: create or touch `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    os.utime(path)
