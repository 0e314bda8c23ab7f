"""Durable vault state markers: the zeroize journal and the erased mark.

Both live in `<data_dir>/vault/`.  The journal is a one-byte file created
("armed", ``0``) when the vault opens, so that journaling a zeroize's intent is
a single in-place write + `fdatasync` (``1``) — no directory update on the
critical path.  Order of a zeroize: intent → destroy root keys → wipe wrapped
keys → erased mark → journal back to ``0``.  `TemplateVault.recover()`
finishes an erase whose intent survives.
"""

from __future__ import annotations

import os
from pathlib import Path

from limen.vault import files

_JOURNAL = "zeroize.journal"
_ERASED = "ERASED"
_PENDING, _ARMED = b"1", b"0"


class Journal:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._path = directory / _JOURNAL

    def arm(self) -> None:
        """Create the journal file ahead of time (no-op when present)."""
        if not self._path.exists():
            files.atomic_write(self._path, _ARMED)

    def zeroize_pending(self) -> bool:
        try:
            return self._path.read_bytes()[:1] == _PENDING
        except FileNotFoundError:
            return False

    def erased(self) -> bool:
        return (self.directory / _ERASED).exists()

    def begin_zeroize(self) -> None:
        self._set(_PENDING)

    def finish_zeroize(self) -> None:
        if not self.erased():
            files.atomic_write(self.directory / _ERASED, b"erased\n")
        self._set(_ARMED)

    def clear_erased(self) -> None:
        (self.directory / _ERASED).unlink(missing_ok=True)
        if self.directory.is_dir():
            files.fsync_dir(self.directory)

    def _set(self, state: bytes) -> None:
        try:
            fd = os.open(self._path, os.O_WRONLY)
        except FileNotFoundError:
            files.atomic_write(self._path, state)
            return
        try:
            os.pwrite(fd, state, 0)
            os.fdatasync(fd)
        finally:
            os.close(fd)
