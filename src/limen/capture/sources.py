"""Decode images, videos and folders of frames safely.

Hostile input is expected: oversize files, decompression bombs, truncated
data, odd modes (16-bit, CMYK, palette, grayscale, alpha) and EXIF rotation.
Everything is normalised to 8-bit RGB, upright, or refused with `BadImage`.

Memory is bounded by pixels, not bytes: every frame is charged to a
`PixelBudget` from the size its container declares, before a pixel is decoded
(`FRAME_MAX_PIXELS` each, `CAPTURE_MAX_PIXELS` for one capture or request);
video frames are decoded one at a time and checked against the declared size,
and reading stops when the budget is spent.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from limen import thresholds
from limen.capture.frames import Capture, Frame
from limen.errors import BadImage

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".y4m", ".m4v"})

Image.MAX_IMAGE_PIXELS = thresholds.FRAME_MAX_PIXELS  # PIL's own guard, behind ours


class PixelBudget:
    """The pixels one capture (or one request's uploads) may still decode.

    `charge` is called with the size a header declares, before decoding; it
    refuses a frame above `FRAME_MAX_PIXELS` and, with `strict`, one that no
    longer fits (`fits` lets a video stop early instead).  Not thread-safe: one
    per request.
    """

    def __init__(self, total: int = thresholds.CAPTURE_MAX_PIXELS) -> None:
        self.total = self.left = total

    def fits(self, w: int, h: int) -> bool:
        return w * h <= self.left

    def charge(self, name: str | Path, w: int, h: int) -> None:
        _check_pixels(name, (w, h))
        if not self.fits(w, h):
            raise BadImage(name, f"too many pixels in all ({self.total} at most); send fewer or smaller images")
        self.left -= w * h


def load_image(path: str | Path, budget: PixelBudget | None = None) -> np.ndarray:
    """Return the image at `path` as upright 8-bit RGB (H×W×3), or raise `BadImage`."""
    p = Path(path)
    _check_file(p)
    return _decode(p, p, budget or PixelBudget())


def decode_image_bytes(data: bytes, name: str = "<upload>", budget: PixelBudget | None = None) -> np.ndarray:
    """Like `load_image`, for bytes already in memory (uploads, camera frames); `budget` spans a request."""
    if not data:
        raise BadImage(name, "empty file")
    if len(data) > thresholds.MAX_IMAGE_BYTES:
        raise BadImage(name, f"file too large ({len(data)} bytes > {thresholds.MAX_IMAGE_BYTES})")
    return _decode(data, name, budget or PixelBudget())


def _decode(source: Path | bytes, name: str | Path, budget: PixelBudget) -> np.ndarray:
    """Decode with the pixel budget charged from the header, before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source if isinstance(source, Path) else io.BytesIO(source)) as img:
                budget.charge(name, *img.size)
                if img.format == "JPEG" and img.mode in ("RGB", "L"):
                    return _decode_jpeg(source, name, img.size)
                img.load()
                return to_rgb_array(img)
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage(name, f"image too large (decompression bomb guard: {exc})") from exc
    except UnidentifiedImageError as exc:
        raise BadImage(name, "not an image file (unrecognised format)") from exc
    except (OSError, SyntaxError, ValueError, MemoryError) as exc:
        raise BadImage(name, f"cannot decode image ({type(exc).__name__})") from exc


def _decode_jpeg(source: Path | bytes, name: str | Path, size: tuple[int, int]) -> np.ndarray:
    """A YCbCr or grey JPEG decoded once, straight into the array returned (upright, RGB).

    OpenCV decodes into its BGR array and applies the EXIF orientation; the
    channels are swapped in place.  The same pixels as PIL's decode (both
    libjpeg-turbo, tests/capture/test_sources.py); CMYK JPEGs, which differ by
    one level, stay with PIL.
    """
    import cv2  # the decoder of the face path; loaded when a JPEG is decoded, not for `limen status`

    data = source.read_bytes() if isinstance(source, Path) else source
    try:
        rgb = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise BadImage(name, "cannot decode image (damaged JPEG)") from exc
    if rgb is None:
        raise BadImage(name, "cannot decode image (truncated or damaged JPEG)")
    if rgb.shape[:2] not in ((size[1], size[0]), (size[0], size[1])):
        raise BadImage(name, f"decoded {rgb.shape[1]}×{rgb.shape[0]}, the header said {size[0]}×{size[1]}")
    return cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB, dst=rgb)


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


