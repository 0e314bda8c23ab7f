import numpy as np
import pytest

from limen.lab.metrics import det_curve, equal_error_rate, threshold_at_far, verification_metrics


def test_perfect_separation() -> None:
    g, i = np.array([0.1, 0.2, 0.3]), np.array([0.7, 0.8, 0.9])
    m = verification_metrics(g, i, threshold=0.5)
    assert (m.accuracy, m.far, m.frr) == (1.0, 0.0, 0.0)
    assert m.eer == 0.0 and 0.3 <= m.eer_threshold <= 0.7


def test_far_frr_counts_at_threshold() -> None:
    g = np.array([0.1, 0.2, 0.6, 0.7])          # two genuine above 0.5 -> FRR 0.5
    i = np.array([0.4, 0.8, 0.9, 1.0, 1.1])     # one impostor at/below 0.5 -> FAR 0.2
    m = verification_metrics(g, i, threshold=0.5)
    assert m.frr == pytest.approx(0.5) and m.far == pytest.approx(0.2)
    assert m.accuracy == pytest.approx((2 + 4) / 9)


def test_eer_of_overlapping_gaussians_matches_theory() -> None:
    rng = np.random.default_rng(1)
    g, i = rng.normal(0.0, 1.0, 20000), rng.normal(2.0, 1.0, 20000)
    eer, t = equal_error_rate(g, i)
    assert eer == pytest.approx(0.1587, abs=0.01)   # Φ(-1)
    assert t == pytest.approx(1.0, abs=0.05)


def test_threshold_at_far_respects_target_and_set_size() -> None:
    i = np.arange(1000) / 1000.0
    t = threshold_at_far(i, 1e-2)
    assert t is not None and np.mean(i <= t) <= 1e-2
    assert threshold_at_far(i, 1e-4) is None  # 1,000 impostors cannot show FAR 1e-4


def test_det_curve_is_monotone() -> None:
    rng = np.random.default_rng(2)
    _, far, frr = det_curve(rng.random(100), rng.random(100) + 0.5)
    assert np.all(np.diff(far) >= 0) and np.all(np.diff(frr) <= 0)
