"""Recordings of OAK-D and UVC infrared cameras as a folder of PNGs, and reading them back.

Layout (written by `save_folder`, read by `load_folder`):
``NNNN_colour.png`` (8-bit RGB), ``NNNN_depth.png`` (16-bit, millimetres, 0 = no
measurement), ``NNNN_ir.png`` (8-bit) and ``frames.json`` (format 1: per frame
its time, device and emitter state, in file order).  Intrinsics are not kept:
a loaded folder is for inspection and replay of the streams, not for cues that
need geometry (those report the stream as unregistered, never a pass).

Reading fails closed with `BadImage` naming the file: a frame without colour,
a depth image that is not 16-bit single channel, a depth or IR image of another
size than its colour image, frames.json that does not match the files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np

from limen import thresholds
from limen.capture.frames import Capture, Frame
from limen.errors import BadImage

FORMAT = 1
_NAME = re.compile(r"^(\d{4,})_(colour|depth|ir)\.png$")


def save_folder(cap: Capture, out: Path) -> int:
    """Write every frame of `cap` and frames.json into `out`; returns the number of frames."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, f in enumerate(cap.frames):
        cv2.imwrite(str(out / f"{i:04d}_colour.png"), f.rgb[:, :, ::-1])
        if f.depth is not None:
            cv2.imwrite(str(out / f"{i:04d}_depth.png"), np.clip(f.depth, 0, 65535).astype(np.uint16))
        if f.ir is not None:
            cv2.imwrite(str(out / f"{i:04d}_ir.png"), f.ir)
        rows.append({"t": f.t, "device": f.device, "emitter_on": f.emitter_on})
    (out / "frames.json").write_text(json.dumps({"format": FORMAT, "frames": rows, "meta": cap.meta}, indent=1),
                                     encoding="utf-8")
    return len(cap.frames)


def load_folder(folder: Path, limit: int = thresholds.MAX_VIDEO_FRAMES) -> Capture:
    """The first `limit` (at most `MAX_VIDEO_FRAMES`) frames `save_folder` wrote, checked stream by stream."""
    if not folder.is_dir():
        raise BadImage(folder, "not a folder of recorded frames")
    streams: dict[int, dict[str, Path]] = {}
    for p in folder.iterdir():
        m = _NAME.match(p.name)
        if m:
            streams.setdefault(int(m.group(1)), {})[m.group(2)] = p
    if not streams:
        raise BadImage(folder, "no NNNN_colour.png frames")
    rows, meta = _index(folder, len(streams))
    frames = []
    for k, index in enumerate(sorted(streams)[: max(1, min(limit, thresholds.MAX_VIDEO_FRAMES))]):
        files = streams[index]
        if "colour" not in files:
            raise BadImage(folder / f"{index:04d}_colour.png", "missing: every frame needs its colour image")
        rgb = _read(files["colour"], cv2.IMREAD_COLOR)[:, :, ::-1]
        depth = _read(files["depth"], cv2.IMREAD_UNCHANGED) if "depth" in files else None
        ir = _read(files["ir"], cv2.IMREAD_UNCHANGED) if "ir" in files else None
        if depth is not None and (depth.dtype != np.uint16 or depth.ndim != 2):
            raise BadImage(files["depth"], "depth must be 16-bit single-channel millimetres")
        if ir is not None and (ir.dtype != np.uint8 or ir.ndim != 2):
            raise BadImage(files["ir"], "IR must be 8-bit single-channel")
        for name, img in (("depth", depth), ("ir", ir)):
            if img is not None and img.shape != rgb.shape[:2]:
                raise BadImage(files[name], f"{img.shape[1]}×{img.shape[0]} differs from the colour image's size")
        row = rows[k] if rows else {}
        t = row.get("t", k)
        frames.append(Frame(rgb=np.ascontiguousarray(rgb), t=float(t) if isinstance(t, int | float) else k,
                            depth=depth, ir=ir,
                            source=str(files["colour"]), device=str(row.get("device", "")),
                            emitter_on=_flag(row.get("emitter_on"))))
    return Capture(tuple(frames), source=str(folder), meta=meta)


def _index(folder: Path, count: int) -> tuple[list[dict[str, object]], dict[str, str]]:
    path = folder / "frames.json"
    if not path.exists():
        return [], {"frames_json": "absent: times are frame numbers, device unknown"}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadImage(path, f"unreadable ({type(e).__name__})") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("frames"), list):
        raise BadImage(path, f"not a format-{FORMAT} frame index")
    rows = doc["frames"]
    if len(rows) != count or not all(isinstance(r, dict) and isinstance(r.get("t"), int | float) for r in rows):
        raise BadImage(path, f"lists {len(rows)} frame(s) with times; the folder holds {count}")
    meta = doc.get("meta")
    return rows, {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}


def _read(path: Path, flags: int) -> np.ndarray:
    img = cv2.imread(str(path), flags)
    if img is None:
        raise BadImage(path, "cannot decode")
    return np.asarray(img)


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None
