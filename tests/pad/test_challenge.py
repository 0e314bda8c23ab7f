"""Head-turn challenge: the turn must happen, in order, and move like a 3-D head (not a replayed screen)."""

from __future__ import annotations

import numpy as np

from limen.capture import load_image
from limen.pad import Challenge, Purpose, assess
from limen.pad.challenge import ChallengeCue, signed_yaw, turn_performed
from limen.pad.contract import CueScore, CueUnavailable
from limen.pad.faces import FaceView, PadSample, locate
from tests.pad.helpers import fake_view, nuaa_files
from tests.pad.test_motion import warped_burst


def with_yaw(view: FaceView, yaw: float) -> FaceView:
    points = np.array([[60, 80], [90, 80], [150, 80], [120, 80], [105, 130]], dtype=np.float64)
    points[4, 0] = 105 + yaw * 60  # eye distance is 60 px
    return FaceView(view.index, view.frame, view.box, points, view.crop)


def test_signed_yaw_follows_the_nose() -> None:
    assert signed_yaw(with_yaw(fake_view(), -0.3)) < -0.25
    assert signed_yaw(with_yaw(fake_view(), 0.3)) > 0.25
    assert abs(signed_yaw(with_yaw(fake_view(), 0.0))) < 1e-9


def test_turn_order_matters() -> None:
    assert turn_performed([0.0, -0.3, 0.0, 0.3], Challenge.TURN_LEFT_RIGHT) == (1, 3)
    assert turn_performed([0.0, 0.3, 0.0, -0.3], Challenge.TURN_LEFT_RIGHT) is None
    assert turn_performed([0.0, 0.3, 0.0, -0.3], Challenge.TURN_RIGHT_LEFT) == (1, 3)
    assert turn_performed([0.0, 0.05, -0.05], Challenge.TURN_LEFT_RIGHT) is None


def test_no_turn_is_not_performed() -> None:
    views = tuple(with_yaw(fake_view(i), 0.0) for i in range(4))
    result = ChallengeCue(Challenge.TURN_LEFT_RIGHT).score(PadSample(views, analysed=4), Purpose.VERIFY)
    assert isinstance(result, CueUnavailable) and result.reason == "not_performed"


def test_a_planar_turn_is_an_attack() -> None:
    rgb = load_image(nuaa_files("live", "0002", 1)[0])
    sample = locate(warped_burst(rgb))
    yaws = [-0.3, -0.1, 0.1, 0.3]
    turned = PadSample(tuple(with_yaw(v, y) for v, y in zip(sample.faces, yaws, strict=True)), analysed=4)
    result = ChallengeCue(Challenge.TURN_LEFT_RIGHT).score(turned, Purpose.VERIFY)
    assert isinstance(result, CueScore) and result.says_attack


def test_assess_requires_a_requested_challenge() -> None:
    rgb = load_image(nuaa_files("live", "0002", 1)[0])
    from limen.capture import Capture, Frame

    still = Capture(tuple(Frame(rgb=rgb, t=float(i)) for i in range(3)))
    v = assess(still, purpose=Purpose.VERIFY, challenge=Challenge.TURN_LEFT_RIGHT)
    assert not v.passed and v.reason == "insufficient_evidence"
    assert "challenge" in v.detail and v.cues_missing["challenge"] == "not_performed"
