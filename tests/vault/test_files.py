"""`vault.files.shred`: zeros over the file itself, never over what a link planted in its place points to."""

from __future__ import annotations

from pathlib import Path

from limen.vault.files import shred


def test_shred_zeroes_the_file_then_removes_it(tmp_path: Path) -> None:
    target = tmp_path / "sealed"
    target.write_bytes(b"secret" * 10)
    witness = tmp_path / "witness"
    witness.hardlink_to(target)              # sees the inode shred writes to
    shred(target)
    assert not target.exists()
    assert witness.read_bytes() == bytes(60)


def test_shred_removes_a_planted_symlink_without_touching_its_target(tmp_path: Path) -> None:
    victim = tmp_path / "elsewhere"
    victim.write_bytes(b"someone else's file")
    planted = tmp_path / "sealed"
    planted.symlink_to(victim)
    shred(planted)
    assert not planted.is_symlink() and not planted.exists()
    assert victim.read_bytes() == b"someone else's file"


def test_shred_of_nothing_is_no_error(tmp_path: Path) -> None:
    shred(tmp_path / "absent")
    assert not (tmp_path / "absent").exists()