def load_capture(path: str | Path, *, name: str | None = None, budget: PixelBudget | None = None) -> Capture:
    """An image, a video file or a folder of frames, as a `Capture`.

    `name` is what errors and frame sources say instead of the path (an upload's
    file name, never a server temp path); `budget` bounds the pixels decoded.
    """
    p = Path(path)
    budget = budget or PixelBudget()
    if p.is_dir():
        return _load_folder(p, budget)
    if p.suffix.lower() in VIDEO_SUFFIXES:
        return _load_video(p, name or str(p), budget)
    _check_file(p, name)
    return Capture.single(_decode(p, name or p, budget), source=name or str(p))


def _check_file(p: Path, name: str | None = None) -> None:
    shown = name or p
    if not p.exists():
        raise BadImage(shown, "no such file")
    if p.is_dir():
        raise BadImage(shown, "is a directory, not an image")
    size = p.stat().st_size
    if size == 0:
        raise BadImage(shown, "empty file")
    if size > thresholds.MAX_IMAGE_BYTES:
        raise BadImage(shown, f"file too large ({size} bytes > {thresholds.MAX_IMAGE_BYTES})")


def _check_pixels(p: str | Path, size: tuple[int, int]) -> None:
    w, h = size
    if w * h > thresholds.FRAME_MAX_PIXELS:
        raise BadImage(p, f"image too large ({w}×{h} pixels > {thresholds.FRAME_MAX_PIXELS})")
    if w < 1 or h < 1:
        raise BadImage(p, "image has no pixels")


def _load_folder(p: Path, budget: PixelBudget) -> Capture:
    files = sorted((f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES), key=_natural)
    if not files:
        raise BadImage(p, "folder holds no image frames")
    files = files[: thresholds.MAX_VIDEO_FRAMES]
    frames = tuple(Frame(rgb=load_image(f, budget), t=float(i), source=str(f)) for i, f in enumerate(files))
    return Capture(frames, source=str(p))


def _natural(path: Path) -> list[tuple[int, int | str]]:
    """Sort key that orders frame_2 before frame_10."""
    import re

    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", path.name)]


def _load_video(p: Path, name: str, budget: PixelBudget) -> Capture:
    """Frames one at a time: the container's frame size is checked before the first is decoded, each decoded
    frame must have that size, and reading stops at `MAX_VIDEO_FRAMES` or when the pixel budget is spent."""
    import cv2

    _check_file(p, name)
    cap = cv2.VideoCapture(str(p))
    try:
        if not cap.isOpened():
            raise BadImage(name, "cannot open video (unknown or damaged format)")
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if w < 1 or h < 1:
            raise BadImage(name, "video does not declare its frame size")
        _check_pixels(name, (w, h))
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        frames: list[Frame] = []
        index = 0
        while len(frames) < thresholds.MAX_VIDEO_FRAMES and budget.fits(w, h):
            ok, bgr = cap.read()
            if not ok or bgr is None:
                break
            if bgr.shape[:2] != (h, w):
                raise BadImage(name, f"a frame is {bgr.shape[1]}×{bgr.shape[0]}, the container said {w}×{h}")
            if index % thresholds.VIDEO_FRAME_STRIDE == 0:
                budget.charge(name, w, h)
                frames.append(Frame(rgb=np.ascontiguousarray(bgr[:, :, ::-1]), t=index / fps, source=f"{name}#{index}"))
            index += 1
    finally:
        cap.release()
    if not frames:
        raise BadImage(name, "video holds no decodable frames" if budget.fits(w, h) else
                       f"too many pixels in all ({budget.total} at most); send fewer or smaller files")
    return Capture(tuple(frames), source=name)
