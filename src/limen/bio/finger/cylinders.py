"""Protected Minutia Cylinder-Code: one keyed bit string per minutia, compared without positions.

After Cappelli, Ferrara & Maltoni's Minutia Cylinder-Code (MCC, IEEE TPAMI 2010) and its protected forms
(P-MCC, Ferrara, Maltoni & Cappelli, IEEE TIFS 2012; 2P-MCC, 2014).

- **Cylinder** (`cylinders`): around every minutia, in its own frame (centred on it, turned to its direction, so
  invariant to where the print lies and how it is turned), a disc of radius FINGER_MCC_RADIUS cut into
  FINGER_MCC_CELLS² cells × FINGER_MCC_SECTIONS direction sections.  Each neighbour adds a Gaussian of its
  distance to the cell centre (σ = FINGER_MCC_SIGMA_S) times the share of a Gaussian of its direction relative to
  the minutia's (σ = FINGER_MCC_SIGMA_D) that falls in the section; a cell is set when the sum reaches
  FINGER_MCC_MU_PSI (the bit-based MCC).  Cells outside the print (farther than FINGER_MCC_HULL_MARGIN from the
  minutiae's convex hull) are invalid; a cylinder with too few valid cells or neighbours is dropped.  The
  published MCC defaults, unchanged.
- **Protection** (`CylinderKey`): each cylinder's valid cells, centred on the mean cell rate (invalid cells: 0),
  are projected by a Gaussian matrix derived from the device's secret (FINGER_MCC_BITS rows × 1,536 cells) and
  only the signs are kept (SimHash): the share of agreeing bits estimates the angle between two cylinders.
  1,536 cells → FINGER_MCC_BITS signs is many-to-one, and another secret gives unrelated bits (renewal,
  unlinkability).  The stored code (`ProtectedFingerCode`) holds the bit strings only, sorted by value: no
  position, direction, order of extraction or minutia type — and always FINGER_MCC_STRINGS of them: the best
  cylinders up to that number, then decoys (the keyed cylinders of a synthetic print), so that its length does
  not tell the number of minutiae (which linked a person's codes across keys) nor which strings are real.
- **Comparison** (`compare`): MCC's Local Similarity Assignment — every pair of bit strings scores the share of
  agreeing bits, the strings are paired one to one (Hungarian, the largest summed similarity), and the score is
  the mean of the best n_P assigned pairs, n_P growing from FINGER_MCC_LSS_PAIRS[0] to [1] with the smaller
  code's size (a logistic in it, centre FINGER_MCC_LSS_MU, slope FINGER_MCC_LSS_TAU).  The unprotected MCC keeps
  the Local Similarity Sort (best n_P pairs, a string may appear in several).  No alignment and no positions:
  weaker than the minutiae matcher, which consolidates pairs globally.

`limen lab finger --protected` measures it (docs/finger.md, "Protected templates").
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import erf

from limen import thresholds
from limen.bio.finger.template import FingerTemplate, Minutia, MinutiaType

_FORMAT = b"LMC1"       # magic + format version of a serialised ProtectedFingerCode


@dataclass(frozen=True)
class Cylinders:
    """The cylinders of one template (biometric data: never stored, never logged).

    `values` n × cells × sections: each cell's contributions squashed by MCC's logistic Ψ (0…1, ½ at μ_ψ;
    0 in invalid cells); `valid` n × cells (bool): cells in the disc and over the print.  `area`: px² of the
    minutiae's convex hull a minutia, and `same_way`: the share of minutiae within R of each other that point the
    same way (cos > 0) — what the decoys' synthetic print copies.
    """

    values: np.ndarray
    valid: np.ndarray
    area: float = thresholds.FINGER_MCC_CHAFF_AREA
    same_way: float = 0.5

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def bits(self) -> np.ndarray:
        """The bit-based cylinders: cells whose contributions reach μ_ψ."""
        return self.values >= 0.5


def _cell_offsets() -> np.ndarray:
    """Centres of the Ns × Ns cells in the minutia's frame (px), row-major; the disc is ‖·‖ ≤ R."""
    ns, r = thresholds.FINGER_MCC_CELLS, thresholds.FINGER_MCC_RADIUS
    step = 2 * r / ns
    ticks = (np.arange(ns) - (ns - 1) / 2) * step
    gx, gy = np.meshgrid(ticks, ticks)
    return np.stack([gx.ravel(), gy.ravel()], -1)


