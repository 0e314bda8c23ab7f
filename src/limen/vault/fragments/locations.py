"""Where fragments live.  `FragmentLocation` is small enough for a secure element or a cloud bucket."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol, runtime_checkable

from limen.errors import StorageError
from limen.vault import files

_NAME = re.compile(r"^[0-9a-f]{16,128}\.[0-9a-f]{8,64}$")


@runtime_checkable
class FragmentLocation(Protocol):
    """One independent store of fragments, addressed by opaque names."""

    name: str

    def put(self, name: str, data: bytes) -> None:
        """Store `data` under `name`, atomically and durably."""

    def get(self, name: str) -> bytes | None:
        """The stored bytes, or None when missing or unreachable."""

    def delete(self, name: str) -> None:
        """Overwrite and remove `name`; no error when absent."""

    def names(self) -> list[str]:
        """Every stored name (for garbage collection of interrupted writes)."""


class DirectoryLocation:
    """Fragments as files (mode 0600) in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.name = str(directory)

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ValueError("bad fragment name")
        return self.directory / f"{name}.frag"

    def put(self, name: str, data: bytes) -> None:
        try:
            files.atomic_write(self._path(name), data)
        except OSError as exc:
            raise StorageError(f"{self.directory}: cannot write fragment ({exc.strerror})") from exc

    def get(self, name: str) -> bytes | None:
        try:
            return self._path(name).read_bytes()
        except OSError:
            return None

    def stat(self, name: str) -> tuple[int, int, int, int] | None:
        """(inode, size, mtime ns, ctime ns) of `name`, None when missing: a rewritten or removed one differs."""
        try:
            st = self._path(name).stat()
        except OSError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns

    def delete(self, name: str) -> None:
        try:
            files.shred(self._path(name))
        except OSError as exc:
            raise StorageError(f"{self.directory}: cannot delete fragment ({exc.strerror})") from exc

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        files.remove_temps(self.directory)
        return sorted(p.name[: -len(".frag")] for p in self.directory.glob("*.frag"))
