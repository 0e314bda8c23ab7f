"""The face pipeline as a straight-line script: detect → align → quality → embed."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from limen import trace
from limen.bio.face import align, detect, quality
from limen.bio.face.embed import Embedder, get_embedder
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


class _Stopwatch:
    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings

    def run(self, stage: str, fn, *args):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        result = fn(*args)
        self.timings[stage] = (time.perf_counter() - start) * 1000.0
        return result
