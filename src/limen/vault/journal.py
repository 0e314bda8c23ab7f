"""Durable vault state markers: a zeroize intent (journaled before the erase) and the erased mark.

Both are small files in `<data_dir>/vault/`, written atomically.  Order of a
zeroize: intent → destroy root keys → wipe wrapped keys → erased mark → drop
intent.  `TemplateVault.recover()` finishes an erase whose intent survives.
"""

from __future__ import annotations

from pathlib import Path

from limen.vault import files

_INTENT = "zeroize.intent"
_ERASED = "ERASED"


class Journal:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def zeroize_pending(self) -> bool:
        return (self.directory / _INTENT).exists()

    def erased(self) -> bool:
        return (self.directory / _ERASED).exists()

    def begin_zeroize(self) -> None:
        files.touch_durably(self.directory / _INTENT)  # its existence is the whole record

    def finish_zeroize(self) -> None:
        if not self.erased():
            files.atomic_write(self.directory / _ERASED, b"erased\n")
        (self.directory / _INTENT).unlink(missing_ok=True)
        files.fsync_dir(self.directory)

    def clear_erased(self) -> None:
        (self.directory / _ERASED).unlink(missing_ok=True)
        if self.directory.is_dir():
            files.fsync_dir(self.directory)
