"""An enrolment burst is one continuous capture: separate photos of a person are refused (issue 18)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from limen.bio.face.burst import scene_change
from limen.capture import load_capture
from limen.thresholds import ENROL_BURST_MAX_SCENE_CHANGE
from tests.cli.test_cli import limen
from tests.conftest import install_face_models, nuaa_burst, shared


def _lfw_photos(dest: Path, person: str, count: int = 5) -> Path:
    dest.mkdir(parents=True)
    for photo in sorted(shared("lfw-subset", person).iterdir())[:count]:
        (dest / photo.name).symlink_to(photo)
    return dest


def _frames(folder: Path) -> list[np.ndarray]:
    return [f.rgb for f in load_capture(folder).frames]


@pytest.mark.parametrize("person", ["Tony_Blair", "George_W_Bush", "Colin_Powell"])
def test_separate_photos_of_one_person_are_not_a_burst(tmp_path: Path, person: str) -> None:
    assert scene_change(_frames(_lfw_photos(tmp_path / "photos", person))) > ENROL_BURST_MAX_SCENE_CHANGE


@pytest.mark.parametrize(("subject", "session"), [("0001", "01"), ("0004", "02"), ("0006", "01")])
def test_consecutive_frames_of_one_capture_are_a_burst(tmp_path: Path, subject: str, session: str) -> None:
    assert scene_change(_frames(nuaa_burst(tmp_path / "burst", "live", subject, session, 10))) \
        <= ENROL_BURST_MAX_SCENE_CHANGE


def test_images_of_different_sizes_are_not_one_capture() -> None:
    assert scene_change([np.zeros((40, 40, 3), np.uint8), np.zeros((50, 40, 3), np.uint8)]) == float("inf")


def test_enrolling_a_folder_of_photos_says_take_a_burst(tmp_path: Path, imported_face_models: Path) -> None:
    install_face_models(imported_face_models, tmp_path / "data")
    photos = _lfw_photos(tmp_path / "photos", "Tony_Blair")
    out = limen(tmp_path / "data", "enrol", "Tony", "--consent", "--purpose", "door", "--retention-days", "30",
                "--face", str(photos))
    assert out.returncode != 0 and "take a burst/video, not separate photos" in out.stderr, out.stderr
    assert "Tony" not in limen(tmp_path / "data", "users", "list").stdout
