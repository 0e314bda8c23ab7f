"""Which extractor found a finger reference's minutiae, readable without unsealing anything (no NumPy).

Limen's extractor carries a version (`EXTRACTOR_VERSION`, raised when a change moves the minutiae it finds
enough to matter for matching).  A template it extracts holds it (`FingerTemplate.extractor`) and so does its
ISO record (`iso`: the vendor extension area 'LV'); a record without it is another system's or one of Limen's
from before versions were kept, and reads as unknown (None).  Beside each enrolled finger's sealed file
``<user id>[.<position>].fmr`` a plaintext marker ``… .extractor`` holds the oldest version among its impressions
(written at enrolment and at a backup's import; none when any impression is unknown), so `limen status` can
name the fingers worth re-enrolling without unsealing a single record.  The marker says only which extractor
version made a finger already listed by its file name; a missing or unreadable marker reads as unknown.

Versions: 1 — the bifurcation trace fix (1 December 2026; before it one bifurcation in five pointed the wrong
way, so every record without a version predates it or is another system's).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from limen.fsio import atomic_write

EXTRACTOR_VERSION = 1
FOLDER = "fingerprints"          # under the data directory (`references.references_folder`)
REFERENCE_FILE = re.compile(r"^([0-9a-f]{1,64})(?:\.([1-9]|10))?\.fmr$")
_SUFFIX = ".extractor"
_MAX_MARKER = 16                 # bytes read from a marker (a version is at most 3 digits)


def marker_path(reference: Path) -> Path:
    """The marker beside a finger's sealed file."""
    return reference.with_name(reference.name + _SUFFIX)


def oldest(versions: list[int | None]) -> int | None:
    """The version a finger of these impressions is marked with: the oldest, None if any is unknown."""
    if not versions or any(v is None for v in versions):
        return None
    return min(v for v in versions if v is not None)


def write_marker(reference: Path, version: int | None) -> None:
    """Mark the finger sealed at `reference` as made by `version` (None: remove the marker, i.e. unknown)."""
    if version is None:
        forget_marker(reference)
    else:
        atomic_write(marker_path(reference), f"{version}\n".encode())


def forget_marker(reference: Path) -> None:
    """Remove the marker beside `reference`, if any."""
    with contextlib.suppress(FileNotFoundError):
        marker_path(reference).unlink()


def read_marker(reference: Path) -> int | None:
    """The extractor version the marker beside `reference` records; None when missing or not a version."""
    try:
        with marker_path(reference).open("rb") as f:
            text = f.read(_MAX_MARKER)
    except OSError:
        return None
    value = text.strip()
    return int(value) if value.isdigit() and 0 < len(value) <= 3 and int(value) > 0 else None


def outdated(folder: Path) -> list[tuple[str, int, int | None]]:
    """Every enrolled finger in `folder` whose marker is missing or older than `EXTRACTOR_VERSION`:
    (user id, finger position, its version or None), sorted."""
    if not folder.is_dir():
        return []
    out = []
    for path in folder.glob("*.fmr"):
        m = REFERENCE_FILE.match(path.name)
        if m is None:
            continue
        version = read_marker(path)
        if version is None or version < EXTRACTOR_VERSION:
            out.append((m.group(1), int(m.group(2) or 0), version))
    return sorted(out, key=lambda row: (row[0], row[1]))
