"""The fingerprint template: minutiae with direction, type and quality, and the block ridge-flow field."""

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
class BlockField:
    """The print's ridge flow at block resolution, kept beside the minutiae for the matcher's non-minutia
    evidence (orientation and ridge-frequency agreement over the aligned overlap).

    `rows` × `cols` blocks of `block` px (block (r, c) is centred on ((c + ½)·block, (r + ½)·block)), one
    byte each, row-major: ridge orientation in π/256 steps (image axes, y down), orientation coherence × 255,
    and ridge frequency (skeleton pixels per foreground pixel) × 1000, 0 = background.  A few hundred bytes to
    2 KiB; biometric data like the minutiae (it describes the print, it cannot rebuild it).
    """

    block: int
    rows: int
    cols: int
    orientation: bytes
    coherence: bytes
    frequency: bytes

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Orientation (rad, [0, π)), coherence ([0, 1]) and frequency (1/px, 0 = background), rows × cols."""
        shape = (self.rows, self.cols)
        theta = np.frombuffer(self.orientation, np.uint8).reshape(shape).astype(np.float64) * (np.pi / 256)
        coh = np.frombuffer(self.coherence, np.uint8).reshape(shape).astype(np.float64) / 255
        freq = np.frombuffer(self.frequency, np.uint8).reshape(shape).astype(np.float64) / 1000
        return theta, coh, freq


@dataclass(frozen=True)
class FingerTemplate:
    """Minutiae of one impression plus the image geometry they were found in.

    Biometric data: never logged; it persists only sealed by the vault.
    """

    width: int
    height: int
    dpi: int
    minutiae: tuple[Minutia, ...]
    field: BlockField | None = None     # None: a record from before the field was kept (older ISO records)
    extractor: int | None = None        # the Limen extractor version that found the minutiae
                                        # (versions.EXTRACTOR_VERSION); None: unknown (another system's record,
                                        # or Limen's from before versions were kept)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions (n×2 float), angles (n), types (n) as arrays for the matcher."""
        if not self.minutiae:
            return np.zeros((0, 2)), np.zeros(0), np.zeros(0, dtype=np.int8)
        xy = np.array([(m.x, m.y) for m in self.minutiae], dtype=np.float64)
        ang = np.array([m.angle for m in self.minutiae], dtype=np.float64)
        kind = np.array([int(m.kind) for m in self.minutiae], dtype=np.int8)
        return xy, ang, kind
