"""Shared builders for the PAD tests: NUAA bursts and synthetic faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from limen.bio.face.detect import Box
from limen.capture import Capture, Frame, load_image
from limen.pad.faces import FaceView
from tests.conftest import shared


def nuaa_burst(kind: str, subject: str, n: int = 4, session: str = "01", skip: int = 0) -> Capture:
    """`n` consecutive frames of one subject and session (NUAA file order by frame index)."""
    folder = shared("nuaa-dev", kind, subject)
    files = sorted(folder.glob(f"{subject}_*_{session}_*.jpg"), key=_frame_no)[skip : skip + n]
    return Capture(tuple(Frame(rgb=load_image(f), t=float(i), source=str(f)) for i, f in enumerate(files)))


def nuaa_files(kind: str, subject: str, n: int, stride: int = 7) -> list[Path]:
    return sorted(shared("nuaa-dev", kind, subject).glob("*.jpg"), key=_frame_no)[::stride][:n]


def _frame_no(p: Path) -> tuple[str, int]:
    parts = p.stem.split("_")
    return ("_".join(parts[:4]), int(parts[4]))


def fake_view(index: int = 0, size: int = 200, seed: int = 0) -> FaceView:
    """A FaceView over random texture (for fusion/contract tests that do not need a real face)."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 255, (size + 40, size + 40, 3), dtype=np.uint8)
    box = Box(20, 20, 20 + size, 20 + size)
    points = np.array([[60, 80], [90, 80], [170, 80], [140, 80], [115, 140]], dtype=np.float64)
    return FaceView(index=index, frame=Frame(rgb=rgb), box=box, points=points, crop=rgb[20:-20, 20:-20])
