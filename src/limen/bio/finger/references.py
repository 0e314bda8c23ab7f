"""Fingerprint references at rest: ISO records sealed under the vault, one file per person.

Each person's impressions (ISO/IEC 19794-2 records) are sealed together with
the vault's `SecretBox` (AES-256-GCM under the vault's secrets key, label
``finger:<user id>``), written atomically 0600 under `<data dir>/fingerprints/`.
Raw minutiae never persist unencrypted; they exist in memory only while a
probe is compared.  A crypto-erase of the vault makes every file unreadable at
once (its key is gone); `delete` removes a person's file.  A missing vault is
an error (fail closed), never a plaintext fallback.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

from limen import thresholds
from limen.bio.finger import iso, matcher
from limen.bio.finger.template import FingerTemplate
from limen.errors import BadRequest, NotFound
from limen.fsio import atomic_write
from limen.vault.secrets import SecretBox

_USER_ID = re.compile(r"^[0-9a-f]{1,64}$")


def _label(user_id: str) -> str:
    return f"finger:{user_id}"


class FingerReferences:
    """Sealed fingerprint references of every enrolled person (see the module docstring)."""

    def __init__(self, folder: Path, box: SecretBox) -> None:
        self.folder = folder
        self._box = box

    def _path(self, user_id: str) -> Path:
        if not _USER_ID.match(user_id):
            raise BadRequest("user_id", "not a Limen user id")
        return self.folder / f"{user_id}.fmr"

    def put(self, user_id: str, templates: list[FingerTemplate]) -> None:
        """Seal and store `templates` (replacing earlier ones) for `user_id`."""
        if not 1 <= len(templates) <= thresholds.FINGER_ENROL_MAX_IMPRESSIONS:
            raise BadRequest("templates", f"1-{thresholds.FINGER_ENROL_MAX_IMPRESSIONS} impressions")
        plain = b"".join(struct.pack(">I", len(r)) + r for r in (iso.encode(t) for t in templates))
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(self._path(user_id), self._box.seal(_label(user_id), plain))

    def get(self, user_id: str) -> list[FingerTemplate]:
        """The impressions of `user_id`; `NotFound` if none (opaque vault errors if tampered)."""
        path = self._path(user_id)
        if not path.is_file():
            raise NotFound(f"no fingerprint reference for user {user_id}")
        plain = self._box.unseal(_label(user_id), path.read_bytes())
        out, offset = [], 0
        while offset < len(plain):
            (size,) = struct.unpack_from(">I", plain, offset)
            out.append(iso.decode(plain[offset + 4:offset + 4 + size]))
            offset += 4 + size
        return out

    def enrolled(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob("*.fmr")) if self.folder.is_dir() else []

    def delete(self, user_id: str) -> int:
        path = self._path(user_id)
        if not path.exists():
            return 0
        path.unlink()
        return 1

    def score(self, user_id: str, probe: FingerTemplate) -> float:
        """Best similarity of `probe` against every stored impression of `user_id`."""
        prepared = matcher.prepare(probe)
        return max(matcher.similarity(prepared, matcher.prepare(t)) for t in self.get(user_id))
