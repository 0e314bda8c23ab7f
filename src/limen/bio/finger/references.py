"""Fingerprint references at rest: ISO records sealed under the vault, one file per person.

Each enrolled finger's impressions (ISO/IEC 19794-2 records) are sealed
together with the vault's `SecretBox` (AES-256-GCM under the vault's secrets
key), written atomically 0600 under `<data dir>/fingerprints/`: finger
position 0 (unknown, ISO) as ``<user id>.fmr`` under the label
``finger:<user id>``, positions 1–10 (ISO: right thumb … left little) as
``<user id>.<position>.fmr`` under ``finger:<user id>:<position>``.  A person
may have several fingers enrolled; a probe is compared with all of them.
Raw minutiae never persist unencrypted; they exist in memory only while a
probe is compared.  A crypto-erase of the vault makes every file unreadable at
once (its key is gone); `delete` removes every file of a person (erasure on
user removal and on consent expiry).  For a backup the owner opted in to,
`export_for_backup` unseals every finger's records into wipeable buffers for
the backup sealer and `import_from_backup` seals them under *this* lock's box.  A missing vault is
an error (fail closed), never a plaintext fallback.
"""

from __future__ import annotations

import re
import sqlite3
import struct
from pathlib import Path

from limen import thresholds
from limen.bio.finger import iso, matcher
from limen.bio.finger.template import FingerTemplate
from limen.errors import BadRequest, ConfigError, NotFound
from limen.fsio import atomic_write
from limen.vault.secrets import SecretBox, box_for

_USER_ID = re.compile(r"^[0-9a-f]{1,64}$")
_FILE = re.compile(r"^([0-9a-f]{1,64})(?:\.([1-9]|10))?\.fmr$")

FINGER_NAMES = ("unknown finger", "right thumb", "right index", "right middle", "right ring", "right little",
                "left thumb", "left index", "left middle", "left ring", "left little")  # ISO/IEC 19794-2 positions


def _label(user_id: str, position: int) -> str:
    return f"finger:{user_id}" if position == 0 else f"finger:{user_id}:{position}"


def references_folder(data_dir: Path) -> Path:
    return data_dir / "fingerprints"


def erase_references(folder: Path, user_id: str) -> int:
    """Remove every finger of `user_id` from `folder` (no vault needed: erasure works after a zeroize too)."""
    if not _USER_ID.match(user_id) or not folder.is_dir():
        return 0
    removed = 0
    for path in folder.glob(f"{user_id}*.fmr"):
        m = _FILE.match(path.name)
        if m and m.group(1) == user_id:
            path.unlink()
            removed += 1
    return removed


def open_references(conn: sqlite3.Connection, data_dir: Path) -> FingerReferences:
    """The references of the lock whose vault is open over `conn`; `ConfigError` without an open vault."""
    box = box_for(conn)
    if box is None:
        raise ConfigError("fingerprints need the template vault; it is not open")
    return FingerReferences(references_folder(data_dir), box)


