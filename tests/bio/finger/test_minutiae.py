"""Candidate minutiae on synthetic skeletons: crossing numbers, directions, the spur rule."""

from __future__ import annotations

import numpy as np

from limen import thresholds
from limen.bio.finger.minutiae import raw_minutiae
from limen.bio.finger.template import MinutiaType

PERIOD = 10.0


def _line_with_branch(branch: int) -> np.ndarray:
    """A horizontal ridge (y 50, x 10–90) with a vertical branch of `branch` px going up from x 50."""
    skel = np.zeros((120, 120), bool)
    skel[50, 10:91] = True
    skel[50 - branch:50, 50] = True
    return skel


def test_a_short_branch_is_a_spur_at_both_ends() -> None:
    short = int(thresholds.FINGER_SPUR_PERIODS * PERIOD) - 2
    found = {(m.x, m.y): m for m in raw_minutiae(_line_with_branch(short), np.zeros((120, 120), np.float32), PERIOD)}
    fork, tip = found[(50, 50)], found[(50, 50 - short)]
    assert fork.kind == MinutiaType.BIFURCATION and tip.kind == MinutiaType.ENDING
    assert fork.reaches == (50, 50 - short) and tip.reaches == (50, 50)
    assert found[(10, 50)].reaches is None and found[(90, 50)].reaches is None


def test_a_branch_longer_than_the_spur_length_is_kept() -> None:
    long = int(thresholds.FINGER_SPUR_PERIODS * PERIOD) + 4
    found = {(m.x, m.y): m for m in raw_minutiae(_line_with_branch(long), np.zeros((120, 120), np.float32), PERIOD)}
    assert found[(50, 50)].reaches is None and found[(50, 50 - long)].reaches is None
    # the spur length follows the ridge period: the same branch is a spur between wider ridges
    wide = {(m.x, m.y): m for m in raw_minutiae(_line_with_branch(long), np.zeros((120, 120), np.float32), 3 * PERIOD)}
    assert wide[(50, 50)].reaches is not None


def test_ending_directions_point_into_their_ridge() -> None:
    skel = np.zeros((120, 120), bool)
    skel[50, 10:91] = True
    found = {(m.x, m.y): m for m in raw_minutiae(skel, np.zeros((120, 120), np.float32), PERIOD)}
    assert abs(np.cos(found[(10, 50)].angle) - 1) < 1e-6       # left end: the ridge runs to +x
    assert abs(np.cos(found[(90, 50)].angle) + 1) < 1e-6       # right end: the ridge runs to −x
