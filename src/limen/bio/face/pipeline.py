"""The face pipeline as a straight-line script: detect → align → quality → embed."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from limen import trace
from limen.bio.face import align, detect, quality
from limen.bio.face.burst import FaceTrack
from limen.bio.face.embed import Embedder, get_embedder
from limen.bio.face.fast_embed import check_chips
from limen.config import EmbedBackend
from limen.decision import QualityGate


@dataclass(frozen=True)
class FaceSample:
    """A usable face: its descriptor and the evidence about the sample (no image kept)."""

    embedding: np.ndarray
    box: detect.Box
    quality: quality.QualityReport
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class QualityFailure:
    """A sample refused before embedding, and the gate that refused it."""

    gate: QualityGate
    quality: quality.QualityReport | None = None
    timings: dict[str, float] = field(default_factory=dict)


class FaceEngine:
    """Runs the face pipeline on RGB images; thread-safe, models shared per process."""

    def __init__(self, backend: EmbedBackend = EmbedBackend.AUTO, *, check_quality: bool = True) -> None:
        self._backend = backend
        self._check_quality = check_quality
        self._embedder: Embedder | None = None

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = get_embedder(self._backend)
        return self._embedder

    def warm(self) -> None:
        """Load every model now (detector, landmarks, embedder with its self-check) and run each once.

        A service calls this at start so that the first unlock does not pay
        for loading (seconds on a small board).
        """
        chip = check_chips(1)[0]
        canvas = np.zeros((240, 320, 3), dtype=np.uint8)
        canvas[45:195, 85:235] = chip
        detect.detect_faces(canvas)
        align.landmarks(canvas, detect.Box(85, 45, 235, 195))
        self.embedder.embed([chip])

    def extract(self, rgb: np.ndarray, detections: list[detect.Detection] | None = None
                ) -> FaceSample | QualityFailure:
        """Run the pipeline on `rgb`; `detections` of this very image skip the detection stage."""
        timings: dict[str, float] = {}
        clock = _Stopwatch(timings)
        if detections is None:
            detections = clock.run("detect", detect.detect_faces, rgb)
        if not detections:
            return QualityFailure(QualityGate.NO_FACE, timings=timings)
        marks = clock.run("align", align.landmarks, rgb, detections[0].box)
        chip = clock.run("chip", align.face_chip, rgb, marks)
        report = clock.run("quality", quality.measure, detections, marks, chip)
        trace.emit("face.quality", report.as_scores)
        gate = quality.failed_gate(report) if self._check_quality else None
        if gate is not None:
            return QualityFailure(gate, report, timings)
        embedding = clock.run("embed", lambda: self.embedder.embed([chip])[0])
        trace.emit("face.embedding", embedding, biometric=True)
        return FaceSample(embedding, detections[0].box, report, timings)


    def best_of_burst(self, images: Sequence[np.ndarray], tracks: Sequence[FaceTrack | None]
                      ) -> FaceSample | QualityFailure:
        """The sample of a burst's best usable frame (sharpest that passes the gates), embedding only that one.

        `tracks` are `burst.detect_burst(images)`.  The decision rests on one
        frame, as when every frame was embedded and the sharpest kept; only the
        other embeddings are saved.  With no usable frame, the first failure.
        """
        timings: dict[str, float] = {}
        clock = _Stopwatch(timings)
        best: tuple[np.ndarray, FaceTrack, quality.QualityReport] | None = None
        failure: QualityFailure | None = None
        for rgb, track in zip(images, tracks, strict=True):
            if track is None:
                failure = failure or QualityFailure(QualityGate.NO_FACE, timings=timings)
                continue
            chip = clock.add("chip", align.face_chip, rgb, track.marks)
            report = clock.add("quality", quality.measure, track.detections, track.marks, chip)
            trace.emit("face.quality", report.as_scores)
            gate = quality.failed_gate(report) if self._check_quality else None
            if gate is not None:
                failure = failure or QualityFailure(gate, report, timings)
            elif best is None or report.sharpness > best[2].sharpness:
                best = (chip, track, report)
        if best is None:
            return failure or QualityFailure(QualityGate.NO_FACE, timings=timings)
        chip, track, report = best
        embedding = clock.run("embed", lambda: self.embedder.embed([chip])[0])
        trace.emit("face.embedding", embedding, biometric=True)
        return FaceSample(embedding, track.box, report, timings)


class _Stopwatch:
    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings

    def run(self, stage: str, fn, *args):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        result = fn(*args)
        self.timings[stage] = (time.perf_counter() - start) * 1000.0
        return result

    def add(self, stage: str, fn, *args):  # type: ignore[no-untyped-def]
        """As `run`, adding to the stage's time (a stage run once per frame)."""
        start = time.perf_counter()
        result = fn(*args)
        self.timings[stage] = self.timings.get(stage, 0.0) + (time.perf_counter() - start) * 1000.0
        return result
