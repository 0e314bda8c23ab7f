"""Build Chromium fake-camera files (.y4m) from real face sequences, for the browser tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def sequence(folder: Path, session: str, n: int, start: int = 0) -> list[Path]:
    """`n` consecutive frames of one NUAA session (`SSSS_GG_PP_ss_n.jpg`, ordered by frame number)."""
    frames = sorted((p for p in folder.glob("*.jpg") if p.stem.split("_")[3] == session),  # not GG/PP == session
                    key=lambda p: int(p.stem.rsplit("_", 1)[-1]))
    return frames[start:start + n]


def write_y4m(frames: list[Path], out: Path, fps: int = 10, size: tuple[int, int] = (640, 480)) -> Path:
    """Write `frames` as an uncompressed YUV4MPEG2 (I420) video that Chromium loops as its camera."""
    w, h = size
    with out.open("wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for path in frames:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError(f"{path}: not an image")
            if bgr.shape[:2] != (h, w):
                bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)
            yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
            f.write(b"FRAME\n")
            f.write(np.ascontiguousarray(yuv).tobytes())
    return out


def write_avi(frames: list[Path], out: Path, fps: int = 10) -> Path:
    """Write `frames` as a small Motion-JPEG .avi (what an owner might upload as a short video)."""
    first = cv2.imread(str(frames[0]), cv2.IMREAD_COLOR)
    h, w = first.shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    try:
        for path in frames:
            writer.write(cv2.imread(str(path), cv2.IMREAD_COLOR))
    finally:
        writer.release()
    return out
