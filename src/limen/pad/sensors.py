"""Slots for the sensor cues of part 2 (depth, infrared): today they report what is missing.

A depth or IR cue judges only when the frames carry that channel *and* a
calibrated detector exists; until then it is `CueUnavailable`, so the
assurance stays below HIGH and nothing passes by default.
"""

from __future__ import annotations

from limen.pad.contract import CueResult, CueUnavailable, Purpose
from limen.pad.faces import PadSample


class DepthCue:
    """Depth-map flatness (masks, photos, screens); not calibrated yet."""

    name = "depth"

    def score(self, sample: PadSample, purpose: Purpose) -> CueResult:
        if not any(f.frame.depth is not None for f in sample.faces):
            return CueUnavailable(self.name, "no_depth_frames")
        return CueUnavailable(self.name, "not_calibrated")


class InfraredCue:
    """Near-infrared reflectance of skin; not calibrated yet."""

    name = "infrared"

    def score(self, sample: PadSample, purpose: Purpose) -> CueResult:
        if not any(f.frame.ir is not None for f in sample.faces):
            return CueUnavailable(self.name, "no_infrared_frames")
        return CueUnavailable(self.name, "not_calibrated")
