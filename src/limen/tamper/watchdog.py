"""A watchdog on the lock's own processes: each beats; one silent for too long is a tamper.

In-process workers call `beat(name)`; another process beats through a
heartbeat file (`beat_file(path)` touches it, the watchdog reads its age).
Killing the capture or access process to replay frames, or freezing it under
a debugger, stops its heartbeat and trips `TAMPER_WATCHDOG_TIMEOUT_S` later.

A file's mtime ahead of the wall clock proves nothing (anyone who can write
the file can set it years ahead): its age is then the monotonic time since that
mtime last changed, so a dead worker behind a future mtime trips one timeout
later, and a clock stepped back does not trip a live worker (its next touch
moves the mtime).  A process that tripped trips again after it was fresh
once more (a beat, or a fresh file: a restarted worker) and fell silent again.
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
        self._seen: dict[str, tuple[float, float]] = {}  # a file's last mtime and when it was first seen (monotonic)
        self._tripped: dict[str, float | None] = {}  # tripped process → its file's mtime then (None: no file)

    def watch(self, process: str, heartbeat_file: Path | None = None) -> None:
        """Start watching `process` now (it has one timeout to send its first beat)."""
        with self._lock:
            self._beats[process] = self._monotonic()
            if heartbeat_file is not None:
                self._files[process] = heartbeat_file
                mtime = _mtime(heartbeat_file)
                if mtime is not None:
                    self._seen[process] = (mtime, self._monotonic())

    def beat(self, process: str) -> None:
        with self._lock:
            if process in self._beats:
                self._beats[process] = self._monotonic()
                self._tripped.pop(process, None)

    def silent(self, t: float) -> list[str]:
        """The watched processes whose last beat is older than the timeout at monotonic time `t`."""
        with self._lock:
            out = []
            for process, last in self._beats.items():
                age = t - last
                path = self._files.get(process)
                if path is not None:
                    age = min(age, self._file_age(process, path, t))
                if age >= self.timeout_s:
                    out.append(process)
            return out

    def _file_age(self, process: str, path: Path, t: float) -> float:
        """Seconds since the file's last touch (the caller holds the lock); a missing file is silence."""
        mtime = _mtime(path)
        if mtime is None:
            return float("inf")
        seen = self._seen.get(process)
        if seen is None or seen[0] != mtime:
            seen = self._seen[process] = (mtime, t)
        wall = self._wall()
        return wall - mtime if mtime <= wall else t - seen[1]  # ahead of the clock: since it last moved

    def poll(self, t: float) -> str | None:
        silent = self.silent(t)
        with self._lock:
            for process in set(self._tripped) - set(silent):  # fresh again (a restarted worker's file): re-armed
                del self._tripped[process]
            new = [p for p in silent if p not in self._tripped or self._tripped[p] != self._mtime_seen(p)]
            self._tripped.update({p: self._mtime_seen(p) for p in new})  # a touch since the trip re-arms too
        return "silent:" + ",".join(sorted(new)) if new else None

    def _mtime_seen(self, process: str) -> float | None:
        seen = self._seen.get(process)
        return None if seen is None else seen[0]

    def held(self) -> bool:
        """Whether a process that tripped is still silent (`TamperSource.held`)."""
        with self._lock:
            return bool(self._tripped)

    def rearm(self) -> None:
        """Trip again at the next poll for every process still silent (`TamperSource.rearm`)."""
        with self._lock:
            self._tripped.clear()

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


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def beat_file(path: Path) -> None:
    """Heartbeat of another process: create or touch `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    os.utime(path)
