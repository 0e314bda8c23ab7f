"""Stage 8: false-minutia removal (spurs, breaks, border, clusters, low coherence) and quality."""

from __future__ import annotations

import cv2
import numpy as np

from limen import thresholds
from limen.bio.finger.minutiae import RawMinutia
from limen.bio.finger.template import Minutia


def true_minutiae(raw: list[RawMinutia], mask: np.ndarray, coherence: np.ndarray) -> tuple[Minutia, ...]:
    """Minutiae that survive every rule, best quality first, at most FINGER_MAX_MINUTIAE."""
    if not raw:
        return ()
    # the print's own edge is a border; the image frame cuts ridges only where they meet it
    border = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1, mode="edge"), cv2.DIST_L2, 5)[1:-1, 1:-1]
    h, w = mask.shape
    xy = np.array([(m.x, m.y) for m in raw], dtype=np.float64)
    keep = np.ones(len(raw), bool)
    index = {(m.x, m.y): i for i, m in enumerate(raw)}
    for i, m in enumerate(raw):
        if m.reaches is not None:               # spur or short ridge: both ends are artefacts
            keep[i] = False
            j = index.get(m.reaches)
            if j is not None:
                keep[j] = False
    d = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    close = (d < thresholds.FINGER_PAIR_MIN_DIST).any(1)
    crowded = (d < thresholds.FINGER_CLUSTER_RADIUS).sum(1) >= thresholds.FINGER_CLUSTER_MAX
    keep &= ~close & ~crowded
    ys, xs = xy[:, 1].astype(int), xy[:, 0].astype(int)
    margin = border[ys, xs]
    coh = coherence[ys, xs]
    keep &= margin >= thresholds.FINGER_BORDER_MARGIN
    keep &= np.minimum(np.minimum(xs, w - 1 - xs), np.minimum(ys, h - 1 - ys)) >= thresholds.FINGER_FRAME_MARGIN
    keep &= coh >= thresholds.FINGER_MIN_COHERENCE
    quality = np.clip(100 * coh * np.minimum(1.0, margin / (3 * thresholds.FINGER_BORDER_MARGIN)), 0, 100)
    order = [i for i in np.argsort(-quality, kind="stable") if keep[i]][: thresholds.FINGER_MAX_MINUTIAE]
    return tuple(Minutia(raw[i].x, raw[i].y, raw[i].angle % (2 * np.pi), raw[i].kind, int(quality[i]))
                 for i in order)
