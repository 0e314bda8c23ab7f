"""Faces through a verification burst: detect once on a small copy, then follow the face by its landmarks.

`detect_burst(images)` gives one `FaceTrack` (box + 5 landmarks) or None per
image.  The detector runs on a copy no larger than `DETECT_BURST_MAX_SIDE`
(upsampled only when it finds nothing); on the next images the landmarks are
fitted in the previous box and, when they settle, the detector only confirms
a face in a tight region around the new box (`TRACK_CONFIRM_MARGIN`).
Otherwise it looks around the previous box (`TRACK_SEARCH_MARGIN`), and on
the whole (small) image again only when the face is not found there or its
landmarks do not settle.  Every region is searched on a copy scaled so the
face is about `TRACK_SEARCH_FACE_PX` wide.  Boxes
are drawn from the landmarks with the geometry of the detector's own box at
full resolution (`TRACK_BOX_*`), which is what
PAD's texture model was trained on, so PAD and the embedding share them.

A face that is followed rather than detected keeps the count of other faces
seen at the last detection (for the "several faces" quality gate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from limen import thresholds
from limen.bio.face import align, detect


@dataclass(frozen=True)
class FaceTrack:
    """The face of one image: its box, landmarks, and the other faces seen at the last detection."""

    box: detect.Box
    marks: align.Landmarks
    others: tuple[detect.Detection, ...] = ()
    detected: bool = True  # False: followed from the previous image

    @property
    def detections(self) -> list[detect.Detection]:
        """This face first, then the others (what the quality gates take)."""
        return [detect.Detection(self.box, 1.0), *self.others]


def scene_change(images: Sequence[np.ndarray]) -> float:
    """How much the background changes from one image to the next (0: a still scene).

    The median, over consecutive pairs, of the mean absolute difference of their standardised grey thumbnails
    outside the centre, where the face is.  Frames of one burst or video share a background (small values);
    separate photos of a person do not (`ENROL_BURST_MAX_SCENE_CHANGE`).  Images of different sizes cannot be
    one capture: infinity.  Fewer than two images: 0.
    """
    side, margin = thresholds.ENROL_BURST_THUMB_PX, thresholds.ENROL_BURST_CENTRE_MARGIN
    if len({im.shape[:2] for im in images}) > 1:
        return float("inf")
    border = np.ones((side, side), bool)
    border[margin:side - margin, margin:side - margin] = False
    thumbs = []
    for im in images:
        grey = im.mean(axis=2) if im.ndim == 3 else im
        small = cv2.resize(grey.astype(np.float32), (side, side), interpolation=cv2.INTER_AREA)[border]
        thumbs.append((small - small.mean()) / (small.std() + 1e-6))
    changes = [float(np.abs(a - b).mean()) for a, b in zip(thumbs, thumbs[1:], strict=False)]
    return float(np.median(changes)) if changes else 0.0


def detect_burst(images: Sequence[np.ndarray]) -> list[FaceTrack | None]:
    """One `FaceTrack` (or None: no face) per RGB image of a burst, in order."""
    tracks: list[FaceTrack | None] = []
    previous: FaceTrack | None = None
    for rgb in images:
        found = follow(rgb, previous) if previous is not None else None
        if found is None:
            found = detect_one(rgb)
        tracks.append(found)
        previous = found
    return tracks


def detect_one(rgb: np.ndarray) -> FaceTrack | None:
    """The largest face of `rgb`, detected on a small copy and refitted at full resolution."""
    found = detect.detect_faces(rgb, max_side=thresholds.DETECT_BURST_MAX_SIDE)
    if not found:
        return None
    marks = align.landmarks(rgb, found[0].box)
    fitted = _fit(rgb, marks)
    if fitted is None:
        return None
    box, marks = fitted
    return FaceTrack(box, marks, tuple(found[1:]), detected=True)


def follow(rgb: np.ndarray, previous: FaceTrack) -> FaceTrack | None:
    """The face of `previous` in the next image `rgb`; None when it is not there.

    The landmarks are fitted in the last box first: when the face has not
    moved far they settle (`_fit`), and the detector only confirms a face in
    a tight region around the new box.  Otherwise the detector searches the
    wider region around the last box and the landmarks are fitted in what it
    finds.
    """
    fitted = _fit(rgb, align.landmarks(rgb, previous.box))
    if fitted is not None and not detect.detect_near(rgb, fitted[0], thresholds.TRACK_CONFIRM_MARGIN,
                                                     thresholds.TRACK_SEARCH_FACE_PX):
        fitted = None  # the landmarks settled on something the detector does not call a face
    if fitted is None:
        found = detect.detect_near(rgb, previous.box, thresholds.TRACK_SEARCH_MARGIN,
                                   thresholds.TRACK_SEARCH_FACE_PX)
        if not found:
            return None
        fitted = _fit(rgb, align.landmarks(rgb, found[0].box))
    if fitted is None:
        return None
    box, marks = fitted
    return FaceTrack(box, marks, previous.others, detected=False)


def box_from_landmarks(marks: align.Landmarks, shape: tuple[int, ...]) -> detect.Box:
    """The detector-like square box for these landmarks, clipped to an image of `shape`."""
    mid = (marks.eye_a + marks.eye_b) / 2.0
    axis = marks.eye_b - marks.eye_a
    dist = float(np.linalg.norm(axis))
    down = np.array([axis[1], -axis[0]]) / max(dist, 1e-6)  # perpendicular to the eyes, towards the nose
    if float(np.dot(marks.nose - mid, down)) < 0:
        down = -down
    centre = mid + down * thresholds.TRACK_BOX_DROP * dist
    half = thresholds.TRACK_BOX_SIDE * dist / 2.0
    h, w = shape[:2]
    return detect.Box(
        left=max(0, int(round(centre[0] - half))),
        top=max(0, int(round(centre[1] - half))),
        right=min(w, int(round(centre[0] + half))),
        bottom=min(h, int(round(centre[1] + half))),
    )


def _fit(rgb: np.ndarray, marks: align.Landmarks) -> tuple[detect.Box, align.Landmarks] | None:
    """Draw the box from `marks`, refit the landmarks in it; None when they disagree (not a stable face)."""
    if marks.eye_distance < 1.0:
        return None
    box = box_from_landmarks(marks, rgb.shape)
    if box.width <= 0 or box.height <= 0:
        return None
    refit = align.landmarks(rgb, box)
    drift = float(np.max(np.linalg.norm(refit.points - marks.points, axis=1))) / marks.eye_distance
    if drift > thresholds.TRACK_MAX_DRIFT:
        return None
    return box_from_landmarks(refit, rgb.shape), refit
