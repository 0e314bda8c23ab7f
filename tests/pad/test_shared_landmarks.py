"""PAD reads the burst tracker's landmarks instead of fitting its own: the same decisions, one fit per frame fewer.

The tracker's last fit of a frame was made in the box drawn from the fit before it, PAD's own in the box drawn
from that last fit: the two sets of 5 points differ by a pixel or so where the boxes differ (on nuaa-dev 36 of
167 frames had the same box).  Only the motion cue reads them (its start points and eye distance); texture and
MiniFASNet read the box.  Measured on every nuaa-dev and simulated burst (docs/pad.md); here on 18 real bursts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from limen.bio.face import align, detect_burst
from limen.bio.face.detect import Box
from limen.capture import Capture
from limen.pad import assess, faces
from limen.pad.contract import Purpose
from limen.pad.faces import FaceView
from tests.pad.helpers import nuaa_burst

SUBJECTS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009")
MOTION_MOVED = 0.25  # log-odds the motion cue's score may move (0.155 here; its threshold is 0, nearest score 0.028)


@pytest.fixture(scope="module")
def tracked() -> list[tuple[Capture, list[Box | None], list[np.ndarray | None]]]:
    """18 real bursts (9 subjects, live and print) with the tracker's boxes and landmarks."""
    out = []
    for kind in ("live", "print"):
        for subject in SUBJECTS:
            capture = nuaa_burst(kind, subject, n=5, skip=10)
            tracks = detect_burst([f.rgb for f in capture.frames])
            out.append((capture, [t.box if t else None for t in tracks],
                        [t.marks.points if t else None for t in tracks]))
    return out


def test_given_points_are_used_and_not_fitted_again(tracked: list, monkeypatch: pytest.MonkeyPatch) -> None:
    capture, boxes, points = tracked[0]
    fits: list[Box] = []
    real = align.landmarks
    monkeypatch.setattr(faces.align, "landmarks", lambda rgb, box: fits.append(box) or real(rgb, box))
    sample = faces.locate(capture, boxes, points)
    assert fits == [] and len(sample.faces) == 5
    for view in sample.faces:
        assert np.array_equal(view.points, points[view.index])
    faces.locate(capture, boxes)
    assert len(fits) == 5  # without them PAD fits its own, in each box


def test_its_own_fit_given_back_is_the_same_view(tracked: list) -> None:
    capture, boxes, _ = tracked[1]
    own = faces.locate(capture, boxes)
    given = faces.locate(capture, boxes, [f.points for f in own.faces])
    assert len(own.faces) == len(given.faces) >= 4
    for a, b in zip(own.faces, given.faces, strict=True):
        assert _same_view(a, b)


def test_unusable_points_and_a_box_pad_replaces_are_not_used(tracked: list) -> None:
    capture, boxes, points = tracked[2]
    own = faces.locate(capture, boxes)
    bad = [np.full((5, 2), np.nan), np.zeros((4, 2)), None, *points[3:]]
    located = faces.locate(capture, boxes, bad)
    for a, b in zip(own.faces[:3], located.faces[:3], strict=True):
        assert _same_view(a, b)  # fitted by PAD
    outside = Box(-5, -5, 10_000, 10_000)  # does not fit the frame: PAD detects, and fits in its own box
    alone = Capture(capture.frames[:1])
    assert _same_view(faces.locate(alone, [outside], [points[0] + 50.0]).faces[0], faces.locate(alone).faces[0])


def test_the_same_verdicts_on_nuaa_bursts(tracked: list, minifasnet_models_dir: Path) -> None:
    moved = []
    for capture, boxes, points in tracked:
        for purpose in Purpose:
            own = assess(capture, purpose=purpose, boxes=boxes, models_dir=minifasnet_models_dir)
            shared = assess(capture, purpose=purpose, boxes=boxes, landmarks=points, models_dir=minifasnet_models_dir)
            assert (shared.passed, shared.reason, shared.frames_usable) == (own.passed, own.reason, own.frames_usable)
            assert shared.scores.keys() == own.scores.keys()
            for cue, score in own.scores.items():
                if cue == "motion":
                    moved.append(abs(shared.scores[cue] - score))
                    assert (shared.scores[cue] >= 0) == (score >= 0)  # the same side of the cue's threshold
                else:
                    assert shared.scores[cue] == score, cue  # read from the box, not the points
    assert moved and max(moved) <= MOTION_MOVED
    reasons = {assess(c, purpose=Purpose.VERIFY, boxes=b, landmarks=p, models_dir=minifasnet_models_dir).reason
               for c, b, p in tracked}
    assert "bona_fide" in reasons and len(reasons) >= 2  # live passes, print does not: decisions are compared


def _same_view(a: FaceView, b: FaceView) -> bool:
    return (a.index, a.box) == (b.index, b.box) and np.array_equal(a.points, b.points) and np.array_equal(a.crop,
                                                                                                         b.crop)
