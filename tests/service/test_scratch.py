"""Uploads being decoded stay in RAM: a face video written for OpenCV, and uploads Starlette spools to a file,
never land on the lock's storage (where a deleted temporary file stays readable: raw face video)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from limen.capture import Capture, Frame
from limen.cli import app as cli_app
from limen.cli import serve as serve_cli
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


class _Server:
    """Stands in for uvicorn's server: spools an upload as Starlette does while `limen serve` runs, then returns."""

    spooled_in: Path | None = None

    def __init__(self, config: object) -> None:
        self.config = config

    def run(self) -> None:
        with tempfile.SpooledTemporaryFile(max_size=1) as spooled:  # what Starlette does with a large upload
            spooled.write(b"more than one byte")
            spooled.rollover()
            _Server.spooled_in = Path(f"/proc/self/fd/{spooled.fileno()}").resolve().parent


def test_serve_spools_uploads_in_ram(ram: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through `limen serve` itself: the spool lands in the process's private RAM directory only when serve made
    it the temporary directory (`use_for_uploads`)."""
    monkeypatch.setattr(tempfile, "tempdir", tempfile.tempdir)  # restored after the test
    monkeypatch.setattr(serve_cli.uvicorn, "Server", _Server)
    _Server.spooled_in = None
    result = CliRunner().invoke(cli_app, ["--data-dir", str(tmp_path / "data"), "serve", "--no-link"])
    assert result.exit_code == 0, result.output
    made = _Server.spooled_in
    assert made is not None and made.is_relative_to(ram) and made.name.startswith("limen-")
    assert not made.exists() and tempfile.gettempdir() != str(made)  # removed when the service stopped


def test_release_removes_only_the_process_s_own_directory(tmp_path: Path) -> None:
    """Links inside are removed, never followed; a directory replaced by a link is left alone (and its target)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_bytes(b"not ours")
    made = scratch.scratch_dir(tmp_path)
    assert made is not None
    (made / "link").symlink_to(outside, target_is_directory=True)
    (made / "left-over.mp4").write_bytes(b"an interrupted upload")
    assert scratch.release(tmp_path) and not made.exists()
    assert (outside / "keep").read_bytes() == b"not ours"
    assert not scratch.release(tmp_path)  # nothing made any more
    swapped = scratch.scratch_dir(tmp_path)
    assert swapped is not None and swapped != made
    swapped.rmdir()
    swapped.symlink_to(outside, target_is_directory=True)  # no longer our own directory
    assert not scratch.release(tmp_path)
    assert swapped.is_symlink() and (outside / "keep").read_bytes() == b"not ours"


def test_no_ram_disk_falls_back_to_the_default(tmp_path: Path) -> None:
    assert scratch.scratch_dir(tmp_path / "absent") is None
