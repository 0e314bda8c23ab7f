"""Stage 7: minutiae on the skeleton (crossing number), direction by ridge tracing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from limen import thresholds
from limen.bio.finger.template import MinutiaType
from limen.bio.finger.thinning import _OFFSETS, neighbour_codes


def _crossing_table() -> np.ndarray:
    table = np.zeros(256, np.uint8)
    for c in range(256):
        n = [(c >> i) & 1 for i in range(8)]
        table[c] = sum(abs(n[i] - n[(i + 1) % 8]) for i in range(8)) // 2
    return table


_CROSSING = _crossing_table()


@dataclass
class RawMinutia:
    """A candidate minutia before false-minutia removal."""

    x: int
    y: int
    angle: float
    kind: MinutiaType
    reaches: tuple[int, int] | None   # minutia met within FINGER_SPUR_PERIODS ridge periods along a branch


def _trace(skel: np.ndarray, cn: np.ndarray, start: tuple[int, int], first: tuple[int, int],
           steps: int, avoid: frozenset[tuple[int, int]] = frozenset()
           ) -> tuple[tuple[int, int], tuple[int, int] | None, int]:
    """Follow the skeleton from `start` through `first`, never into `avoid` (the other branches' pixels around
    a bifurcation: a trace stepping into a sibling branch's first pixel would follow that branch instead);
    return the last point, a minutia met, length."""
    h, w = skel.shape
    cur = first
    visited = {start, first} | avoid
    for length in range(1, steps + 1):
        y, x = cur
        if cn[y, x] != 2:
            return cur, cur, length
        nxt = None
        for dy, dx in _OFFSETS:
            yy, xx = y + dy, x + dx
            # prefer 4-neighbours so diagonal shortcuts do not skip a pixel
            if (0 <= yy < h and 0 <= xx < w and skel[yy, xx] and (yy, xx) not in visited
                    and (nxt is None or dy == 0 or dx == 0)):
                nxt = (yy, xx)
        if nxt is None:
            return cur, cur, length
        visited.add(nxt)
        cur = nxt
    return cur, None, steps


def _branch_starts(skel: np.ndarray, y: int, x: int) -> list[tuple[tuple[int, int], frozenset[tuple[int, int]]]]:
    """Per branch leaving (y, x) (a run of set neighbours): its first skeleton pixel, and the ring pixels of
    the other branches (which its trace must not enter)."""
    h, w = skel.shape
    ring = []
    for dy, dx in _OFFSETS:
        yy, xx = y + dy, x + dx
        ring.append(0 <= yy < h and 0 <= xx < w and bool(skel[yy, xx]))
    set_pixels = frozenset((y + dy, x + dx) for (dy, dx), on in zip(_OFFSETS, ring, strict=True) if on)
    starts = []
    for i in range(8):
        if ring[i] and not ring[i - 1]:
            run = set()
            j = i
            while ring[j % 8] and j < i + 8:
                run.add((y + _OFFSETS[j % 8][0], x + _OFFSETS[j % 8][1]))
                j += 1
            dy, dx = _OFFSETS[i]
            # within a run, prefer its 4-neighbour pixel
            j = i
            while ring[j % 8] and j < i + 8:
                ddy, ddx = _OFFSETS[j % 8]
                if ddy == 0 or ddx == 0:
                    dy, dx = ddy, ddx
                    break
                j += 1
            starts.append(((y + dy, x + dx), set_pixels - run))
    return starts


def _angle_to(y: int, x: int, target: tuple[int, int]) -> float:
    return float(np.arctan2(target[0] - y, target[1] - x))


def _snap(angle: float, ridge: float) -> float:
    """The direction of the ridge orientation (mod π) closest to a traced `angle`."""
    a = ridge if np.cos(angle - ridge) >= 0 else ridge + np.pi
    return float(a % (2 * np.pi))


def raw_minutiae(skel: np.ndarray, orientation: np.ndarray, period: float) -> list[RawMinutia]:
    """Endings (crossing number 1) and bifurcations (3) with directions from the traced ridges; each
    notes another minutia met within FINGER_SPUR_PERIODS × the ridge `period` along one of its ridges."""
    cn = _CROSSING[neighbour_codes(skel)] * skel
    steps = thresholds.FINGER_TRACE_STEPS
    spur = max(1, round(thresholds.FINGER_SPUR_PERIODS * period))
    found: list[RawMinutia] = []
    for y, x in zip(*np.nonzero((cn == 1) | (cn == 3)), strict=True):
        y, x = int(y), int(x)
        branches = _branch_starts(skel, y, x)
        traces = [_trace(skel, cn, (y, x), b, max(steps, spur), avoid) for b, avoid in branches]
        met = next(((p[1], p[0]) for _, p, n in traces if p is not None and n <= spur), None)
        if cn[y, x] == 1 and len(traces) == 1:
            end = _trace(skel, cn, (y, x), branches[0][0], steps)[0]
            kind = MinutiaType.ENDING
            angle = _angle_to(y, x, end)
        elif cn[y, x] == 3 and len(traces) == 3:
            ends = [_trace(skel, cn, (y, x), b, steps, avoid)[0] for b, avoid in branches]
            dirs = np.array([_angle_to(y, x, e) for e in ends])
            # the stem is the branch farthest in angle from the other two; direction = away from it
            spread = [sum(abs(np.angle(np.exp(1j * (dirs[i] - dirs[j])))) for j in range(3)) for i in range(3)]
            kind = MinutiaType.BIFURCATION
            angle = float(dirs[int(np.argmax(spread))] + np.pi)
        else:
            continue
        found.append(RawMinutia(x, y, _snap(angle, float(orientation[y, x])), kind, met))
    return found
