"""Face recognition: detect → quality → align → embed → compare.

`FaceEngine.extract(rgb)` runs the straight-line pipeline on one image and
returns a `FaceSample` (embedding + evidence) or a `QualityFailure`.  For a
verification burst, `detect_burst(images)` finds the face once and follows it
(the boxes are shared with PAD) and `FaceEngine.best_of_burst` embeds only the
best frame.  Models load lazily, once per process (`models.py`), or all at
once with `FaceEngine.warm()` at service start.
"""

from limen.bio.face.burst import FaceTrack, detect_burst
from limen.bio.face.pipeline import FaceEngine, FaceSample, QualityFailure

__all__ = ["FaceEngine", "FaceSample", "FaceTrack", "QualityFailure", "detect_burst"]
