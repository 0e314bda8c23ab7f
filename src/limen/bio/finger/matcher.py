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
    trig: np.ndarray        # 4×n×k cos α, sin α, cos β, sin β (angle tests without wrapping)

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
    trig = np.stack([np.cos(alpha), np.sin(alpha), np.cos(beta), np.sin(beta)]).astype(np.float32)
    return PreparedTemplate(ang.astype(np.float32), neighbour, dist, alpha, beta, trig)


def _agreeing_edges(p: PreparedTemplate, c: PreparedTemplate
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every (i, j, a, b) where edge a of probe minutia i agrees with edge b of candidate minutia j,
    with its normalised disagreement (≤ 1), sorted by (i, j).  A join on edge length through the
    candidate's length-sorted edges: only length-compatible edges are ever compared by angle."""
    k = p.dist.shape[1]
    p_flat = np.flatnonzero(np.isfinite(p.dist.reshape(-1)))
    c_flat = np.flatnonzero(np.isfinite(c.dist.reshape(-1)))
    c_len = c.dist.reshape(-1)[c_flat]
    order = np.argsort(c_len, kind="stable")
    c_sorted, c_ids = c_len[order], c_flat[order]
    p_len = p.dist.reshape(-1)[p_flat]
    tol = np.maximum(thresholds.FINGER_MATCH_EDGE_DIST_PX, thresholds.FINGER_MATCH_EDGE_DIST_REL * p_len)
    lo = np.searchsorted(c_sorted, p_len - tol, side="left")
    hi = np.searchsorted(c_sorted, p_len + tol, side="right")
    counts = hi - lo
    rep = np.repeat(np.arange(p_flat.size), counts)
    first = np.repeat(lo - (np.cumsum(counts) - counts), counts)
    cand = c_ids[first + np.arange(rep.size)]
    probe = p_flat[rep]
    ii, aa, jj, bb = probe // k, probe % k, cand // k, cand % k
    pt, ct = p.trig[:, ii, aa], c.trig[:, jj, bb]
    cos_alpha = pt[0] * ct[0] + pt[1] * ct[1]          # cos of the difference of the edge angles
    cos_beta = pt[2] * ct[2] + pt[3] * ct[3]           # cos of the difference of the neighbour directions
    limit = np.cos(thresholds.FINGER_MATCH_EDGE_ANGLE)
    keep = (cos_alpha >= limit) & (cos_beta >= limit)
    dist_err = np.abs(p_len[rep] - c.dist.reshape(-1)[cand]) / tol[rep]
    err = np.maximum(dist_err, (1 - np.minimum(cos_alpha, cos_beta)) / (1 - limit))[keep]
    ii, jj, aa, bb = ii[keep], jj[keep], aa[keep], bb[keep]
    by_pair = np.argsort(ii * c.size + jj, kind="stable")
    return ii[by_pair], jj[by_pair], aa[by_pair], bb[by_pair], err[by_pair]


def similarity(p: PreparedTemplate, c: PreparedTemplate) -> float:
    """Match score of probe `p` against candidate `c` (≥ 0, higher = more alike)."""
    n_p, n_c = p.size, c.size
    if n_p < 2 or n_c < 2:
        return 0.0
    k = thresholds.FINGER_MATCH_NEIGHBOURS
    ii, jj, aa, bb, err = _agreeing_edges(p, c)
    pair = ii * n_c + jj
    # agreeing edges per (i, j): distinct probe edges and distinct candidate edges, the smaller count
    by_a = np.bincount(np.unique(pair * k + aa) // k, minlength=n_p * n_c)
    by_b = np.bincount(np.unique(pair * k + bb) // k, minlength=n_p * n_c)
    local = np.minimum(by_a, by_b)
    roots = np.argsort(-local, kind="stable")[: thresholds.FINGER_MATCH_ROOTS]
    start = np.searchsorted(pair, np.arange(n_p * n_c + 1)).tolist()    # edges come sorted by (i, j)
    edges_e = err.tolist()
    edges_i = p.neighbour[ii, aa].tolist()
    edges_j = c.neighbour[jj, bb].tolist()
    best = 0.0
    for root in roots.tolist():
        if local[root] < thresholds.FINGER_MATCH_ROOT_MIN_EDGES:
            break
        score = _grow(root // n_c, root % n_c, n_p, n_c, start, edges_e, edges_i, edges_j)
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
