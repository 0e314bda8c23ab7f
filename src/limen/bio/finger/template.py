"""The fingerprint template: minutiae with direction, type and quality."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class MinutiaType(IntEnum):
    """ISO/IEC 19794-2 minutia types (2 bits in the record)."""

    OTHER = 0
    ENDING = 1
    BIFURCATION = 2


@dataclass(frozen=True)
class Minutia:
    """One minutia: pixel position, direction in radians [0, 2π), type, quality 0–100."""

    x: int
    y: int
    angle: float
    kind: MinutiaType
    quality: int


@dataclass(frozen=True)
class FingerTemplate:
    """Minutiae of one impression plus the image geometry they were found in.

    Biometric data: never logged; it persists only sealed by the vault.
    """

    width: int
    height: int
    dpi: int
    minutiae: tuple[Minutia, ...]

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions (n×2 float), angles (n), types (n) as arrays for the matcher."""
        if not self.minutiae:
            return np.zeros((0, 2)), np.zeros(0), np.zeros(0, dtype=np.int8)
        xy = np.array([(m.x, m.y) for m in self.minutiae], dtype=np.float64)
        ang = np.array([m.angle for m in self.minutiae], dtype=np.float64)
        kind = np.array([int(m.kind) for m in self.minutiae], dtype=np.int8)
        return xy, ang, kind
