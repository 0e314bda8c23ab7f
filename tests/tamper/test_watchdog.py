from __future__ import annotations

import os
from pathlib import Path

from limen.tamper import SourceKind, TamperMonitor, Watchdog
from limen.tamper.watchdog import beat_file, open_watchdog

from .conftest import Lock


def test_silent_process_trips_once() -> None:
    now = [0.0]
    dog = Watchdog(timeout_s=10.0, monotonic=lambda: now[0])
    dog.watch("capture")
    dog.watch("access")
    now[0] = 9.0
    dog.beat("access")
    assert dog.poll(now[0]) is None
    now[0] = 10.0
    assert dog.poll(now[0]) == "silent:capture"
    assert dog.poll(now[0]) is None         # one trip per silence
    dog.beat("capture")
    now[0] = 19.5
    assert dog.poll(now[0]) == "silent:access"   # capture was re-armed by its beat, access fell silent
    now[0] = 21.0
    assert dog.poll(now[0]) == "silent:capture"

def test_heartbeat_file_of_another_process(tmp_path: Path) -> None:
    wall = [1_000_000.0]
    dog = Watchdog(timeout_s=10.0, monotonic=lambda: 0.0, wall=lambda: wall[0])
    path = tmp_path / "capture.beat"
    beat_file(path)
    os.utime(path, (wall[0], wall[0]))
    dog.watch("capture", path)
    assert dog.silent(100.0) == []            # the file is fresh although no in-process beat
    wall[0] += 11
    assert dog.silent(100.0) == ["capture"]
    path.unlink()
    assert dog.silent(100.0) == ["capture"]   # a deleted heartbeat is silence


def test_watchdog_through_the_monitor_erases(lock: Lock) -> None:
    now = [0.0]
    dog = Watchdog(timeout_s=1.0, monotonic=lambda: now[0])
    dog.watch("capture")
    monitor = TamperMonitor(lock.responder, [dog], monotonic=lambda: now[0])
    assert monitor.poll() == []
    now[0] = 2.0
    (report,) = monitor.poll()
    assert report.signal.kind is SourceKind.WATCHDOG and report.complete
    assert lock.store.status().state == "erased"


def test_open_watchdog_watches_the_listed_heartbeat_files(tmp_path: Path) -> None:
    now, wall = [0.0], [1_000_000.0]
    capture, access = tmp_path / "capture.beat", tmp_path / "access.beat"
    dog = open_watchdog([f"capture:{capture}", f"access:{access}"], timeout_s=10.0,
                        monotonic=lambda: now[0], wall=lambda: wall[0])
    assert dog.kind is SourceKind.WATCHDOG
    now[0] = 5.0
    assert dog.poll(now[0]) is None          # one timeout of grace from the start, files or not
    beat_file(capture)
    os.utime(capture, (wall[0] + 9, wall[0] + 9))
    now[0], wall[0] = 10.0, wall[0] + 10
    assert dog.poll(now[0]) == "silent:access"   # access never beat; capture's file is fresh


def test_a_restarted_worker_trips_again_when_it_dies_again(tmp_path: Path) -> None:
    """A heartbeat file fresh again re-arms its process: a second kill is a second tamper."""
    wall, mono = [1_000_000.0], [0.0]
    dog = Watchdog(timeout_s=10.0, monotonic=lambda: mono[0], wall=lambda: wall[0])
    path = tmp_path / "capture.beat"
    beat_file(path)
    os.utime(path, (wall[0], wall[0]))
    dog.watch("capture", path)
    wall[0] += 11
    mono[0] += 11
    assert dog.poll(mono[0]) == "silent:capture"
    assert dog.poll(mono[0]) is None and dog.held()     # one trip per silence
    os.utime(path, (wall[0], wall[0]))                   # the worker restarted: it beats through its file
    assert dog.poll(mono[0]) is None and not dog.held()
    wall[0] += 60
    mono[0] += 60
    assert dog.poll(mono[0]) == "silent:capture"         # killed again: trips again


def test_a_future_mtime_does_not_hide_a_dead_worker(tmp_path: Path) -> None:
    """`touch -d 2036 capture.beat` once, then the worker dies: silent one timeout after the mtime last moved."""
    wall, mono = [1_000_000.0], [0.0]
    dog = Watchdog(timeout_s=10.0, monotonic=lambda: mono[0], wall=lambda: wall[0])
    path = tmp_path / "capture.beat"
    beat_file(path)
    ahead = wall[0] + 10 * 365 * 86400
    os.utime(path, (ahead, ahead))
    dog.watch("capture", path)
    mono[0], wall[0] = 9.0, wall[0] + 9
    assert dog.poll(mono[0]) is None
    mono[0], wall[0] = 3600.0, wall[0] + 3600
    assert dog.poll(mono[0]) == "silent:capture"


def test_a_clock_stepped_back_does_not_trip_a_live_worker(tmp_path: Path) -> None:
    """The wall clock steps back an hour (NTP): the last touch looks an hour ahead, the worker's next one moves it."""
    wall, mono = [1_000_000.0], [0.0]
    dog = Watchdog(timeout_s=10.0, monotonic=lambda: mono[0], wall=lambda: wall[0])
    path = tmp_path / "capture.beat"
    beat_file(path)
    os.utime(path, (wall[0], wall[0]))
    dog.watch("capture", path)
    mono[0], wall[0] = 1.0, wall[0] - 3600
    assert dog.poll(mono[0]) is None
    for second in range(2, 40):
        mono[0], wall[0] = float(second), wall[0] + 1
        os.utime(path, (wall[0], wall[0]))              # the live worker beats every second
        assert dog.poll(mono[0]) is None


def test_a_worker_restarted_between_two_polls_trips_again(tmp_path: Path) -> None:
    """The file was touched after the trip (a restart) although no poll saw it fresh: the next silence trips."""
    wall, mono = [1_000_000.0], [0.0]
    dog = Watchdog(timeout_s=10.0, monotonic=lambda: mono[0], wall=lambda: wall[0])
    path = tmp_path / "capture.beat"
    beat_file(path)
    os.utime(path, (wall[0], wall[0]))
    dog.watch("capture", path)
    wall[0] += 11
    mono[0] += 11
    assert dog.poll(mono[0]) == "silent:capture"
    os.utime(path, (wall[0], wall[0]))                   # restarted, beat once, died again
    wall[0] += 60
    mono[0] += 60
    assert dog.poll(mono[0]) == "silent:capture"
    assert dog.poll(mono[0]) is None                     # still one trip per silence
