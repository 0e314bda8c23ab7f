"""The cues of part 2 — depth, infrared, sub-surface dots, eye region, pulse — gathered for the pipeline.

Each judges only when the frames carry its channel (depth, IR, or a long
enough RGB capture) and is `CueUnavailable` otherwise, so assurance stays
below HIGH and nothing passes by default.  Depth, IR and eye-region
and sub-surface (dot contrast, in pad/infrared.py) thresholds are calibrated
on the **simulator** (limen.lab.simulate); pulse
is validated on real skin (rppg-skin) and its non-pulse side is simulated.
"""

from __future__ import annotations

from limen.pad.depth import DepthCue
from limen.pad.eyes import EyeRegionCue
from limen.pad.infrared import InfraredCue, SubsurfaceCue
from limen.pad.pulse import PulseCue

__all__ = ["DepthCue", "EyeRegionCue", "InfraredCue", "PulseCue", "SubsurfaceCue"]
