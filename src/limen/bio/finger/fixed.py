"""A fixed-length, alignment-free 128-d vector from minutiae, for the vault's keyed protection.

Every minutia's local structure — the edges to its neighbours within
FINGER_FIXED_RADIUS: length, edge angle and neighbour direction, both relative
to the minutia's own direction — is pooled over the whole print into a soft
histogram of 4 length × 8 edge-angle × 4 direction bins (128).  The histogram
is square-rooted, centred and L2-normalised, so that the angle between two
vectors (what the vault's sign projection preserves) measures how alike two
prints are.  Pooling throws away where each structure was: the vector does not
say where the minutiae are, and the vault's keyed projection and mask make it
renewable.  Weaker than the minutia matcher (docs/finger.md gives both).
"""

from __future__ import annotations

import numpy as np

from limen import thresholds
from limen.bio.finger.template import FingerTemplate

DIM = 128
_D_BINS, _A_BINS, _B_BINS = 4, 8, 4


def _soft(values: np.ndarray, bins: int, period: float | None, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """Linear soft-assignment of `values` to `bins` (circular when `period`): n × bins weights."""
    if period is not None:
        pos = (values % period) / period * bins - 0.5
    else:
        pos = (np.clip(values, lo, hi - 1e-9) - lo) / (hi - lo) * bins - 0.5
    left = np.floor(pos)
    frac = pos - left
    out = np.zeros((len(values), bins))
    rows = np.arange(len(values))
    li, ri = left.astype(int), left.astype(int) + 1
    if period is not None:
        li, ri = li % bins, ri % bins
    else:
        frac = np.where(li < 0, 1.0, np.where(ri >= bins, 0.0, frac))
        li, ri = np.clip(li, 0, bins - 1), np.clip(ri, 0, bins - 1)
    np.add.at(out, (rows, li), 1 - frac)
    np.add.at(out, (rows, ri), frac)
    return out


def fixed_vector(template: FingerTemplate) -> np.ndarray:
    """The 128-d unit vector of `template` (zeros if it has fewer than two minutiae)."""
    xy, ang, _ = template.arrays()
    if len(ang) < 2:
        return np.zeros(DIM)
    delta = xy[None, :, :] - xy[:, None, :]
    dist = np.sqrt((delta ** 2).sum(-1))
    i, j = np.nonzero((dist > 0) & (dist <= thresholds.FINGER_FIXED_RADIUS))
    if i.size == 0:
        return np.zeros(DIM)
    alpha = np.arctan2(delta[i, j, 1], delta[i, j, 0]) - ang[i]
    beta = ang[j] - ang[i]
    wd = _soft(dist[i, j], _D_BINS, None, 0.0, thresholds.FINGER_FIXED_RADIUS)
    wa = _soft(alpha, _A_BINS, 2 * np.pi)
    wb = _soft(beta, _B_BINS, 2 * np.pi)
    hist = np.einsum("nd,na,nb->dab", wd, wa, wb).reshape(-1)
    vec = np.sqrt(hist / hist.sum())
    vec -= vec.mean()
    norm = np.linalg.norm(vec)
    return vec / norm if norm > 0 else vec