class FingerReferences:
    """Sealed fingerprint references of every enrolled person (see the module docstring)."""

    def __init__(self, folder: Path, box: SecretBox) -> None:
        self.folder = folder
        self._box = box

    def _path(self, user_id: str, position: int = 0) -> Path:
        if not _USER_ID.match(user_id):
            raise BadRequest("user_id", "not a Limen user id")
        if not 0 <= position < len(FINGER_NAMES):
            raise BadRequest("finger", f"a finger position 0-{len(FINGER_NAMES) - 1} (ISO/IEC 19794-2)")
        return self.folder / (f"{user_id}.fmr" if position == 0 else f"{user_id}.{position}.fmr")

    def put(self, user_id: str, templates: list[FingerTemplate], position: int = 0) -> None:
        """Seal and store `templates` as finger `position` of `user_id` (replacing that finger's earlier ones)."""
        path = self._path(user_id, position)
        if not 1 <= len(templates) <= thresholds.FINGER_ENROL_MAX_IMPRESSIONS:
            raise BadRequest("templates", f"1-{thresholds.FINGER_ENROL_MAX_IMPRESSIONS} impressions")
        plain = b"".join(struct.pack(">I", len(r)) + r for r in (iso.encode(t) for t in templates))
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(path, self._box.seal(_label(user_id, position), plain))

    def get(self, user_id: str) -> list[FingerTemplate]:
        """The impressions of every enrolled finger of `user_id`; `NotFound` if none (opaque vault errors if
        tampered)."""
        positions = self.fingers(user_id)
        if not positions:
            raise NotFound(f"no fingerprint reference for user {user_id}")
        return [t for position in positions for t in self._impressions(user_id, position)]

    def _impressions(self, user_id: str, position: int) -> list[FingerTemplate]:
        return _decode(self._box.unseal(_label(user_id, position), self._path(user_id, position).read_bytes()))

    def _files(self) -> list[tuple[str, int, Path]]:
        if not self.folder.is_dir():
            return []
        found = [(m, p) for p in self.folder.glob("*.fmr") if (m := _FILE.match(p.name))]
        return sorted((m.group(1), int(m.group(2) or 0), p) for m, p in found)

    def enrolled(self) -> list[str]:
        """The ids of everyone with at least one finger enrolled."""
        return sorted({user_id for user_id, _, _ in self._files()})

    def fingers(self, user_id: str) -> list[int]:
        """The enrolled finger positions of `user_id` (see FINGER_NAMES), without unsealing anything."""
        self._path(user_id)
        return [position for uid, position, _ in self._files() if uid == user_id]

    def delete(self, user_id: str, position: int | None = None) -> int:
        """Remove every finger of `user_id` (or one `position`); return how many fingers were removed."""
        path = self._path(user_id, position or 0)        # validates both
        if position is None:
            return erase_references(self.folder, user_id)
        if not path.exists():
            return 0
        path.unlink()
        return 1

    def export_for_backup(self) -> list[tuple[str, int, bytearray]]:
        """Every finger's records, unsealed: (user id, position, length-prefixed ISO records); wipe them after."""
        out: list[tuple[str, int, bytearray]] = []
        for user_id, position, path in self._files():
            out.append((user_id, position, bytearray(self._box.unseal(_label(user_id, position), path.read_bytes()))))
        return out

    def import_from_backup(self, fingers: list[tuple[str, int, bytes]], users: set[str] | frozenset[str]) -> int:
        """Seal the backed-up fingers of `users` under this lock's box (each checked as ISO records first)."""
        chosen = [(u, p, plain) for u, p, plain in fingers if u in users]
        for user_id, position, plain in chosen:
            self._path(user_id, position)
            if not 1 <= len(_decode(plain)) <= thresholds.FINGER_ENROL_MAX_IMPRESSIONS:
                raise BadRequest("backup", f"finger {position} of {user_id}: no usable impressions")
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for user_id, position, plain in chosen:
            atomic_write(self._path(user_id, position), self._box.seal(_label(user_id, position), plain))
        return len(chosen)

    def score(self, user_id: str, probe: FingerTemplate) -> float:
        """Best similarity of `probe` against every stored impression of `user_id`."""
        prepared = matcher.prepare(probe)
        return max(matcher.similarity(prepared, matcher.prepare(t)) for t in self.get(user_id))


def _decode(plain: bytes) -> list[FingerTemplate]:
    """Length-prefixed ISO/IEC 19794-2 records (what a finger's file seals)."""
    out, offset = [], 0
    while offset < len(plain):
        if offset + 4 > len(plain):
            raise BadRequest("iso_record", "truncated record length")
        (size,) = struct.unpack_from(">I", plain, offset)
        out.append(iso.decode(plain[offset + 4:offset + 4 + size]))
        offset += 4 + size
    return out
