"""Decode images, videos and folders of frames safely.

Hostile input is expected: oversize files, decompression bombs, truncated
data, odd modes (16-bit, CMYK, palette, grayscale, alpha) and EXIF rotation.
Everything is normalised to 8-bit RGB, upright, or refused with `BadImage`.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from limen import thresholds
from limen.capture.frames import Capture, Frame
from limen.errors import BadImage

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".y4m", ".m4v"})

Image.MAX_IMAGE_PIXELS = thresholds.MAX_IMAGE_PIXELS


def load_image(path: str | Path) -> np.ndarray:
    """Return the image at `path` as upright 8-bit RGB (H×W×3), or raise `BadImage`."""
    p = Path(path)
    _check_file(p)
    return _decode(p, p)


def decode_image_bytes(data: bytes, name: str = "<upload>") -> np.ndarray:
    """Like `load_image`, for bytes already in memory (uploads, camera frames)."""
    if not data:
        raise BadImage(name, "empty file")
    if len(data) > thresholds.MAX_IMAGE_BYTES:
        raise BadImage(name, f"file too large ({len(data)} bytes > {thresholds.MAX_IMAGE_BYTES})")
    return _decode(io.BytesIO(data), name)


def _decode(source: Path | BinaryIO, name: str | Path) -> np.ndarray:
    """Decode with the pixel-count guard checked from the header, before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                _check_pixels(Path(name), img.size)
                img.load()
                return to_rgb_array(img)
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage(name, f"image too large (decompression bomb guard: {exc})") from exc
    except UnidentifiedImageError as exc:
        raise BadImage(name, "not an image file (unrecognised format)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadImage(name, f"cannot decode image ({exc})") from exc


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """Upright (EXIF), 8-bit, 3-channel RGB array from any PIL mode."""
    img = ImageOps.exif_transpose(img) or img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = float(arr.max()) if arr.size else 0.0
        scale = 255.0 / hi if hi > 0 else 0.0
        img = Image.fromarray(np.clip(arr * scale, 0, 255).astype(np.uint8), mode="L")
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    rgb = np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise ValueError(f"unexpected decoded shape {rgb.shape}")
    return rgb


def load_capture(path: str | Path) -> Capture:
    """An image, a video file or a folder of frames, as a `Capture`."""
    p = Path(path)
    if p.is_dir():
        return _load_folder(p)
    if p.suffix.lower() in VIDEO_SUFFIXES:
        return _load_video(p)
    return Capture.single(load_image(p), source=str(p))


def _check_file(p: Path) -> None:
    if not p.exists():
        raise BadImage(p, "no such file")
    if p.is_dir():
        raise BadImage(p, "is a directory, not an image")
    size = p.stat().st_size
    if size == 0:
        raise BadImage(p, "empty file")
    if size > thresholds.MAX_IMAGE_BYTES:
        raise BadImage(p, f"file too large ({size} bytes > {thresholds.MAX_IMAGE_BYTES})")


def _check_pixels(p: Path, size: tuple[int, int]) -> None:
    w, h = size
    if w * h > thresholds.MAX_IMAGE_PIXELS:
        raise BadImage(p, f"image too large ({w}×{h} pixels > {thresholds.MAX_IMAGE_PIXELS})")
    if w < 1 or h < 1:
        raise BadImage(p, "image has no pixels")


def _load_folder(p: Path) -> Capture:
    files = sorted((f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES), key=_natural)
    if not files:
        raise BadImage(p, "folder holds no image frames")
    files = files[: thresholds.MAX_VIDEO_FRAMES]
    frames = tuple(Frame(rgb=load_image(f), t=float(i), source=str(f)) for i, f in enumerate(files))
    return Capture(frames, source=str(p))


def _natural(path: Path) -> list[tuple[int, int | str]]:
    """Sort key that orders frame_2 before frame_10."""
    import re

    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", path.name)]


def _load_video(p: Path) -> Capture:
    import cv2

    _check_file(p)
    cap = cv2.VideoCapture(str(p))
    try:
        if not cap.isOpened():
            raise BadImage(p, "cannot open video")
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        frames: list[Frame] = []
        index = 0
        while len(frames) < thresholds.MAX_VIDEO_FRAMES:
            ok, bgr = cap.read()
            if not ok or bgr is None:
                break
            if index % thresholds.VIDEO_FRAME_STRIDE == 0:
                h, w = bgr.shape[:2]
                _check_pixels(p, (w, h))
                rgb = np.ascontiguousarray(bgr[:, :, ::-1])
                frames.append(Frame(rgb=rgb, t=index / fps, source=f"{p}#{index}"))
            index += 1
    finally:
        cap.release()
    if not frames:
        raise BadImage(p, "video holds no decodable frames")
    return Capture(tuple(frames), source=str(p))
