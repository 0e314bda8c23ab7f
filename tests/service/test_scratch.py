"""Uploads being decoded stay in RAM: a face video written for OpenCV, and uploads Starlette spools to a file,
never land on the lock's storage (where a deleted temporary file stays readable: raw face video)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from limen.capture import Capture, Frame
from limen.service import lockservice, scratch
from limen.service.lockservice import Upload


@pytest.fixture
def ram() -> Path:
    if not scratch.RAM.is_dir() or not os.access(scratch.RAM, os.W_OK):
        pytest.skip("no /dev/shm on this machine")
    return scratch.RAM


def test_a_face_video_is_decoded_from_ram(ram: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Path] = []

    def load(path: Path, name: str, budget: object) -> Capture:
        seen.append(path)
        assert path.read_bytes() == b"video bytes"
        return Capture(frames=(Frame(rgb=None),))  # type: ignore[arg-type]

    monkeypatch.setattr(lockservice, "load_capture", load)
    lockservice._video_capture(Upload("door.mp4", "video/mp4", b"video bytes"), object())  # type: ignore[arg-type]
    (path,) = seen
    assert path.is_relative_to(ram) and not path.exists()  # in RAM, and gone after
    assert path.parent.parent.stat().st_mode & 0o777 == 0o700  # the process's own directory


def test_serve_spools_uploads_in_ram(ram: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", tempfile.tempdir)  # restored after the test
    made = scratch.use_for_uploads()
    assert made is not None and Path(tempfile.gettempdir()) == made and made.is_relative_to(ram)
    with tempfile.SpooledTemporaryFile(max_size=1) as spooled:  # what Starlette does with a large upload
        spooled.write(b"more than one byte")
        spooled.rollover()
        assert Path(f"/proc/self/fd/{spooled.fileno()}").resolve().is_relative_to(made)


def test_no_ram_disk_falls_back_to_the_default(tmp_path: Path) -> None:
    assert scratch.scratch_dir(tmp_path / "absent") is None
