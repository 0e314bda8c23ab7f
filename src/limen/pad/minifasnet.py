"""The deep cue: MiniFASNet V2 (2.7× crop) and V1SE (4.0× crop), imported from the models directory.

Crops follow upstream (`src/generate_patches.py` of Silent-Face-Anti-Spoofing):
the face box (x, y, w, h) is scaled around its centre — the scale first capped
so the crop fits the image — shifted back inside the image, cut (inclusive
corners) and resized to 80×80 with bilinear interpolation, in BGR order.  Both
models' softmax are summed as upstream does; a frame's score is the log-odds of
the live class, log(p / (1 − p)) with p the mean live probability.  The cue's
score is the mean over the sample's usable frames, compared with
`PAD_MINIFASNET_VERIFY` or the stricter `PAD_MINIFASNET_ENROL`.

The weights are never shipped: `limen models import` converts them into the
models directory (`minifasnet_models`).  Not imported → `CueUnavailable
("minifasnet", "model_not_imported")` (lower assurance, never a pass).  Imported
but altered → `ConfigError`, raised by `check()` and by every scoring call, so
the service refuses faces instead of falling back to weaker cues.  The ONNX
Runtime sessions (the lock's options, `limen.core.onnx`: one thread, no memory
arena kept between calls) load once per process and models directory, lazily,
under a lock; `run` is thread-safe.  Each session runs the verified graph
rewritten for speed (`onnx_minifasnet.run_form`: PRelu as Relus, bit for bit;
pruned channel counts padded with zero channels, equal up to float summation
order), stored beside the imported model (`minifasnet_models.run_graph`), so
the service never imports the `onnx` package.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from limen import thresholds
from limen.bio.face.detect import Box
from limen.core.onnx import cpu_session
from limen.errors import BadRequest
from limen.pad import onnx_minifasnet as graph
from limen.pad.contract import CueResult, CueScore, CueUnavailable, Purpose
from limen.pad.faces import PadSample
from limen.pad.minifasnet_models import ModelNotImported, run_graph
from limen.pad.onnx_minifasnet import Variant
from limen.pad.texture import per_frame_evidence

CUE = "minifasnet"
_P_FLOOR = 1e-12  # keeps the log-odds finite when a softmax saturates


def crop_box(width: int, height: int, box: Box, scale: float) -> tuple[int, int, int, int]:
    """Upstream's crop corners (left, top, right, bottom), inclusive, for `box` scaled by `scale`."""
    x, y, box_w, box_h = box.left, box.top, box.width, box.height
    scale = min((height - 1) / box_h, (width - 1) / box_w, scale)
    new_w, new_h = box_w * scale, box_h * scale
    cx, cy = box_w / 2 + x, box_h / 2 + y
    left, top, right, bottom = cx - new_w / 2, cy - new_h / 2, cx + new_w / 2, cy + new_h / 2
    if left < 0:
        right -= left
        left = 0
    if top < 0:
        bottom -= top
        top = 0
    if right > width - 1:
        left -= right - width + 1
        right = width - 1
    if bottom > height - 1:
        top -= bottom - height + 1
        bottom = height - 1
    return int(left), int(top), int(right), int(bottom)


def crop(frame_rgb: np.ndarray, box: Box, scale: float) -> np.ndarray:
    """The 80×80 BGR uint8 patch a MiniFASNet model expects for this face box."""
    height, width = frame_rgb.shape[:2]
    return _patch(frame_rgb, crop_box(width, height, box, scale))


def _patch(frame_rgb: np.ndarray, corners: tuple[int, int, int, int]) -> np.ndarray:
    """The 80×80 BGR patch of the inclusive `corners` (`crop_box`)."""
    left, top, right, bottom = corners
    # resized first, channels reversed after: the same pixels (each channel is interpolated alone), and the copy
    # is of 80×80 pixels instead of the whole face region
    patch = cv2.resize(frame_rgb[top : bottom + 1, left : right + 1], (graph.INPUT_SIZE, graph.INPUT_SIZE),
                       interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(patch[:, :, ::-1])


@dataclass(frozen=True)
class _Sessions:
    by_variant: dict[Variant, Any]


_LOCK = threading.Lock()
_LOADED: dict[Path, _Sessions] = {}


def _sessions(models_dir: Path) -> _Sessions:
    """Both verified sessions for `models_dir`, built on first use; raises ModelNotImported / ConfigError."""
    key = models_dir.resolve()
    with _LOCK:
        loaded = _LOADED.get(key)
        if loaded is None:
            models = {v: run_graph(models_dir, v) for v in Variant}  # verifies every digest before any session
            loaded = _Sessions({v: cpu_session(data) for v, data in models.items()})
            del models
            _LOADED[key] = loaded
        return loaded


def _forget_sessions() -> None:
    """Drop the loaded sessions (tests that alter an imported model on disk)."""
    with _LOCK:
        _LOADED.clear()


def _check_inputs(frames_rgb: Sequence[np.ndarray], boxes: Sequence[Box]) -> None:
    if len(frames_rgb) != len(boxes):
        raise BadRequest("boxes", f"{len(boxes)} boxes for {len(frames_rgb)} frames")
    for i, (rgb, box) in enumerate(zip(frames_rgb, boxes, strict=True)):
        if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
                and min(rgb.shape[:2]) >= 2):
            raise BadRequest(f"frames[{i}]", "not an RGB uint8 image")
        if box.width <= 0 or box.height <= 0:
            raise BadRequest(f"boxes[{i}]", "empty face box")


