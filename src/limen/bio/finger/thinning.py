"""Stage 6: a one-pixel-wide ridge skeleton (Zhang–Suen thinning, table-driven)."""

from __future__ import annotations

import numpy as np

# neighbour order P2..P9 clockwise from north; bit i of the code is neighbour i
_OFFSETS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


def neighbour_codes(img: np.ndarray) -> np.ndarray:
    """8-bit code of each pixel's 8 neighbours (P2 = bit 0 … P9 = bit 7)."""
    p = np.pad(img.astype(np.uint8), 1)
    h, w = img.shape
    code = np.zeros((h, w), np.uint8)
    for bit, (dy, dx) in enumerate(_OFFSETS):
        code |= p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] << bit
    return code


def _tables() -> tuple[np.ndarray, np.ndarray]:
    first = np.zeros(256, bool)
    second = np.zeros(256, bool)
    for c in range(256):
        n = [(c >> i) & 1 for i in range(8)]
        b = sum(n)
        a = sum(1 for i in range(8) if n[i] == 0 and n[(i + 1) % 8] == 1)
        if not (2 <= b <= 6 and a == 1):
            continue
        p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
        first[c] = p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0
        second[c] = p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0
    return first, second


_FIRST, _SECOND = _tables()


def skeleton(binary: np.ndarray) -> np.ndarray:
    """Thin `binary` (True = ridge) to 8-connected one-pixel lines."""
    img = binary.astype(bool).copy()
    while True:
        changed = False
        for table in (_FIRST, _SECOND):
            remove = img & table[neighbour_codes(img)]
            if remove.any():
                img &= ~remove
                changed = True
        if not changed:
            return img
