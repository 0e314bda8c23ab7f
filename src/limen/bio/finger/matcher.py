"""Minutia matching: edge tables → root pairs → greedy pairing-graph expansion → one score.

In the spirit of SourceAFIS's published algorithm.  Every minutia has an edge
table to its nearest neighbours (length, the edge's angle and the neighbour's
direction, both relative to the minutia's own direction, so invariant to
rotation and translation).  Probe and candidate minutiae whose tables agree are
candidate *root pairs*.  From each of the best roots a pairing graph grows
greedily: the pending pair with the smallest edge error is accepted if neither
minutia is paired yet, and the agreeing edges of the new pair add new pending
pairs.  Only local edges are compared, so skin distortion accumulates slowly.
The best root's pairing gives the score (pairs, weighted by edge support,
normalised by both minutia counts).  Higher = more alike.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from limen import thresholds
from limen.bio.finger.template import FingerTemplate


def _wrap(a: np.ndarray) -> np.ndarray:
    """Angles wrapped to (−π, π]."""
    return (a + np.pi) % (2 * np.pi) - np.pi


@dataclass(frozen=True)
class PreparedTemplate:
    """A template with its edge tables computed once (for 1:N and repeated matching)."""

    angle: np.ndarray       # n float32
    neighbour: np.ndarray   # n×k index of the k nearest neighbours (n where absent)
    dist: np.ndarray        # n×k edge lengths (NaN where absent)
    alpha: np.ndarray       # n×k edge angle relative to the minutia's direction
    beta: np.ndarray        # n×k neighbour direction relative to the minutia's direction

    @property
    def size(self) -> int:
        return len(self.angle)


_ABSENT = np.nan                    # never agrees with anything


def prepare(template: FingerTemplate) -> PreparedTemplate:
    """Edge tables of `template` (k nearest neighbours per minutia)."""
    xy, ang, _ = template.arrays()
    n = len(ang)
    k = thresholds.FINGER_MATCH_NEIGHBOURS
    neighbour = np.full((n, k), n, np.int32)
    dist = np.full((n, k), _ABSENT, np.float32)
    alpha = np.zeros((n, k), np.float32)
    beta = np.zeros((n, k), np.float32)
    if n > 1:
        delta = xy[None, :, :] - xy[:, None, :]
        d = np.sqrt((delta ** 2).sum(-1))
        np.fill_diagonal(d, np.inf)
        kk = min(k, n - 1)
        nearest = np.argsort(d, axis=1)[:, :kk]
        rows = np.arange(n)[:, None]
        neighbour[:, :kk] = nearest
        dist[:, :kk] = d[rows, nearest]
        edge = np.arctan2(delta[rows, nearest, 1], delta[rows, nearest, 0])
        alpha[:, :kk] = _wrap(edge - ang[:, None])
        beta[:, :kk] = _wrap(ang[nearest] - ang[:, None])
    return PreparedTemplate(ang.astype(np.float32), neighbour, dist, alpha, beta)


def _edge_errors(p: PreparedTemplate, c: PreparedTemplate) -> np.ndarray:
    """n_p×n_c×k×k normalised edge disagreement; > 1 means the edges do not agree."""
    tol_d = np.maximum(thresholds.FINGER_MATCH_EDGE_DIST_PX,
                       thresholds.FINGER_MATCH_EDGE_DIST_REL * p.dist[:, None, :, None])
    err = np.abs(p.dist[:, None, :, None] - c.dist[None, :, None, :]) / tol_d
    err = np.maximum(err, np.abs(_wrap(p.alpha[:, None, :, None] - c.alpha[None, :, None, :]))
                     / thresholds.FINGER_MATCH_EDGE_ANGLE)
    err = np.maximum(err, np.abs(_wrap(p.beta[:, None, :, None] - c.beta[None, :, None, :]))
                     / thresholds.FINGER_MATCH_EDGE_ANGLE)
    return err


def similarity(p: PreparedTemplate, c: PreparedTemplate) -> float:
    """Match score of probe `p` against candidate `c` (≥ 0, higher = more alike)."""
    n_p, n_c = p.size, c.size
    if n_p < 2 or n_c < 2:
        return 0.0
    err = _edge_errors(p, c)
    ok = err <= 1.0
    local = np.minimum(ok.any(3).sum(2), ok.any(2).sum(2))              # agreeing edges per (i, j)
    roots = np.argsort(-local, axis=None, kind="stable")[: thresholds.FINGER_MATCH_ROOTS]
    ii, jj, aa, bb = np.nonzero(ok)
    start = np.searchsorted(ii * n_c + jj, np.arange(n_p * n_c + 1))
    edges_e = err[ii, jj, aa, bb].tolist()
    edges_i = p.neighbour[ii, aa].tolist()
    edges_j = c.neighbour[jj, bb].tolist()
    start_l = start.tolist()
    best = 0.0
    for root in roots.tolist():
        if local.flat[root] < thresholds.FINGER_MATCH_ROOT_MIN_EDGES:
            break
        score = _grow(root // n_c, root % n_c, n_p, n_c, start_l, edges_e, edges_i, edges_j)
        best = max(best, score)
    return best * best / (n_p * n_c) ** 0.5 / max(min(n_p, n_c), thresholds.FINGER_MATCH_MIN_OVERLAP) ** 0.5


def _grow(i0: int, j0: int, n_p: int, n_c: int, start: list[int], edges_e: list[float],
          edges_i: list[int], edges_j: list[int]) -> float:
    """Grow a pairing from root (i0, j0); return its support-weighted pair count."""
    pair_p = [-1] * n_p
    pair_c = [-1] * n_c
    pending: list[tuple[float, int, int]] = [(0.0, i0, j0)]
    pairs = 0
    support = 0
    while pending:
        _, i, j = heapq.heappop(pending)
        if pair_p[i] >= 0 or pair_c[j] >= 0:
            if pair_p[i] == j:
                support += 1                       # a second edge confirms an existing pair
            continue
        pair_p[i] = j
        pair_c[j] = i
        pairs += 1
        base = i * n_c + j
        for e in range(start[base], start[base + 1]):
            ni, nj = edges_i[e], edges_j[e]
            if pair_p[ni] < 0 and pair_c[nj] < 0:
                heapq.heappush(pending, (edges_e[e], ni, nj))
            elif pair_p[ni] == nj:
                support += 1
    return pairs + thresholds.FINGER_MATCH_SUPPORT_WEIGHT * support / 2
