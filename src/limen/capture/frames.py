"""Frames and captures: the values every sensor produces."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One moment from the sensors: RGB (H×W×3 uint8), optional depth (H×W float32, metres) and IR."""

    rgb: np.ndarray
    t: float = 0.0
    depth: np.ndarray | None = None
    ir: np.ndarray | None = None
    source: str = ""

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

    @property
    def is_video(self) -> bool:
        return len(self.frames) > 1

    @classmethod
    def single(cls, rgb: np.ndarray, source: str = "") -> Capture:
        return cls((Frame(rgb=rgb, source=source),), source=source)
