"""The challenge thresholds hold on real still faces and against a flat print turned or tilted as a plane."""

from __future__ import annotations

import numpy as np
import pytest

from limen import thresholds
from limen.capture import Capture, Frame, load_image
from limen.lab.challenge_calibration import nuaa_runs, plane_homography, run_poses, turned_print
from limen.pad import ChallengeSequence, Purpose
from limen.pad.challenge import ChallengeCue, frame_moves, signed_yaw
from limen.pad.contract import CueScore
from limen.pad.faces import locate
from tests.conftest import shared
from tests.pad.helpers import nuaa_files


def test_an_unturned_plane_is_the_identity() -> None:
    np.testing.assert_allclose(plane_homography(640, 480, 0.0, 0.0), np.eye(3), atol=1e-12)
    h = plane_homography(640, 480, 30.0, 0.0)
    centre = h @ np.array([320.0, 240.0, 1.0])
    np.testing.assert_allclose(centre[:2] / centre[2], [320.0, 240.0], atol=1e-9)  # turned about its centre
    assert not np.allclose(h, np.eye(3))


@pytest.mark.parametrize("subject", ["0001", "0009"])
def test_real_still_faces_show_no_move(subject: str) -> None:
    """Every frame of real nuaa-dev live runs (people sitting still) reads as neutral: no false move."""
    runs = {k: v for k, v in nuaa_runs(shared("nuaa-dev", "live")).items() if k.startswith(subject)}
    assert runs
    for files in runs.values():
        sample = locate(Capture(tuple(Frame(rgb=load_image(f), t=float(i)) for i, f in enumerate(files[:8]))))
        assert len(sample.faces) >= 4
        assert frame_moves(list(sample.faces)) == [None] * len(sample.faces)
        assert max(abs(p.yaw) for p in run_poses(files)) < thresholds.PAD_CHALLENGE_MIN_YAW


def test_a_turned_flat_print_cannot_fake_a_turn() -> None:
    rgb = load_image(nuaa_files("live", "0002", 1)[0])
    flat = locate(Capture.single(rgb)).faces[0]
    for angle in (-45.0, -30.0, 30.0, 45.0):
        view = locate(Capture.single(turned_print(rgb, angle, 0.0))).faces[0]
        assert abs(signed_yaw(view) - signed_yaw(flat)) < thresholds.PAD_CHALLENGE_MIN_YAW
        assert frame_moves([flat, view, flat]) == [None, None, None]


def test_a_print_tilted_and_turned_through_a_sequence_is_refused() -> None:
    """Tilting a print can fake "up", never a turn: no sequence with a turn passes, and its motion is planar."""
    rgb = load_image(nuaa_files("live", "0002", 1)[0])
    poses = [(0.0, 0.0), (-45.0, 0.0), (0.0, 45.0), (45.0, 0.0), (0.0, 0.0)]
    frames = tuple(Frame(rgb=turned_print(rgb, y, p), t=float(i)) for i, (y, p) in enumerate(poses))
    sample = locate(Capture(frames))
    assert len(sample.faces) == len(poses)
    for asked in ("left,up,right", "right,up,left", "up,left"):
        result = ChallengeCue(ChallengeSequence.parse(asked)).score(sample, Purpose.VERIFY)
        assert not (isinstance(result, CueScore) and not result.says_attack), asked
