"""Durable file primitives: atomic replace and in-place shredding."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data` all-or-nothing: temp file, fsync, rename, fsync dir."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def touch_durably(path: Path) -> None:
    """Create an empty marker file and make its existence durable (one directory fsync)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    fsync_dir(path.parent)


def shred(path: Path, sync_dir: bool = True) -> None:
    """Overwrite `path` with zeros in place, fsync, unlink (then fsync the dir); no error if absent.

    With `sync_dir=False` a power cut may bring back the name, but only over zeros.
    """
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        return
    try:
        size = os.fstat(fd).st_size
        os.pwrite(fd, bytes(size), 0)
        os.fdatasync(fd)  # same size: the data sync is what makes the zeros durable
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
