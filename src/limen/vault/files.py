"""Durable file primitives: atomic replace (from `limen.fsio`) and in-place shredding."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from limen.fsio import atomic_write as atomic_write  # re-exported for the vault
from limen.fsio import fsync_dir


def zero_out(fd: int) -> None:
    """Overwrite the open file `fd` with zeros in place and make them durable (same size: a data sync)."""
    os.pwrite(fd, bytes(os.fstat(fd).st_size), 0)
    os.fdatasync(fd)


def shred(path: Path, sync_dir: bool = True) -> None:
    """Overwrite `path` with zeros in place, fsync, unlink (then fsync the dir); no error if absent; a symbolic
    link is unlinked without touching what it points to.

    With `sync_dir=False` a power cut may bring back the name, but only over zeros.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)  # a link planted in its place: removed, never followed
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        path.unlink(missing_ok=True)
        return
    try:
        zero_out(fd)
    finally:
        os.close(fd)
    path.unlink(missing_ok=True)
    if sync_dir:
        fsync_dir(path.parent)


def remove_temps(directory: Path) -> None:
    """Delete temp files left by an interrupted `atomic_write` (shredded: they may hold secrets)."""
    if directory.is_dir():
        for tmp in directory.glob(".*.tmp"):
            shred(tmp)
