"""Minutia matching: edge tables → root pairs → greedy pairing-graph expansion → evidence → one score.

In the spirit of SourceAFIS's published algorithm.  Every minutia has an edge
table to its nearest neighbours (length, the edge's angle and the neighbour's
direction, both relative to the minutia's own direction, so invariant to
rotation and translation).  Probe and candidate minutiae whose tables agree are
candidate *root pairs*.  From each of the best roots a pairing graph grows
greedily: the pending pair with the smallest edge error is accepted if neither
minutia is paired yet, and the agreeing edges of the new pair add new pending
pairs; an edge between two minutiae already paired to each other *supports*
both.  Only local edges are compared, so skin distortion accumulates slowly.
Pairs that would turn the print by more than FINGER_MATCH_MAX_ROTATION are never compared, and of the
distinct pairings grown, the one kept is the heaviest once discounted by how poorly its alignment follows the
other print's ridge flow (`_pick`).  That pairing is then described by `FEATURES` — pair and support
counts, raw and normalised by both minutia counts and by the minutiae inside
the two prints' overlap (convex hulls aligned by the pairs' rigid motion),
matching types, edge error, a global count of pairs that agree once
aligned (tolerance growing with distance), the pairs that agree tightly once
re-aligned on those (÷ the overlap), and the most minutiae any single root
pair's own rigid motion aligns (a consolidation that does not need the local
edges to agree) — and the score is the softplus of a logistic model over them
(weights in `thresholds.py`, fitted with `python -m limen.lab.finger`).
Higher = more alike.

Speed: every edge table is flattened and sorted by (α bin, length) once, in
`prepare`; the edge join looks up three α bins per probe edge by binary search,
the root alignment joins on x the same way, and the hulls are kept as
half-planes that move with the candidate.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import cv2
import numpy as np

from limen import thresholds
from limen.bio.finger.template import FingerTemplate


def _wrap(a: np.ndarray) -> np.ndarray:
    """Angles wrapped to (−π, π]."""
    return (a + np.pi) % (2 * np.pi) - np.pi


@dataclass(frozen=True)
class PreparedTemplate:
    """A template with its edge tables computed once (for 1:N and repeated matching)."""

    xy: np.ndarray          # n×2 float64 positions, px
    hull: np.ndarray        # h×2 float64 convex hull of the positions, counter-clockwise (image axes)
    angle: np.ndarray       # n float32
    kind: np.ndarray        # n int8 minutia types
    neighbour: np.ndarray   # n×k index of the k nearest neighbours (n where absent)
    dist: np.ndarray        # n×k edge lengths (NaN where absent)
    alpha: np.ndarray       # n×k edge angle relative to the minutia's direction
    beta: np.ndarray        # n×k neighbour direction relative to the minutia's direction
    trig: np.ndarray        # 4×n×k cos α, sin α, cos β, sin β (angle tests without wrapping)
    # the same edges, flattened (absent ones dropped) and sorted by the join key (α bin, length): the edge
    # join looks up the three α bins around each probe edge instead of comparing every length-compatible pair
    edge_key: np.ndarray    # m float64: α bin × _KEY_SPAN + length
    edge_flat: np.ndarray   # m int64: i·k + a, the edge's place in the n×k tables
    edge_len: np.ndarray    # m float32 lengths
    edge_bin: np.ndarray    # m int64 α bins
    edge_trig: np.ndarray   # 4×m float32: cos α, sin α, cos β, sin β
    # as probe: the join keys each edge looks up in the candidate's edge_key, for its own α bin and the two
    # beside it (3·m, bin-major), from length − tolerance to length + tolerance; and the tolerance (m float32)
    edge_tol: np.ndarray
    edge_from: np.ndarray
    edge_to: np.ndarray
    edge_owner: np.ndarray  # 3·m int32: the edge each of those look-ups is for
    x: np.ndarray           # n float64: xy's columns, contiguous
    y: np.ndarray
    x_order: np.ndarray     # n: the minutiae by x, and their x and y in that order (the root alignment's join)
    x_sorted: np.ndarray
    y_by_x: np.ndarray
    hull_normal: np.ndarray  # h×2 inward unit normals of the hull's sides (h×0 rows: fewer than 3 vertices)
    hull_offset: np.ndarray  # h: a point x is inside side s when hull_normal[s]·x − hull_offset[s] ≥ 0
    # the block field (template.BlockField), block 0 when the template has none: as probe, its foreground block
    # centres and their values; as candidate, the whole grid to look the probe's moved centres up in
    field_block: int
    field_xy: np.ndarray     # f×2 foreground block centres, px
    field_at: np.ndarray     # 3×f orientation (rad), coherence, frequency (1/px) at those centres
    field_grid: np.ndarray   # 3×rows×cols the same over the whole grid (frequency 0 = background)

    @property
    def size(self) -> int:
        return len(self.angle)


_ABSENT = np.nan                    # never agrees with anything
_KEY_SPAN = 1e5                     # > any edge length, px: separates the α bins in the join key


def _alpha_bins() -> int:
    """α bins of the join: each at least the angle tolerance wide (+2 %: float rounding), so an agreeing edge
    is always in the probe edge's bin or one of its two neighbours."""
    return max(3, int(2 * np.pi // (thresholds.FINGER_MATCH_EDGE_ANGLE * 1.02)))


def _alpha_bin(alpha: np.ndarray) -> np.ndarray:
    bins = _alpha_bins()
    return np.floor((alpha.astype(np.float64) + np.pi) * (bins / (2 * np.pi))).astype(np.int64) % bins


def prepare(template: FingerTemplate) -> PreparedTemplate:
    """Edge tables of `template` (k nearest neighbours per minutia)."""
    xy, ang, kinds = template.arrays()
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
    hull = cv2.convexHull(xy.astype(np.float32)).reshape(-1, 2).astype(np.float64) if n >= 3 else xy.copy()
    flat = np.flatnonzero(np.isfinite(dist.reshape(-1)))
    length = dist.reshape(-1)[flat]                          # float32, as the tables
    bins = _alpha_bin(alpha.reshape(-1)[flat])
    key = bins * _KEY_SPAN + length.astype(np.float64)      # exact: the α bin and the float32 length
    order = np.argsort(key, kind="stable")
    flat_trig = trig.reshape(4, -1)[:, flat[order]]
    tol, look_from, look_to = _join_range(length[order], bins[order])
    normal, offset = _half_planes(hull)
    block, field_xy, field_at, field_grid = _field_tables(template)
    return PreparedTemplate(xy.astype(np.float64), hull, ang.astype(np.float32), kinds.astype(np.int8), neighbour,
                            dist, alpha, beta, trig, key[order], flat[order].astype(np.int64), length[order],
                            bins[order], np.ascontiguousarray(flat_trig), tol, look_from, look_to,
                            np.tile(np.arange(length.size, dtype=np.int32), 3),
                            *_by_x(xy.astype(np.float64)), normal, offset, block, field_xy, field_at, field_grid)


def _by_x(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x, y (contiguous), the order by x, and x and y in that order."""
    x, y = np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])
    order = np.argsort(x, kind="stable")
    return x, y, order, x[order], y[order]


def _join_range(length: np.ndarray, bins: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per edge (by join key): its length tolerance, and the first and last join key an agreeing candidate
    edge may have in each of the three α bins around its own (3·m, bin-major)."""
    tol = np.maximum(thresholds.FINGER_MATCH_EDGE_DIST_PX, thresholds.FINGER_MATCH_EDGE_DIST_REL * length)
    look = (bins[None, :] + np.array([-1, 0, 1])[:, None]) % _alpha_bins() * _KEY_SPAN     # 3×m
    return tol, (look + (length - tol)).reshape(-1), (look + (length + tol)).reshape(-1)


def _field_tables(template: FingerTemplate) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """The template's block field as (block, foreground centres, values there, whole grid); block 0: none."""
    if template.field is None:
        return 0, np.zeros((0, 2)), np.zeros((3, 0)), np.zeros((3, 0, 0))
    f = template.field
    grid = np.stack(f.arrays())
    rows, cols = np.nonzero(grid[2] > 0)
    centres = np.stack([(cols + 0.5) * f.block, (rows + 0.5) * f.block], axis=1).astype(np.float64)
    return f.block, centres, grid[:, rows, cols], grid


def _half_planes(hull: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The convex polygon `hull` (either winding) as inward unit normals and offsets (none: < 3 vertices)."""
    if len(hull) < 3:
        return np.zeros((0, 2)), np.zeros(0)
    nxt = np.roll(hull, -1, axis=0)
    edge = nxt - hull
    length = np.maximum(np.hypot(edge[:, 0], edge[:, 1]), 1e-9)
    area = float(np.sum(hull[:, 0] * nxt[:, 1] - nxt[:, 0] * hull[:, 1]))
    normal = np.stack([-edge[:, 1], edge[:, 0]], axis=1) / length[:, None] * (1.0 if area > 0 else -1.0)
    return normal, np.sum(normal * hull, axis=1)


def _agreeing_edges(p: PreparedTemplate, c: PreparedTemplate
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every (i, j, a, b) where edge a of probe minutia i agrees with edge b of candidate minutia j,
    with its normalised disagreement (≤ 1), sorted by (i, j).  A join on (α bin, edge length) through the
    candidate's key-sorted edges: each probe edge looks up its own α bin and the two beside it, so only
    edges compatible in length and edge angle are ever compared in full."""
    k = p.dist.shape[1]
    p_len, tol = p.edge_len, p.edge_tol
    lo = np.searchsorted(c.edge_key, p.edge_from, side="left")
    hi = np.searchsorted(c.edge_key, p.edge_to, side="right")
    counts = hi - lo
    total = int(counts.sum())
    rep = np.repeat(p.edge_owner, counts)
    cand = np.arange(total) + np.repeat(lo - (np.cumsum(counts) - counts), counts)
    p_cos_a, p_sin_a, p_cos_b, p_sin_b = p.edge_trig       # rows: contiguous, so the gathers are plain takes
    c_cos_a, c_sin_a, c_cos_b, c_sin_b = c.edge_trig
    limit = np.cos(thresholds.FINGER_MATCH_EDGE_ANGLE)
    # the neighbour directions first: the join did not look at them, so they reject most candidates
    cos_beta = p_cos_b[rep] * c_cos_b[cand] + p_sin_b[rep] * c_sin_b[cand]      # cos of their difference
    near = np.flatnonzero(cos_beta >= limit)
    rep, cand, cos_beta = rep[near], cand[near], cos_beta[near]
    cos_alpha = p_cos_a[rep] * c_cos_a[cand] + p_sin_a[rep] * c_sin_a[cand]     # of the edge angles' difference
    keep = np.flatnonzero(cos_alpha >= limit)
    rep, cand = rep[keep], cand[keep]
    dist_err = np.abs(p_len[rep] - c.edge_len[cand]) / tol[rep]
    err = np.maximum(dist_err, (1 - np.minimum(cos_alpha[keep], cos_beta[keep])) / (1 - limit))
    probe, other = p.edge_flat[rep], c.edge_flat[cand]
    ii, aa, jj, bb = probe // k, probe % k, other // k, other % k
    by_pair = np.argsort((ii * c.size + jj) * (k * k) + aa * k + bb, kind="stable")
    return ii[by_pair], jj[by_pair], aa[by_pair], bb[by_pair], err[by_pair]


FEATURES = ("pairs", "supported pairs", "support edges", "type-matching pairs", "pairs / √(n_p·n_c)",
            "support edges / √(n_p·n_c)", "summed edge error", "ln(1 + pairs)", "ln(1 + support edges)",
            "pairs / √(overlap_p·overlap_c)", "aligned pairs", "aligned pairs / √(n_p·n_c)",
            "tightly aligned pairs / √(overlap_p·overlap_c), re-aligned", "root-aligned minutiae",
            "root-aligned minutiae / √(n_p·n_c)", "ridge-flow agreement over the aligned overlap",
            "share of the aligned overlap agreeing in ridge frequency")


@dataclass(frozen=True)
class _Motion:
    """A pairing's alignment: its pairs' rigid motion, the motion re-fitted on the pairs that one aligns
    (`_aligned_pairs`; unchanged when fewer than 3), their count, and the ridge-flow and frequency agreement
    under the re-fitted motion."""

    graph_rot: np.ndarray          # the graph pairs' own motion (the overlap's hulls are moved by it)
    graph_shift: np.ndarray
    rot: np.ndarray
    shift: np.ndarray
    centre: np.ndarray
    aligned: int                   # pairs aligned by the graph pairs' own motion (loose tolerance)
    field: tuple[float, float]


@dataclass(frozen=True)
class _Pairing:
    """One grown pairing graph: the pairs, the support edges of each probe minutia, the edge errors; and the
    search's root-aligned count (`_root_aligned`: the best root's own rigid motion, no graph) and the kept
    pairing's alignment (None: fewer than 2 pairs)."""

    pairs: list[tuple[int, int]]
    support: list[int]             # per probe minutia
    errors: list[float]
    root_aligned: int = 0
    motion: _Motion | None = None

    @property
    def weight(self) -> float:
        return len(self.pairs) + thresholds.FINGER_MATCH_SUPPORT_WEIGHT * sum(self.support) / 4


def best_pairing(p: PreparedTemplate, c: PreparedTemplate) -> _Pairing | None:
    """The pairing graph grown from the best FINGER_MATCH_ROOTS root pairs whose weight, discounted by how
    poorly its alignment's ridge flow agrees (`_pick`), is highest (no pairs: no root with
    FINGER_MATCH_ROOT_MIN_EDGES agreeing edges; None: fewer than 2 minutiae), with its root-aligned count.
    Pairs that would turn the print by more than FINGER_MATCH_MAX_ROTATION are never roots nor grown."""
    n_p, n_c = p.size, c.size
    if n_p < 2 or n_c < 2:
        return None
    ii, jj, aa, bb, err = _agreeing_edges(p, c)
    upright = np.flatnonzero(np.cos(p.angle[ii].astype(np.float64) - c.angle[jj])
                             >= np.cos(thresholds.FINGER_MATCH_MAX_ROTATION))
    ii, jj, aa, bb, err = ii[upright], jj[upright], aa[upright], bb[upright], err[upright]
    local = _local_agreement(p, c, ii * n_c + jj, aa, bb)
    ranked = np.argsort(-local, kind="stable")
    roots = ranked[: thresholds.FINGER_MATCH_ROOTS]
    aligning = ranked[: thresholds.FINGER_MATCH_ALIGN_ROOTS]
    root_aligned = _root_aligned(p, c, aligning[local[aligning] >= 1])
    graph = _edge_graph(p, c, ii, jj, aa, bb, err)
    grown: list[_Grown] = []
    for root in roots.tolist():
        if local[root] < thresholds.FINGER_MATCH_ROOT_MIN_EDGES:
            break
        grown.append(_grow(root // n_c, root % n_c, graph))
    if not grown:
        return _Pairing([], [0] * n_p, [], root_aligned)
    best, pairs, motion = _pick(p, c, graph, grown)
    return _Pairing(pairs, best.support, [0.0, *(graph.error[r] for r in best.accepted)], root_aligned, motion)


def _pick(p: PreparedTemplate, c: PreparedTemplate, graph: _EdgeGraph, grown: list[_Grown]
          ) -> tuple[_Grown, list[tuple[int, int]], _Motion | None]:
    """The pairing whose weight × (FINGER_MATCH_FLOW_FLOOR + (1 − floor) × max(0, ridge-flow agreement of its
    alignment)) is highest, its pairs and that alignment: a heavy pairing that crosses the other print's
    ridge flow is usually a wrong alignment of a sparse genuine pair.  The key never exceeds the weight, so
    pairings are tried heaviest first (ties: the better-ranked root) until none can win, each distinct set
    of pairs once.  Without block fields every flow is 0 and the heaviest pairing wins, as before."""
    floor = thresholds.FINGER_MATCH_FLOW_FLOOR
    to_i, to_j = graph.to_i, graph.to_j
    best, best_pairs, best_motion, best_key = grown[0], [grown[0].root], None, -1.0
    tried: set[frozenset[tuple[int, int]]] = set()
    for g in sorted(grown, key=lambda g: -g.weight):          # stable
        if g.weight <= best_key:
            break
        pairs = [g.root, *((to_i[r], to_j[r]) for r in g.accepted)]
        distinct = frozenset(pairs)
        if distinct in tried:
            continue
        tried.add(distinct)
        motion = _motion(p, c, pairs)
        key = g.weight * (floor + (1 - floor) * max(motion.field[0], 0.0) if motion is not None else floor)
        if key > best_key:
            best, best_pairs, best_motion, best_key = g, pairs, motion, key
    return best, best_pairs, best_motion


def _motion(p: PreparedTemplate, c: PreparedTemplate, pairs: list[tuple[int, int]]) -> _Motion | None:
    """The alignment of a pairing (None: fewer than 2 pairs): the pairs' rigid motion, re-fitted on the
    pairs it aligns when there are ≥ 3, and the block fields' agreement under it."""
    rot, shift, centre = _rigid(p, c, pairs)
    if rot is None:
        return None
    found = _aligned_pairs(p, c, rot, shift, centre, thresholds.FINGER_MATCH_ALIGN_PX)
    graph_rot, graph_shift = rot, shift
    if len(found) >= 3:                    # the aligned pairs' own motion: more pairs than the graph's
        rot, shift, centre = _rigid(p, c, found)
        assert rot is not None
    return _Motion(graph_rot, graph_shift, rot, shift, centre, len(found), field_agreement(p, c, rot, shift))


def _local_agreement(p: PreparedTemplate, c: PreparedTemplate, pair: np.ndarray, aa: np.ndarray, bb: np.ndarray
                     ) -> np.ndarray:
    """Agreeing edges per (i, j) (flat i·n_c + j): distinct probe edges and distinct candidate edges, the
    smaller count."""
    k, pairs = p.dist.shape[1], p.size * c.size
    return np.minimum(_distinct_per_group(pair, aa, k, pairs), _distinct_per_group(pair, bb, k, pairs))


def _distinct_per_group(group: np.ndarray, member: np.ndarray, members: int, groups: int) -> np.ndarray:
    """How many distinct `member` values (< `members`) each group 0 … `groups` − 1 holds, from (group, member)
    rows that may repeat: each distinct row keeps the place of one of its copies (whichever the scatter wrote
    last), so exactly one copy counts."""
    key = group * members + member
    place = np.arange(key.size)
    kept = np.empty(groups * members, np.int64)
    kept[key] = place
    return np.bincount(group[kept[key] == place], minlength=groups)


@dataclass(frozen=True)
class _EdgeGraph:
    """The agreeing edges of one comparison as the growth walks them.  Each edge leads from a pair (i, j) to
    the pair of their neighbours (i', j') with an error; the growth takes pending pairs in (error, i', j')
    order, so edges are numbered by their *rank* in that order and the growth's heap holds these small ints
    instead of tuples: the same order, compared faster (edges with equal triples are interchangeable, so ties
    may rank either way)."""

    n_p: int
    n_c: int
    steps: dict[int, list[int]]     # pair i·n_c + j → the ranks of its edges
    to_i: list[int]                 # per rank: i'
    to_j: list[int]                 # per rank: j'
    error: list[float]              # per rank: the edge's error


def _edge_graph(p: PreparedTemplate, c: PreparedTemplate, ii: np.ndarray, jj: np.ndarray, aa: np.ndarray,
                bb: np.ndarray, err: np.ndarray) -> _EdgeGraph:
    """The agreeing edges (sorted by pair, as `_agreeing_edges` returns them) as the growth's `_EdgeGraph`."""
    to_i, to_j = p.neighbour[ii, aa], c.neighbour[jj, bb]
    order = np.lexsort((to_j, to_i, err))        # by error, then i', then j': the heap's order
    rank = np.empty(order.size, np.int64)
    rank[order] = np.arange(order.size)
    ranks = rank.tolist()
    pair = (ii * c.size + jj).tolist()
    cut = (np.flatnonzero(ii[1:] * c.size + jj[1:] != ii[:-1] * c.size + jj[:-1]) + 1).tolist()
    starts = [0, *cut] if pair else []           # each pair's run of edges
    ends = [*cut, len(pair)]
    return _EdgeGraph(p.size, c.size, {pair[a]: ranks[a:b] for a, b in zip(starts, ends, strict=False)},
                      to_i[order].tolist(), to_j[order].tolist(), err[order].tolist())


def _root_aligned(p: PreparedTemplate, c: PreparedTemplate, roots: np.ndarray) -> int:
    """Most minutiae that agree under the rigid motion of one root pair alone (its positions and directions):
    a consolidation that does not depend on the local edges agreeing, so a distorted or sparse genuine pair
    whose graph stalls early still counts what its best root aligns.  Per root, the smaller of the probe and
    candidate minutiae having a counterpart within FINGER_MATCH_ALIGN_PX and FINGER_MATCH_ALIGN_ANGLE."""
    if roots.size == 0:
        return 0
    ri, rj = roots // c.size, roots % c.size
    turn = p.angle[ri].astype(np.float64) - c.angle[rj].astype(np.float64)             # R
    cos_t, sin_t = np.cos(turn)[:, None], np.sin(turn)[:, None]
    rel_x = c.x[None, :] - c.x[rj][:, None]                                            # R×n_c
    rel_y = c.y[None, :] - c.y[rj][:, None]
    mx = (p.x[ri][:, None] + cos_t * rel_x - sin_t * rel_y).reshape(-1)                # R·n_c
    my = (p.y[ri][:, None] + sin_t * rel_x + cos_t * rel_y).reshape(-1)
    tol = thresholds.FINGER_MATCH_ALIGN_PX
    xs = p.x_sorted                                          # probe minutiae within ±tol in x: a sorted join
    lo = np.searchsorted(xs, mx - tol, side="left")
    counts = np.searchsorted(xs, mx + tol, side="right") - lo
    q = np.repeat(np.arange(mx.size), counts)
    at = np.arange(q.size) + np.repeat(lo - (np.cumsum(counts) - counts), counts)     # places in x order
    near = np.square(mx[q] - xs[at]) + np.square(my[q] - p.y_by_x[at]) <= tol * tol
    q, i = q[near], p.x_order[at[near]]
    r, j = q // c.size, q % c.size
    same = np.cos(c.angle[j].astype(np.float64) + turn[r] - p.angle[i]) >= np.cos(thresholds.FINGER_MATCH_ALIGN_ANGLE)
    r, j, i = r[same], j[same], i[same]
    if r.size == 0:
        return 0
    per_c = _distinct_per_group(r, j, c.size, roots.size)
    per_p = _distinct_per_group(r, i, p.size, roots.size)
    return int(np.minimum(per_c, per_p).max())


def features(p: PreparedTemplate, c: PreparedTemplate) -> np.ndarray:
    """The evidence of the best pairing, one value per name in FEATURES (all 0 but the counts: no pairing)."""
    n_p, n_c = p.size, c.size
    norm = max(n_p * n_c, 1) ** 0.5
    pairing = best_pairing(p, c)
    if pairing is None:
        return np.zeros(len(FEATURES), np.float64)
    if not pairing.pairs:
        return np.array([0.0] * 13 + [pairing.root_aligned, pairing.root_aligned / norm, 0.0, 0.0], np.float64)
    pairs = pairing.pairs
    n = len(pairs)
    edges = sum(pairing.support) / 2
    supported = sum(1 for i, _ in pairs if pairing.support[i] >= 1)
    same_type = sum(1 for i, j in pairs if p.kind[i] == c.kind[j])
    error = float(np.mean(pairing.errors[1:])) * n if n > 1 else 1.0
    floor = thresholds.FINGER_MATCH_MIN_OVERLAP_COUNT
    motion = pairing.motion
    flow, frequency = 0.0, 0.0
    if motion is None:
        overlap_p, overlap_c, aligned = n_p, n_c, n
        tight_fraction = n / max(norm, floor)
    else:
        overlap_p, overlap_c = _overlap(p, c, motion.graph_rot, motion.graph_shift)
        aligned = motion.aligned
        rot, shift, centre = motion.rot, motion.shift, motion.centre
        refined_p, refined_c = _overlap(p, c, rot, shift)
        tight = len(_aligned_pairs(p, c, rot, shift, centre, thresholds.FINGER_MATCH_TIGHT_PX,
                                   thresholds.FINGER_MATCH_TIGHT_REL))
        tight_fraction = tight / (max(refined_p, floor) * max(refined_c, floor)) ** 0.5
        flow, frequency = motion.field
    overlap = (max(overlap_p, floor) * max(overlap_c, floor)) ** 0.5
    return np.array([n, supported, edges, same_type, n / norm, edges / norm, error, np.log1p(n), np.log1p(edges),
                     n / overlap, aligned, aligned / norm, tight_fraction, pairing.root_aligned,
                     pairing.root_aligned / norm, flow, frequency], np.float64)


def field_agreement(p: PreparedTemplate, c: PreparedTemplate, rot: np.ndarray, shift: np.ndarray
                    ) -> tuple[float, float]:
    """Non-minutia evidence once the candidate is moved onto the probe by (rot, shift): over the foreground
    blocks of both prints that overlap, the coherence-weighted mean of cos 2Δθ of the ridge orientations
    (1 = the same flow, −1 = crossing) and the share of blocks whose ridge frequencies differ by less than
    FINGER_FIELD_FREQ_TOL.  (0, 0) when fewer than FINGER_FIELD_MIN_OVERLAP blocks overlap or either
    template carries no field (an older record: `similarity` then uses the minutiae-only model)."""
    if not has_field(p) or not has_field(c):
        return 0.0, 0.0
    back = (p.field_xy - shift) @ rot                       # probe block centres in the candidate's frame
    col = np.floor(back[:, 0] / c.field_block).astype(np.int64)
    row = np.floor(back[:, 1] / c.field_block).astype(np.int64)
    _, rows, cols = c.field_grid.shape
    inside = np.flatnonzero((col >= 0) & (col < cols) & (row >= 0) & (row < rows))
    theta_c, coh_c, freq_c = c.field_grid[:, row[inside], col[inside]]
    keep = freq_c > 0
    if np.count_nonzero(keep) < thresholds.FINGER_FIELD_MIN_OVERLAP:
        return 0.0, 0.0
    theta_p, coh_p, freq_p = p.field_at[:, inside[keep]]
    turn = float(np.arctan2(rot[1, 0], rot[0, 0]))
    weight = coh_p * coh_c[keep]
    flow = float(np.sum(weight * np.cos(2 * (theta_p - theta_c[keep] - turn))) / max(float(weight.sum()), 1e-6))
    step = np.abs(freq_p - freq_c[keep]) / ((freq_p + freq_c[keep]) / 2)
    return flow, float(np.mean(step < thresholds.FINGER_FIELD_FREQ_TOL))


def has_field(t: PreparedTemplate) -> bool:
    """Whether the template carries its block field (records sealed before the field was kept do not)."""
    return t.field_block > 0


def similarity(p: PreparedTemplate, c: PreparedTemplate) -> float:
    """Match score of probe `p` against candidate `c` (> 0, higher = more alike): softplus of a linear
    evidence score over `features` (weights FINGER_MATCH_WEIGHTS, fitted as a logistic model).  When either
    template has no block field, the minutiae-only model (FINGER_MATCH_MINUTIAE_*) scores the first features and
    its score is carried onto this scale through the shared FMR operating points, so every threshold keeps its
    false-match rate."""
    if p.size < 2 or c.size < 2:
        return 0.0
    evidence = features(p, c)
    if has_field(p) and has_field(c):
        z = float(np.dot(evidence, thresholds.FINGER_MATCH_WEIGHTS)) + thresholds.FINGER_MATCH_BIAS
        return float(np.logaddexp(0.0, z))
    weights = thresholds.FINGER_MATCH_MINUTIAE_WEIGHTS
    z = float(np.dot(evidence[:len(weights)], weights)) + thresholds.FINGER_MATCH_MINUTIAE_BIAS
    return minutiae_score_on_field_scale(float(np.logaddexp(0.0, z)))


def minutiae_score_on_field_scale(score: float) -> float:
    """A minutiae-only score mapped so that its FMR 1e-2 / 1e-3 / 1e-4 points land on FINGER_MATCH_FMR_1E2 /
    _1E3 / _1E4 (linear between them and from 0, slope 1 above the last)."""
    old = (0.0, *thresholds.FINGER_MATCH_MINUTIAE_FMR_POINTS)
    new = (0.0, thresholds.FINGER_MATCH_FMR_1E2, thresholds.FINGER_MATCH_FMR_1E3, thresholds.FINGER_MATCH_FMR_1E4)
    if score >= old[-1]:
        return new[-1] + score - old[-1]
    return float(np.interp(score, old, new))


def _inside(points: np.ndarray, hull: np.ndarray, margin: float) -> int:
    """How many `points` lie inside the convex polygon `hull` grown by `margin` px."""
    if len(hull) < 3:
        return 0
    nxt = np.roll(hull, -1, axis=0)
    edge = nxt - hull
    length = np.maximum(np.hypot(edge[:, 0], edge[:, 1]), 1e-9)
    area = float(np.sum(hull[:, 0] * nxt[:, 1] - nxt[:, 0] * hull[:, 1]))
    rel = points[:, None, :] - hull[None, :, :]
    side = (edge[None, :, 0] * rel[..., 1] - edge[None, :, 1] * rel[..., 0]) / length[None, :]
    side *= 1.0 if area > 0 else -1.0
    return int(np.count_nonzero((side >= -margin).all(axis=1)))


def _rigid(p: PreparedTemplate, c: PreparedTemplate, pairs: list[tuple[int, int]]
           ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Least-squares rotation and shift taking the paired candidate minutiae onto the probe's, and the
    paired probe minutiae's centre (rotation None: < 2 pairs)."""
    if len(pairs) < 2:
        return None, np.zeros(2), np.zeros(2)
    idx = np.array(pairs)
    a, b = c.xy[idx[:, 1]], p.xy[idx[:, 0]]
    ca, cb = a.mean(0), b.mean(0)
    u, v = a - ca, b - cb
    theta = np.arctan2(np.sum(u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]), np.sum(u * v))
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return rot, cb - ca @ rot.T, cb


def _overlap(p: PreparedTemplate, c: PreparedTemplate, rot: np.ndarray, shift: np.ndarray) -> tuple[int, int]:
    """Minutiae of the probe inside the moved candidate's hull, and of the moved candidate inside the probe's
    (each hull grown by FINGER_MATCH_OVERLAP_MARGIN_PX); the hulls' half-planes move with the candidate."""
    margin = thresholds.FINGER_MATCH_OVERLAP_MARGIN_PX
    inside_c = 0
    if len(c.hull_offset):
        normal = c.hull_normal @ rot.T
        offset = c.hull_offset + normal @ shift
        inside_c = int(np.count_nonzero((p.xy @ normal.T - offset >= -margin).all(axis=1)))
    inside_p = 0
    if len(p.hull_offset):
        moved = c.xy @ rot.T + shift
        inside_p = int(np.count_nonzero((moved @ p.hull_normal.T - p.hull_offset >= -margin).all(axis=1)))
    return inside_c, inside_p


def _aligned_pairs(p: PreparedTemplate, c: PreparedTemplate, rot: np.ndarray, shift: np.ndarray,
                   centre: np.ndarray, px: float, rel: float = thresholds.FINGER_MATCH_ALIGN_REL
                   ) -> list[tuple[int, int]]:
    """Minutia pairs (probe, candidate; nearest first, each minutia once) that agree in position and direction
    once the candidate is moved by (rot, shift): a global count that catches pairs the local graph did not
    reach; the position tolerance, `px` + `rel` × the distance from the paired minutiae's centre, grows with
    that distance (skin stretches)."""
    mapped = c.xy @ rot.T + shift
    dx = mapped[:, None, 0] - p.x[None, :]
    dy = mapped[:, None, 1] - p.y[None, :]
    d2 = dx * dx + dy * dy
    tol = px + rel * np.hypot(*(p.xy - centre).T)
    ci, pi = np.nonzero(d2 <= (tol * tol)[None, :])
    turn = float(np.arctan2(rot[1, 0], rot[0, 0]))
    agree = np.cos(c.angle[ci].astype(np.float64) + turn - p.angle[pi]) >= np.cos(thresholds.FINGER_MATCH_ALIGN_ANGLE)
    ci, pi = ci[agree], pi[agree]
    order = np.argsort(d2[ci, pi], kind="stable")
    used_c: set[int] = set()
    used_p: set[int] = set()
    found: list[tuple[int, int]] = []
    for a, b in zip(ci[order].tolist(), pi[order].tolist(), strict=True):
        if a not in used_c and b not in used_p:
            used_c.add(a)
            used_p.add(b)
            found.append((b, a))
    return found


@dataclass(frozen=True)
class _Grown:
    """One pairing as the growth leaves it: its root, the ranks of the edges that paired after the root (in
    the order they did), the support per probe minutia, and `_Pairing.weight`."""

    root: tuple[int, int]
    accepted: list[int]
    support: list[int]
    weight: float


def _grow(i0: int, j0: int, graph: _EdgeGraph) -> _Grown:
    """Grow a pairing from root (i0, j0): smallest edge error first, each minutia paired once; an edge
    between two minutiae already paired to each other supports both."""
    steps, to_i, to_j, n_c = graph.steps, graph.to_i, graph.to_j, graph.n_c
    pair_p = [-1] * graph.n_p
    pair_c = [-1] * n_c
    support = [0] * graph.n_p
    accepted: list[int] = []                  # ranks of the edges that paired, after the root
    pending: list[int] = []                   # ranks (see _EdgeGraph)
    pop, push = heapq.heappop, heapq.heappush
    i, j = i0, j0
    while True:
        pair_p[i] = j
        pair_c[j] = i
        for rank in steps.get(i * n_c + j, ()):
            ni = to_i[rank]
            other = pair_p[ni]
            if other < 0:
                if pair_c[to_j[rank]] < 0:
                    push(pending, rank)
            elif other == to_j[rank]:
                support[i] += 1
                support[ni] += 1
        while pending:                        # the next pending pair whose minutiae are both free
            rank = pop(pending)
            i, j = to_i[rank], to_j[rank]
            paired = pair_p[i]
            if paired < 0 and pair_c[j] < 0:
                break
            if paired == j:
                support[i] += 1                # a second edge confirms an existing pair
        else:
            break
        accepted.append(rank)
    weight = (1 + len(accepted)) + thresholds.FINGER_MATCH_SUPPORT_WEIGHT * sum(support) / 4   # as _Pairing's
    return _Grown((i0, j0), accepted, support, weight)