def live_log_odds(logits: dict[Variant, np.ndarray]) -> np.ndarray:
    """Per-frame log-odds of live from each model's logits: the summed softmax, as upstream."""
    probs = []
    for values in logits.values():
        z = values.astype(np.float64)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        probs.append(z / z.sum(axis=1, keepdims=True))
    p_live = np.clip(np.mean([p[:, graph.LIVE_CLASS] for p in probs], axis=0), _P_FLOOR, 1 - _P_FLOOR)
    return np.asarray(np.log(p_live) - np.log1p(-p_live))


def minifasnet_scores(frames_rgb: Sequence[np.ndarray], boxes: Sequence[Box], models_dir: Path) -> np.ndarray:
    """Live log-odds for each frame (higher = more bona fide), one run per crop and model.

    Raises `ModelNotImported` when the models are not imported, `ConfigError`
    when an imported model was altered, `BadRequest` on a frame that is not
    RGB uint8 or an empty box.
    """
    _check_inputs(frames_rgb, boxes)
    if not frames_rgb:
        return np.zeros(0)
    sessions = _sessions(models_dir)
    # a face too large for either scale gets the same corners (the scale capped by the frame) under both models:
    # that patch is resized once (the same call on the same pixels)
    patches: dict[tuple[int, tuple[int, int, int, int]], np.ndarray] = {}
    logits = {}
    for variant, session in sessions.by_variant.items():
        # one crop per run: each crop is computed alone in a batch too, so the logits are bit for bit a batched
        # run's (tests/pad/test_speed_equivalence.py), and the activations alive at once are a third of a 5-crop
        # run's (the service's peak, bench/unlock.py --only serve), at no more CPU time
        runs = []
        for i, (rgb, box) in enumerate(zip(frames_rgb, boxes, strict=True)):
            corners = crop_box(rgb.shape[1], rgb.shape[0], box, variant.spec.scale)
            patch = patches.get((i, corners))
            if patch is None:
                patch = patches[(i, corners)] = _patch(rgb, corners)
            runs.append(session.run([graph.OUTPUT_NAME], {graph.INPUT_NAME: patch[None]})[0])
        logits[variant] = np.concatenate(runs)
    return live_log_odds(logits)


class MiniFasNetCue:
    """The MiniFASNet cue over a `PadSample` (see the module docstring for what it does and refuses)."""

    name = CUE

    def __init__(self, models_dir: Path | None) -> None:
        self.models_dir = models_dir

    def check(self) -> bool:
        """Load and verify now (at service start): True if usable, False if not imported; ConfigError if altered."""
        if self.models_dir is None:
            return False
        try:
            _sessions(self.models_dir)
        except ModelNotImported:
            return False
        return True

    def minifasnet_scores(self, frames_rgb: Sequence[np.ndarray], boxes: Sequence[Box]) -> np.ndarray:
        """Live log-odds per frame; `ModelNotImported` without models (see the module function)."""
        if self.models_dir is None:
            raise ModelNotImported("no models directory configured for MiniFASNet")
        return minifasnet_scores(frames_rgb, boxes, self.models_dir)

    def score(self, sample: PadSample, purpose: Purpose) -> CueResult:
        if not sample.faces:
            return CueUnavailable(CUE, "no_usable_face")
        try:
            frames = self.minifasnet_scores([f.frame.rgb for f in sample.faces], [f.box for f in sample.faces])
        except ModelNotImported:
            return CueUnavailable(CUE, "model_not_imported")
        threshold = thresholds.PAD_MINIFASNET_ENROL if purpose is Purpose.ENROL else thresholds.PAD_MINIFASNET_VERIFY
        return CueScore(CUE, float(np.mean(frames)), threshold,
                        {"frames": float(frames.size), "min_frame": float(frames.min()),
                         "max_frame": float(frames.max())} | per_frame_evidence(frames))
