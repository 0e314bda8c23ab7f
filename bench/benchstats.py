"""The one percentile every benchmark reports (linear interpolation, as numpy's default)."""

from __future__ import annotations


def pct(values: list[float], q: float) -> float:
    """The q-th percentile of `values` (0–100); NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)