def _section_share(relative: np.ndarray) -> np.ndarray:
    """… × sections: the share of a Gaussian (σ_D) centred on each relative direction that falls in a section."""
    nd, sigma, period = thresholds.FINGER_MCC_SECTIONS, thresholds.FINGER_MCC_SIGMA_D, thresholds.FINGER_MCC_PERIOD
    width = period / nd
    centres = (np.arange(nd) + 0.5) * width
    off = (centres - relative[..., None] + period / 2) % period - period / 2
    s = sigma * np.sqrt(2)
    return 0.5 * (erf((off + width / 2) / s) - erf((off - width / 2) / s))


def turned(c: Cylinders) -> Cylinders:
    """The cylinders as they would be had every minutia's direction been read the other way (a half turn)."""
    values = c.values[:, ::-1, :]
    if np.pi + 1e-9 < thresholds.FINGER_MCC_PERIOD:
        values = np.roll(values, thresholds.FINGER_MCC_SECTIONS // 2, axis=2)
    return Cylinders(np.ascontiguousarray(values), np.ascontiguousarray(c.valid[:, ::-1]), c.area, c.same_way)


def _within_hull(px: np.ndarray, py: np.ndarray, xy: np.ndarray, margin: float) -> np.ndarray:
    """Which points (`px`, `py`, any shape) lie inside the convex hull of `xy` enlarged by `margin` px."""
    hull = cv2.convexHull(xy.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    ax, ay = hull[:, 0], hull[:, 1]
    ux, uy = np.roll(ax, -1) - ax, np.roll(ay, -1) - ay
    x, y = px.reshape(-1, 1), py.reshape(-1, 1)
    cross = ux * (y - ay) - uy * (x - ax)
    inside: np.ndarray = np.zeros(x.size, bool)
    if len(hull) >= 3:
        inside = np.asarray((cross >= 0).all(axis=1) | (cross <= 0).all(axis=1))
    out = np.flatnonzero(~inside)
    x, y = x[out], y[out]
    t = np.clip(((x - ax) * ux + (y - ay) * uy) / np.maximum(ux * ux + uy * uy, 1e-12), 0.0, 1.0)
    dx, dy = x - ax - t * ux, y - ay - t * uy
    inside[out] = (dx * dx + dy * dy).min(axis=1) <= margin * margin
    return inside.reshape(px.shape)


def cylinders(template: FingerTemplate) -> Cylinders:
    """The valid cylinders of `template` (none when it has fewer than three minutiae)."""
    xy, ang, _ = template.arrays()
    cells = thresholds.FINGER_MCC_CELLS ** 2
    empty = Cylinders(np.zeros((0, cells, thresholds.FINGER_MCC_SECTIONS), np.float32), np.zeros((0, cells), bool))
    if len(ang) < 3:
        return empty
    r, sigma_s = thresholds.FINGER_MCC_RADIUS, thresholds.FINGER_MCC_SIGMA_S
    grid = _cell_offsets()
    gx, gy = grid[:, 0], grid[:, 1]
    in_disc = gx * gx + gy * gy <= r * r
    dx, dy = xy[None, :, 0] - xy[:, None, 0], xy[None, :, 1] - xy[:, None, 1]          # m × t: t seen from m
    neighbours = (dx * dx + dy * dy <= (r + 3 * sigma_s) ** 2).sum(1) - 1
    cos, sin = np.cos(ang)[:, None], np.sin(ang)[:, None]
    valid = in_disc & _within_hull(xy[:, None, 0] + cos * gx - sin * gy, xy[:, None, 1] + sin * gx + cos * gy,
                                   xy, thresholds.FINGER_MCC_HULL_MARGIN)
    keep = np.flatnonzero((valid.sum(1) >= thresholds.FINGER_MCC_MIN_VALID_CELLS * in_disc.sum())
                          & (neighbours >= thresholds.FINGER_MCC_MIN_NEIGHBOURS))
    if keep.size == 0:
        return empty
    near = (dx * dx + dy * dy <= r * r) & ~np.eye(len(ang), dtype=bool)
    same_way = float(np.mean(np.cos(ang[None, :] - ang[:, None])[near] > 0)) if near.any() else 0.5
    area = float(cv2.contourArea(cv2.convexHull(xy.astype(np.float32)))) / len(ang)
    cos, sin, dx, dy = cos[keep], sin[keep], dx[keep], dy[keep]
    lx, ly = cos * dx + sin * dy, cos * dy - sin * dx                                   # in m's frame
    ex, ey = gx[None, :, None] - lx[:, None, :], gy[None, :, None] - ly[:, None, :]    # m × cell × t
    d2 = ex * ex + ey * ey
    spatial = np.where(d2 <= (3 * sigma_s) ** 2, np.exp(-d2 / (2 * sigma_s ** 2)), 0.0) / (sigma_s * np.sqrt(2 * np.pi))
    spatial[np.arange(keep.size), :, keep] = 0.0                                       # not its own neighbour
    relative = (ang[None, :] - ang[keep, None]) % thresholds.FINGER_MCC_PERIOD
    value = np.matmul(spatial, _section_share(relative))                               # m × cell × section
    squashed = 1.0 / (1.0 + np.exp(-thresholds.FINGER_MCC_TAU_PSI * (value - thresholds.FINGER_MCC_MU_PSI)))
    return Cylinders((squashed * valid[keep, :, None]).astype(np.float32), valid[keep], area, same_way)


# ---------------------------------------------------------------- unprotected MCC (the reference before protection)


def _pairs_to_keep(smaller: int) -> int:
    """n_P of the Local Similarity Sort for codes whose smaller one has `smaller` cylinders."""
    lo, hi = thresholds.FINGER_MCC_LSS_PAIRS
    z = 1.0 / (1.0 + np.exp(-thresholds.FINGER_MCC_LSS_TAU * (smaller - thresholds.FINGER_MCC_LSS_MU)))
    return int(lo + round(z * (hi - lo)))


def local_similarity_sort(similarities: np.ndarray) -> float:
    """The mean of the best n_P entries of a cylinder-pair similarity matrix (0 when a side is empty)."""
    if similarities.size == 0:
        return 0.0
    top = min(_pairs_to_keep(min(similarities.shape)), similarities.size)
    return float(np.partition(similarities.ravel(), -top)[-top:].mean())


def one_to_one_sort(similarities: np.ndarray) -> float:
    """The mean of the best n_P pairs of a one-to-one assignment (Hungarian, maximising the summed similarity) of a
    cylinder-pair similarity matrix: each cylinder counts once, so a cylinder that resembles many others cannot fill
    the best pairs alone (MCC's Local Similarity Assignment; 0 when a side is empty)."""
    if similarities.size == 0:
        return 0.0
    rows, cols = linear_sum_assignment(similarities, maximize=True)
    paired = similarities[rows, cols]
    top = min(_pairs_to_keep(min(similarities.shape)), paired.size)
    return float(np.partition(paired, -top)[-top:].mean())


def cylinder_similarities(a: Cylinders, b: Cylinders) -> np.ndarray:
    """MCC's bit-based cylinder similarity over the cells valid in both (0 below the common-cells minimum)."""
    va, vb = a.valid.astype(np.float32), b.valid.astype(np.float32)
    nd = thresholds.FINGER_MCC_SECTIONS
    ba = a.bits.reshape(len(a), -1).astype(np.float32)
    bb = b.bits.reshape(len(b), -1).astype(np.float32)
    common = va @ vb.T
    ones_a = ba @ np.repeat(vb, nd, axis=1).T                          # a's set bits over b's valid cells
    ones_b = np.repeat(va, nd, axis=1) @ bb.T
    both = ba @ bb.T
    differ = np.maximum(ones_a + ones_b - 2 * both, 0.0)
    norms = np.sqrt(ones_a) + np.sqrt(ones_b)
    sim = np.where(norms > 0, 1.0 - np.sqrt(differ) / np.maximum(norms, 1e-12), 0.0)
    disc = int((np.sqrt((_cell_offsets() ** 2).sum(-1)) <= thresholds.FINGER_MCC_RADIUS).sum())
    enough = common >= thresholds.FINGER_MCC_MIN_COMMON_CELLS * disc
    return np.where(enough, sim, 0.0)


def unprotected_similarity(a: Cylinders, b: Cylinders) -> float:
    """MCC (bit-based, Local Similarity Sort) of two unprotected cylinder sets, 0…1."""
    return local_similarity_sort(cylinder_similarities(a, b))


# ---------------------------------------------------------------- the keyed, renewable code


@dataclass(frozen=True)
class ProtectedFingerCode:
    """What is stored: FINGER_MCC_BITS-bit strings, sorted (no positions, directions, order) — from a `CylinderKey`,
    FINGER_MCC_STRINGS of them, the best cylinders' and decoys (a probe's: one per cylinder, never stored).

    Still biometric data (a key holder can compare or forge probes for this device): it is sealed like the rest.
    """

    bits: np.ndarray        # n × FINGER_MCC_BITS bool

    def __len__(self) -> int:
        return int(self.bits.shape[0])

    def to_bytes(self) -> bytes:
        """`LMC1`, count and bit length (2 bytes each, big-endian), then the packed rows."""
        n, k = self.bits.shape
        return _FORMAT + struct.pack(">HH", n, k) + np.packbits(self.bits, axis=1).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> ProtectedFingerCode:
        """The inverse of `to_bytes`; ValueError on anything else."""
        if len(data) < 8 or data[:4] != _FORMAT:
            raise ValueError("not a protected finger code")
        n, k = struct.unpack(">HH", data[4:8])
        width = (k + 7) // 8
        if k == 0 or len(data) != 8 + n * width:
            raise ValueError("a protected finger code of the wrong length")
        packed = np.frombuffer(data, np.uint8, offset=8).reshape(n, width)
        return cls(np.unpackbits(packed, axis=1, count=k).astype(bool))


def _sorted(signs: np.ndarray) -> np.ndarray:
    """Bit strings in the order of their values (what is stored: no order of extraction or of quality)."""
    return signs[np.lexsort(np.packbits(signs, axis=1).T[::-1])]


def _best(c: Cylinders, signs: np.ndarray, count: int) -> np.ndarray:
    """The strings of the `count` best cylinders: the most valid cells (the most print around the minutia), then
    the most set cells (the most neighbours), then by value (so the choice does not depend on minutiae order)."""
    order = np.lexsort((*np.packbits(signs, axis=1).T[::-1], -c.bits.reshape(len(c), -1).sum(1), -c.valid.sum(1)))
    return _sorted(signs[order[:count]])


def _chaff_print(rng: np.random.Generator, count: int, area: float, same_way: float) -> FingerTemplate:
    """A synthetic print of `count` minutiae for decoy cylinders, like the real one: positions spread over a disc
    at `area` px² a minutia (at least FINGER_MCC_CHAFF_SPACING apart), directions along a smooth field with one
    core and one delta (Sherlock–Monro), each turned a half turn with the probability that makes a share
    `same_way` of pairs point the same way; listed nearest a random point first (taking the first few takes a
    patch, whose cylinders overlap one another as a real print's do)."""
    side = np.sqrt(count * max(area, 2 * thresholds.FINGER_MCC_CHAFF_SPACING ** 2) / np.pi)   # 2 s²: room to spare
    turn = (1 - np.sqrt(max(2 * same_way - 1, 0.0))) / 2           # p² + (1 − p)² = same_way
    xy = np.zeros((0, 2))
    while len(xy) < count:
        r, a = side * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
        p = np.array([[side + r * np.cos(a), side + r * np.sin(a)]])
        if len(xy) == 0 or np.min(np.hypot(*(xy - p).T)) >= thresholds.FINGER_MCC_CHAFF_SPACING:
            xy = np.concatenate([xy, p])
    xy = xy[np.argsort(np.hypot(*(xy - rng.uniform(0, 2 * side, 2)).T))]     # nearest a random point first
    z = xy[:, 0] + 1j * xy[:, 1]
    core, delta = (complex(*rng.uniform(0, 2 * side, 2)) for _ in range(2))
    field = 0.5 * (np.angle(z - core) - np.angle(z - delta)) + rng.uniform(0, 2 * np.pi)
    ang = field + np.pi * (rng.random(count) < turn)
    minutiae = tuple(Minutia(int(round(x)), int(round(y)), float(t % (2 * np.pi)), MinutiaType.ENDING, 50)
                     for (x, y), t in zip(xy, ang, strict=True))
    size = int(np.ceil(2 * side)) + 1
    return FingerTemplate(size, size, 500, minutiae)


class CylinderKey:
    """The keyed projection of cylinders: one per device secret (renew: a new secret, re-enrol).

    Every code it makes holds exactly `strings` bit strings (FINGER_MCC_STRINGS): the best cylinders up to that
    number, and decoys for the rest — the cylinders of a synthetic print (`_chaff_print`) drawn from a generator
    keyed by the secret and the real strings, projected the same way — all sorted together, so that neither the
    count of minutiae nor which strings are decoys is stored.  `strings=0` keeps the variable count of the codes
    before 2 Dec 2026 (lab comparisons only: their count links a person's codes across keys).
    """

    def __init__(self, secret: bytes, bits: int | None = None, strings: int | None = None) -> None:
        if len(secret) < 16:
            raise ValueError("a cylinder key needs at least 16 secret bytes")
        seed = int.from_bytes(hashlib.sha256(b"limen.finger.mcc\x00" + secret).digest(), "big")
        rng = np.random.Generator(np.random.PCG64(seed))
        dims = thresholds.FINGER_MCC_CELLS ** 2 * thresholds.FINGER_MCC_SECTIONS
        self._mix = rng.standard_normal((bits or thresholds.FINGER_MCC_BITS, dims)).astype(np.float32)
        self._decoy_secret = hashlib.sha256(b"limen.finger.mcc.decoys\x00" + secret).digest()
        self._strings = thresholds.FINGER_MCC_STRINGS if strings is None else strings

    def _signs(self, c: Cylinders) -> np.ndarray:
        centred = (c.bits - np.float32(thresholds.FINGER_MCC_CELL_RATE)) * c.valid[..., None]
        return np.asarray(centred.reshape(len(c), -1).astype(np.float32) @ self._mix.T > 0)

    def _decoys(self, c: Cylinders, real: np.ndarray, count: int) -> np.ndarray:
        """`count` decoy strings (none for 0): cylinders of a synthetic print like `c`'s, drawn from a generator
        keyed by the secret and the (sorted) real strings — deterministic for one key and print, different for
        another print or another key."""
        seed = hmac.new(self._decoy_secret, np.packbits(real, axis=1).tobytes(), hashlib.sha256).digest()
        rng = np.random.Generator(np.random.PCG64(int.from_bytes(seed, "big")))
        found = np.zeros((0, self._mix.shape[0]), bool)
        while len(found) < count:
            chaff = cylinders(_chaff_print(rng, count + thresholds.FINGER_MCC_CHAFF_EXTRA, c.area, c.same_way))
            if len(chaff):
                found = np.concatenate([found, self._signs(chaff)])
        return found[:count]

    def protect_cylinders(self, c: Cylinders) -> ProtectedFingerCode:
        """The stored code of a template's cylinders: empty when it has none (nothing to enrol), else exactly
        the key's number of strings."""
        if len(c) == 0:
            return ProtectedFingerCode(np.zeros((0, self._mix.shape[0]), bool))
        signs = self._signs(c)
        if not self._strings:
            return ProtectedFingerCode(_sorted(signs))
        real = _best(c, signs, self._strings)
        decoys = self._decoys(c, real, self._strings - len(real))
        return ProtectedFingerCode(_sorted(np.concatenate([real, decoys])))

    def protect(self, template: FingerTemplate) -> ProtectedFingerCode:
        """The code to store (a reference): the key's fixed number of strings."""
        return self.protect_cylinders(cylinders(template))

    def probe(self, template: FingerTemplate) -> ProtectedFingerCode:
        """A probe's code, compared at once with stored ones and never stored: every cylinder's string, no decoys
        (decoys on both sides cost accuracy; docs/finger.md)."""
        c = cylinders(template)
        return ProtectedFingerCode(_sorted(self._signs(c)) if len(c) else np.zeros((0, self._mix.shape[0]), bool))

    def attacker_view(self) -> np.ndarray:
        """The projection, as an attacker who holds the device secret can rebuild it (for the lab)."""
        return self._mix.copy()


def code_similarities(a: ProtectedFingerCode, b: ProtectedFingerCode) -> np.ndarray:
    """The share of agreeing bits of every pair of bit strings (len(a) × len(b))."""
    k = a.bits.shape[1]
    if b.bits.shape[1] != k:
        raise ValueError("codes of different lengths")
    sa = a.bits.astype(np.float32) * 2 - 1
    sb = b.bits.astype(np.float32) * 2 - 1
    return (sa @ sb.T / k + 1) / 2


def compare(a: ProtectedFingerCode, b: ProtectedFingerCode) -> float:
    """Similarity of two protected codes made under one key, 0…1 (about 0.5 for unrelated strings): the best pairs
    of a one-to-one assignment of their bit strings (`one_to_one_sort`)."""
    return one_to_one_sort(code_similarities(a, b))
