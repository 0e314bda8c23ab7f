"""Where an upload being decoded lives for a moment: in RAM, never on the lock's storage.

A face video sent by the console or a door screen is written to a file while it is decoded (OpenCV reads
videos from files), and Starlette spools every upload over 1 MB to a temporary file.  Where `/tmp` is on the
lock's SD card, a deleted temporary file stays readable in unallocated blocks: raw face video, which the vault
exists never to keep.  `scratch_dir()` is a private (0700, random name) directory under `/dev/shm` when the
machine has one (None otherwise: the system's default); `limen serve` makes it the process's temporary directory
(`use_for_uploads`), so Starlette's spooled uploads go there too, and removes it when it stops (`release`).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import threading
from pathlib import Path

RAM = Path("/dev/shm")  # noqa: S108 - a RAM file system, where it exists; the directory is made with mkdtemp

_made: dict[Path, Path] = {}
_lock = threading.Lock()


def scratch_dir(ram: Path = RAM) -> Path | None:
    """This process's private directory in RAM (made once, 0700), or None when there is no usable RAM disk."""
    with _lock:
        made = _made.get(ram)
        if made is not None and _private(made):
            return made
        if not ram.is_dir() or not os.access(ram, os.W_OK | os.X_OK):
            return None
        try:
            path = Path(tempfile.mkdtemp(prefix="limen-", dir=ram))
        except OSError:
            return None
        _made[ram] = path
        return path


def use_for_uploads(ram: Path = RAM) -> Path | None:
    """Make the RAM directory the process's temporary directory (uploads Starlette spools land there)."""
    path = scratch_dir(ram)
    if path is not None:
        tempfile.tempdir = str(path)
    return path


def holds(path: str | os.PathLike[str]) -> bool:
    """Whether `path` lies in a RAM directory of this process (or, when it made none, the temporary directory)."""
    where = Path(os.fsdecode(path)).resolve()
    with _lock:
        dirs = list(_made.values()) or [Path(tempfile.gettempdir())]
    return any(where.is_relative_to(d.resolve()) for d in dirs)


def release(ram: Path = RAM) -> bool:
    """Remove this process's RAM directory (and whatever an interrupted upload left in it); True when removed.

    Only the directory `scratch_dir` made, and only while it is still ours (`_private`: a directory, not a link);
    links inside are removed, never followed (`shutil.rmtree`'s fd-based walk).  The process's temporary directory
    goes back to the system's default when it pointed there."""
    with _lock:
        made = _made.pop(ram, None)
        if made is None:
            return False
        if tempfile.tempdir == str(made):
            tempfile.tempdir = None
        if not _private(made):
            return False
        try:
            shutil.rmtree(made)
        except OSError:
            return False
        return True


def _private(path: Path) -> bool:
    """Still our own directory, readable by us alone (not replaced by another user's file or a link)."""
    try:
        st = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077
