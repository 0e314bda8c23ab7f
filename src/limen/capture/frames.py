"""Frames and captures: the values every sensor produces.

A `Frame` holds one moment of every stream a device gives: colour (RGB),
depth in **millimetres** (uint16 as a depth camera delivers it, or float32;
0 means "no measurement", a hole) and near-infrared (uint8 or uint16).
Depth and IR, when present, are registered to the colour image (same H×W,
pixel for pixel); `geometry` keeps the intrinsics of each stream and the
depth-to-colour extrinsics they were registered with, `device` names the
device that produced the frame (frames of one capture must share it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of one stream, in pixels (distortion already removed)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float


@dataclass(frozen=True)
class Extrinsics:
    """Rigid transform from one stream's camera frame to another's: x' = R·x + t (t in millimetres)."""

    rotation: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)  # row-major 3×3
    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class StreamGeometry:
    """Intrinsics per stream and the depth→colour extrinsics (IR shares the depth camera's viewpoint)."""

    colour: Intrinsics
    depth: Intrinsics | None = None
    ir: Intrinsics | None = None
    depth_to_colour: Extrinsics = field(default_factory=Extrinsics)


@dataclass(frozen=True)
class Frame:
    """One moment from the sensors (see the module docstring for units).

    `rgb` is H×W×3 uint8; `depth` H×W millimetres (0 = hole); `ir` H×W;
    `t` seconds; `emitter_on` whether the IR projector/illuminator was on
    (None when the device does not say).
    """

    rgb: np.ndarray
    t: float = 0.0
    depth: np.ndarray | None = None
    ir: np.ndarray | None = None
    source: str = ""
    geometry: StreamGeometry | None = None
    device: str = ""
    emitter_on: bool | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


@dataclass(frozen=True)
class Capture:
    """A short sequence of frames from one presentation (one frame for a still image)."""

    frames: tuple[Frame, ...]
    source: str = ""
    meta: dict[str, str] = field(default_factory=dict)

    @classmethod
    def single(cls, rgb: np.ndarray, source: str = "") -> Capture:
        return cls((Frame(rgb=rgb, source=source),), source=source)
