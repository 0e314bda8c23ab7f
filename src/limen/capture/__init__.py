"""Capture: `Frame` and `Capture` values and the sources that produce them.

`load_capture(path)` accepts an image file, a video file or a folder of frames
and returns a `Capture` (a short sequence of RGB frames).  Every failure is a
`BadImage` naming the file and the reason.
"""

from limen.capture.frames import Capture, Extrinsics, Frame, Intrinsics, StreamGeometry
from limen.capture.sources import load_capture, load_image

__all__ = ["Capture", "Extrinsics", "Frame", "Intrinsics", "StreamGeometry", "load_capture", "load_image"]
