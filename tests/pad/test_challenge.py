"""Head-turn challenge: the turn must happen, in order, and move like a 3-D head (not a replayed screen)."""

from __future__ import annotations

import numpy as np
import pytest

from limen.capture import load_image
from limen.errors import BadRequest
from limen.pad import Challenge, ChallengeSequence, Move, Purpose, assess
from limen.pad.challenge import ChallengeCue, frame_moves, sequence_performed, signed_yaw, turn_performed
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


# ------------------------------------------------------------------ random move sequences (kiosk)


def with_pose(view: FaceView, yaw: float = 0.0, up: float = 0.0) -> FaceView:
    """Landmarks of a head turned by `yaw` and tilted up by `up` (eye distances; eye distance 60 px)."""
    moved = with_yaw(view, yaw)
    points = moved.points.copy()
    points[4, 1] = 130 - up * 60  # the nose rises toward the eye line when the head tilts up
    return FaceView(view.index, view.frame, view.box, points, view.crop)


def poses(*steps: tuple[float, float]) -> list[FaceView]:
    return [with_pose(fake_view(i), y, u) for i, (y, u) in enumerate(steps)]


def test_random_sequences_are_valid_and_vary() -> None:
    drawn = {ChallengeSequence.random() for _ in range(30)}
    assert len(drawn) > 1
    for seq in drawn:
        assert len(seq.moves) == 3 and {Move.LEFT, Move.RIGHT} & set(seq.moves)
        assert all(a != b for a, b in zip(seq.moves, seq.moves[1:], strict=False))
        assert ChallengeSequence.parse(str(seq)) == seq


@pytest.mark.parametrize("text", ["left", "left,left", "left,jump", "", "left,up,right,up,left,right"])
def test_bad_sequences_are_refused(text: str) -> None:
    with pytest.raises(BadRequest):
        ChallengeSequence.parse(text)


def test_moves_are_read_from_yaw_and_pitch() -> None:
    views = poses((0.0, 0.0), (-0.3, 0.0), (0.0, 0.0), (0.0, 0.25), (0.3, 0.0), (0.0, 0.0))
    assert frame_moves(views) == [None, Move.LEFT, None, Move.UP, Move.RIGHT, None]


def test_the_sequence_must_be_exactly_the_one_asked() -> None:
    asked = ChallengeSequence.parse("left,up,right")
    L, R, U = Move.LEFT, Move.RIGHT, Move.UP  # noqa: N806
    assert sequence_performed([None, L, L, None, U, R, R, None], asked) == (1, 6)
    assert sequence_performed([None, R, U, L], asked) is None  # wrong order
    assert sequence_performed([L, R, U, R], asked) is None  # an extra move (a replay guessing)
    assert sequence_performed([L, U, None], asked) is None  # not finished


def test_a_planar_sequence_is_an_attack() -> None:
    rgb = load_image(nuaa_files("live", "0002", 1)[0])
    sample = locate(warped_burst(rgb, steps=5))
    steps = [(0.0, 0.0), (-0.3, 0.0), (0.0, 0.25), (0.3, 0.0), (0.0, 0.0)]
    moved = PadSample(tuple(with_pose(v, y, u) for v, (y, u) in zip(sample.faces, steps, strict=True)), analysed=5)
    result = ChallengeCue(ChallengeSequence.parse("left,up,right")).score(moved, Purpose.VERIFY)
    assert isinstance(result, CueScore) and result.says_attack


def test_a_still_face_does_not_perform_a_sequence() -> None:
    views = tuple(poses((0.0, 0.0), (0.01, 0.0), (0.0, 0.01), (0.0, 0.0)))
    result = ChallengeCue(ChallengeSequence.random()).score(PadSample(views, analysed=4), Purpose.VERIFY)
    assert isinstance(result, CueUnavailable) and result.reason == "not_performed"


def test_a_challenge_recorded_in_the_capture_is_required() -> None:
    from limen.capture import Capture, Frame

    rgb = load_image(nuaa_files("live", "0002", 1)[0])
    frames = tuple(Frame(rgb=rgb, t=float(i)) for i in range(3))
    asked = assess(Capture(frames, meta={"challenge": "left,up,right"}), purpose=Purpose.VERIFY)
    assert not asked.passed and asked.cues_missing["challenge"] == "not_performed"
    garbled = assess(Capture(frames, meta={"challenge": "dance"}), purpose=Purpose.VERIFY)
    assert not garbled.passed and garbled.reason == "insufficient_evidence"
