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

import hashlib

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


# ---------------------------------------------------------------- spectral minutiae and their keyed binary code
# Xu & Veldhuis' spectral minutiae (location-based SML and orientation-based SMO): the magnitude of the
# Fourier transform of the minutiae, sampled on a polar grid of FINGER_SPECTRAL_RADIAL frequencies ×
# FINGER_SPECTRAL_ANGLES directions.  The magnitude does not depend on where the print lies (translation
# invariant); a rotation of the print is a circular shift of the columns, searched within ±FINGER_SPECTRAL_SHIFT.
# `SpectralKey` protects it: each column is mixed by a keyed Gaussian matrix (FINGER_SPECTRAL_ROWS rows,
# derived from the device's secret) and only the signs are kept — 2 × rows × angles bits.  Mixing along the
# frequency axis commutes with the column shift, so the protected code is compared under rotation as well.
# Phases are gone (the spectrum is that of the minutiae's autocorrelation) and only signs of projections
# remain; another key gives unrelated bits (renewable, unlinkable).  `limen lab finger --protected` measures it.


def _spectral_grid() -> tuple[np.ndarray, np.ndarray]:
    lo, hi = thresholds.FINGER_SPECTRAL_FREQ
    lam = np.linspace(lo, hi, thresholds.FINGER_SPECTRAL_RADIAL)
    theta = np.linspace(0, 2 * np.pi, thresholds.FINGER_SPECTRAL_ANGLES, endpoint=False)
    return lam, lam[:, None, None] * np.stack([np.cos(theta), np.sin(theta)], -1)[None]


def spectral_minutiae(template: FingerTemplate) -> np.ndarray:
    """(2, radial, angles) log-magnitude spectra (SML, SMO), each zero-mean and of unit norm; zeros for < 2."""
    xy, ang, _ = template.arrays()
    shape = (2, thresholds.FINGER_SPECTRAL_RADIAL, thresholds.FINGER_SPECTRAL_ANGLES)
    if len(ang) < 2:
        return np.zeros(shape)
    lam, w = _spectral_grid()
    xy = xy - xy.mean(0)
    phase = np.exp(-1j * (w[..., 0, None] * xy[:, 0] + w[..., 1, None] * xy[:, 1]))     # radial × angles × n
    smooth = np.exp(-(lam[:, None] ** 2) * thresholds.FINGER_SPECTRAL_SIGMA ** 2)     # Gaussian minutiae
    out = np.empty(shape)
    for k, weight in enumerate((np.ones(len(ang)), np.exp(1j * ang))):
        s = np.log1p(np.abs(phase @ weight) ** 2 * smooth)
        s -= s.mean()
        out[k] = s / (np.linalg.norm(s) + 1e-12)
    return out


def _shifts() -> range:
    return range(-thresholds.FINGER_SPECTRAL_SHIFT, thresholds.FINGER_SPECTRAL_SHIFT + 1)


def spectral_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Unprotected: the best correlation of two `spectral_minutiae` over the rotations searched (−1…1)."""
    return max(float((a * np.roll(b, s, axis=2)).sum()) / 2 for s in _shifts())


def protected_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Protected codes of one key: 1 − the smallest fraction of differing bits over the rotations searched."""
    return max(1.0 - float(np.mean(a ^ np.roll(b, s, axis=2))) for s in _shifts())


class SpectralKey:
    """The keyed, renewable transform of `spectral_minutiae` (see above): one per device secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("a spectral key needs at least 16 secret bytes")
        seed = int.from_bytes(hashlib.sha256(b"limen.finger.spectral\x00" + secret).digest(), "big")
        rng = np.random.Generator(np.random.PCG64(seed))
        self._mix = rng.standard_normal((2, thresholds.FINGER_SPECTRAL_ROWS, thresholds.FINGER_SPECTRAL_RADIAL))

    def protect_spectrum(self, spectrum: np.ndarray) -> np.ndarray:
        """(2, rows, angles) bits of a `spectral_minutiae` array."""
        centred = spectrum - spectrum.mean(axis=2, keepdims=True)
        return np.einsum("krm,kma->kra", self._mix, centred) > 0

    def protect(self, template: FingerTemplate) -> np.ndarray:
        return self.protect_spectrum(spectral_minutiae(template))

    def attacker_view(self) -> np.ndarray:
        """The mixing matrices, as an attacker who holds the device key can rebuild them (for the lab)."""
        return self._mix.copy()
