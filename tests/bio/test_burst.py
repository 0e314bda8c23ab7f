"""A burst's faces: detected once and followed (nuaa-dev webcam frames), lost faces re-detected, one embedding."""

from __future__ import annotations

import numpy as np
import pytest

from limen.bio.face import FaceEngine, FaceSample, QualityFailure, align, detect_burst, quality
from limen.bio.face import burst as burst_mod
from limen.bio.face.detect import Box, detect_faces
from limen.capture import load_image
from limen.decision import QualityGate
from tests.conftest import shared


def _frames(kind: str, subject: str, session: str, start: int, count: int) -> list[np.ndarray]:
    folder = shared("nuaa-dev", kind, subject)
    files = sorted((f for f in folder.iterdir() if f.name.split("_")[3] == session),
                   key=lambda f: int(f.stem.split("_")[4]))[start : start + count]
    if len(files) < count:
        pytest.skip(f"not enough frames in {folder}")
    return [load_image(f) for f in files]


def _iou(a: Box, b: Box) -> float:
    w = max(0, min(a.right, b.right) - max(a.left, b.left))
    h = max(0, min(a.bottom, b.bottom) - max(a.top, b.top))
    return w * h / float(a.area + b.area - w * h)


@pytest.fixture(scope="module")
def live() -> list[np.ndarray]:
    return _frames("live", "0004", "02", 10, 5)


def test_every_frame_gets_the_detectors_face(live: list[np.ndarray]) -> None:
    tracks = detect_burst(live)
    assert all(t is not None for t in tracks)
    assert tracks[0] is not None and tracks[0].detected
    for rgb, track in zip(live, tracks, strict=True):
        assert track is not None
        full = detect_faces(rgb)[0].box  # the full-resolution detector PAD was trained with
        assert _iou(track.box, full) > 0.6, (track.box, full)


def test_the_face_is_followed_not_redetected(live: list[np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = burst_mod.detect.detect_faces
    monkeypatch.setattr(burst_mod.detect, "detect_faces", lambda rgb, **kw: calls.append(1) or real(rgb, **kw))
    tracks = detect_burst(live)
    assert sum(1 for t in tracks if t is not None and not t.detected) >= 3
    assert len(calls) == sum(1 for t in tracks if t is not None and t.detected) < len(live)


def test_a_vanished_face_is_none_and_found_again(live: list[np.ndarray]) -> None:
    blank = np.full_like(live[0], 90)
    tracks = detect_burst([live[0], blank, live[2]])
    assert tracks[0] is not None and tracks[1] is None
    assert tracks[2] is not None and tracks[2].detected


def test_a_face_that_jumps_is_redetected_where_it_is(live: list[np.ndarray]) -> None:
    moved = np.roll(live[1], shift=(0, 200), axis=(0, 1))  # far outside the region searched around the last box
    first, second = detect_burst([live[0], moved])
    assert first is not None and second is not None and second.detected
    assert _iou(second.box, detect_faces(moved)[0].box) > 0.6


def test_a_settled_face_needs_only_the_detectors_confirmation(live: list[np.ndarray],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from limen import thresholds

    margins: list[float] = []
    real = burst_mod.detect.detect_near
    monkeypatch.setattr(burst_mod.detect, "detect_near",
                        lambda rgb, near, margin, px: margins.append(margin) or real(rgb, near, margin, px))
    tracks = detect_burst(live)
    assert all(t is not None for t in tracks)
    assert margins.count(thresholds.TRACK_CONFIRM_MARGIN) >= 3  # landmarks settled, the detector confirmed


def test_a_blurred_face_is_not_followed(live: list[np.ndarray]) -> None:
    import cv2

    first = detect_burst(live[:1])[0]
    assert first is not None
    b = first.box
    blurred = live[1].copy()
    blurred[b.top : b.bottom, b.left : b.right] = cv2.GaussianBlur(blurred[b.top : b.bottom, b.left : b.right],
                                                                   (0, 0), 12)
    assert burst_mod.follow(blurred, first) is None  # landmarks may settle on a blur; the detector sees no face


def test_noise_is_no_face() -> None:
    noise = np.random.default_rng(3).integers(0, 255, size=(480, 640, 3), dtype=np.uint8)
    assert detect_burst([noise, noise]) == [None, None]


class _CountingEmbedder:
    name = "counting"

    def __init__(self) -> None:
        self.chips = 0

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        self.chips += len(chips)
        return np.stack([c.astype(np.float64).mean(axis=(0, 1)).repeat(43)[:128] for c in chips])


def test_best_of_burst_embeds_only_the_sharpest_usable_frame(live: list[np.ndarray]) -> None:
    engine = FaceEngine()
    counting = _CountingEmbedder()
    engine._embedder = counting  # noqa: SLF001 - a stand-in backend to count calls
    tracks = detect_burst(live)
    out = engine.best_of_burst(live, tracks)
    assert isinstance(out, FaceSample)
    assert counting.chips == 1
    reports = [quality.measure(t.detections, t.marks, align.face_chip(rgb, t.marks))
               for rgb, t in zip(live, tracks, strict=True) if t is not None]
    usable = [r for r in reports if quality.failed_gate(r) is None]
    assert len(usable) >= 2
    assert out.quality.sharpness == max(r.sharpness for r in usable)
    assert {"chip", "quality", "embed"} <= set(out.timings)


def test_best_of_burst_without_faces_is_no_face() -> None:
    blank = np.full((240, 320, 3), 128, np.uint8)
    out = FaceEngine().best_of_burst([blank, blank], [None, None])
    assert isinstance(out, QualityFailure) and out.gate is QualityGate.NO_FACE


def test_warm_loads_the_embedder() -> None:
    engine = FaceEngine()
    engine._embedder = counting = _CountingEmbedder()  # noqa: SLF001
    engine.warm()
    assert counting.chips == 1
