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


def wall_and_cpu(ms: list[float], cpu_ms: list[float], digits: int = 3) -> dict[str, float]:
    """Median and p95 of wall and CPU (this process) times, with the machine's load: on a loaded machine the CPU
    figure is the one-core cost."""
    import os

    return {"median_ms": round(pct(ms, 50), digits), "p95_ms": round(pct(ms, 95), digits),
            "cpu_median_ms": round(pct(cpu_ms, 50), digits), "cpu_p95_ms": round(pct(cpu_ms, 95), digits),
            "n": len(ms), "load_1min": round(os.getloadavg()[0], 2)}
