"""Face recognition: detect → quality → align → embed → compare.

`FaceEngine.extract(rgb)` runs the straight-line pipeline on one image and
returns a `FaceSample` (embedding + evidence) or a `QualityFailure`.  Models
load lazily, once per process (`models.py`).
"""

from limen.bio.face.pipeline import FaceEngine, FaceSample, QualityFailure

__all__ = ["FaceEngine", "FaceSample", "QualityFailure"]
