"""Motion cue: a face moved as a plane (homography warp of a photo) is flagged; a still face cannot tell."""

from __future__ import annotations

import cv2
import numpy as np

from limen import thresholds
from limen.bio.face.detect import Box
from limen.capture import Capture, Frame, load_image
from limen.pad import faces
from limen.pad.contract import CueScore, CueUnavailable, Purpose
from limen.pad.motion import MotionCue, box_corners
from tests.pad.helpers import nuaa_burst, nuaa_files


def warped_burst(rgb: np.ndarray, steps: int = 4) -> Capture:
    """The same picture tilted a little more each frame: what a hand-held photo does."""
    h, w = rgb.shape[:2]
    frames = []
    for i in range(steps):
        d = 6.0 * i
        src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        dst = np.float32([[d, d / 2], [w - d / 3, 0], [w, h], [d / 2, h - d]])
        m = cv2.getPerspectiveTransform(src, dst)
        frames.append(Frame(rgb=cv2.warpPerspective(rgb, m, (w, h), borderMode=cv2.BORDER_REFLECT), t=float(i)))
    return Capture(tuple(frames))


def test_planar_motion_is_flagged_as_attack() -> None:
    rgb = load_image(nuaa_files("live", "0002", 1)[0])
    result = MotionCue().score(faces.locate(warped_burst(rgb)), Purpose.VERIFY)
    assert isinstance(result, CueScore)
    assert result.says_attack
    assert result.evidence["parallax_ratio"] < thresholds.PAD_MOTION_PLANAR_RATIO


def test_still_frames_cannot_tell() -> None:
    rgb = load_image(nuaa_files("live", "0002", 1)[0])
    still = Capture(tuple(Frame(rgb=rgb, t=float(i)) for i in range(3)))
    result = MotionCue().score(faces.locate(still), Purpose.VERIFY)
    assert isinstance(result, CueUnavailable) and result.reason == "too_little_motion"


def test_live_burst_is_not_flagged() -> None:
    result = MotionCue().score(faces.locate(nuaa_burst("live", "0001")), Purpose.VERIFY)
    assert isinstance(result, CueScore | CueUnavailable)
    if isinstance(result, CueScore):
        assert not result.says_attack


def test_hand_held_simulated_print_burst_is_planar() -> None:
    """A matte print moved by hand tremor over a 5-frame burst (**simulated**, lab.recapture) moves as a plane."""
    from limen.lab.recapture import Species, simulate_burst

    rgb = load_image(nuaa_files("live", "0005", 1)[0])
    judged = []
    for seed in range(3):
        burst = Capture(tuple(Frame(rgb=f, t=float(i)) for i, f in
                              enumerate(simulate_burst(rgb, Species.PRINT_MATTE, seed=seed, frames=5))))
        result = MotionCue().score(faces.locate(burst), Purpose.VERIFY)
        if isinstance(result, CueScore):
            judged.append(result.says_attack)
    assert judged and all(judged)


def whole_frame_corners(g: np.ndarray, box: Box) -> np.ndarray | None:
    """The corners as the motion cue found them before `box_corners`: the whole frame, masked to the box."""
    mask = np.zeros_like(g)
    mask[box.top : box.bottom, box.left : box.right] = 255
    return cv2.goodFeaturesToTrack(g, maxCorners=thresholds.PAD_MOTION_MAX_POINTS, qualityLevel=0.01,
                                   minDistance=max(3, box.width // 25), mask=mask)


def random_box(rng: np.random.Generator, h: int, w: int) -> Box:
    left, top = int(rng.integers(-8, w - 40)), int(rng.integers(-8, h - 40))
    right = int(rng.integers(left + 30, min(w + 8, left + 420) + 1))
    bottom = int(rng.integers(top + 30, min(h + 8, top + 420) + 1))
    return Box(left, top, right, bottom)


def test_box_corners_are_the_whole_frames_bit_for_bit() -> None:
    """Real frames at several sizes (odd widths: vector tails), random boxes, boxes at and beyond the edges."""
    rng = np.random.default_rng(12)
    compared = found = 0
    for path in [p for kind in ("live", "print") for s in ("0001", "0003", "0007")
                 for p in nuaa_files(kind, s, 4, stride=11)]:
        g0 = cv2.cvtColor(load_image(path), cv2.COLOR_RGB2GRAY)
        for scale in (1.0, 0.71, 1.53):
            g = g0 if scale == 1.0 else np.ascontiguousarray(cv2.resize(g0, None, fx=scale, fy=scale)[:, 1:])
            h, w = g.shape
            boxes = [random_box(rng, h, w) for _ in range(6)]
            boxes += [Box(0, 0, w // 2, h // 2), Box(w // 2, h // 2, w, h), Box(0, 0, w, h), Box(-5, -3, 90, 80)]
            for box in boxes:
                want, got = whole_frame_corners(g, box), box_corners(g, box)
                assert (want is None) == (got is None), box
                if want is not None and got is not None:
                    assert got.dtype == want.dtype and np.array_equal(got, want), (path.name, scale, box)
                    found += len(want)
                compared += 1
    assert compared >= 700 and found >= 20_000  # real corner lists were compared, not empty ones
