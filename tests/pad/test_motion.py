"""Motion cue: a face moved as a plane (homography warp of a photo) is flagged; a still face cannot tell."""

from __future__ import annotations

import cv2
import numpy as np

from limen import thresholds
from limen.capture import Capture, Frame, load_image
from limen.pad import faces
from limen.pad.contract import CueScore, CueUnavailable, Purpose
from limen.pad.motion import MotionCue
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
