"""False-minutia removal: the print's border against the image frame, spurs, quality order."""

from __future__ import annotations

import numpy as np

from limen import thresholds
from limen.bio.finger.filtering import true_minutiae
from limen.bio.finger.minutiae import RawMinutia
from limen.bio.finger.template import MinutiaType


def _ending(x: int, y: int, reaches: tuple[int, int] | None = None) -> RawMinutia:
    return RawMinutia(x, y, 0.0, MinutiaType.ENDING, reaches)


def test_the_print_border_drops_minutiae_but_the_image_frame_only_at_its_edge() -> None:
    mask = np.zeros((200, 200), bool)
    mask[:, :120] = True                          # the print reaches the left image edge, ends at x = 120
    frame = thresholds.FINGER_FRAME_MARGIN
    inner = thresholds.FINGER_BORDER_MARGIN
    near_frame = _ending(frame + 1, 100)
    at_frame = _ending(frame - 2, 60)
    near_print_edge = _ending(120 - inner + 3, 100)
    deep = _ending(60, 140)
    kept = {(m.x, m.y) for m in true_minutiae([near_frame, at_frame, near_print_edge, deep], mask,
                                              np.ones((200, 200), np.float32))}
    assert kept == {(near_frame.x, near_frame.y), (deep.x, deep.y)}


def test_both_ends_of_a_spur_go_and_quality_orders_the_rest() -> None:
    mask = np.ones((200, 200), bool)
    coherence = np.full((200, 200), 0.9, np.float32)
    coherence[:, 100:] = 0.4
    raw = [_ending(150, 100), _ending(50, 100), _ending(50, 30, reaches=(50, 60)), _ending(50, 60, reaches=(50, 30))]
    kept = true_minutiae(raw, mask, coherence)
    assert [(m.x, m.y) for m in kept] == [(50, 100), (150, 100)]
    assert kept[0].quality > kept[1].quality
