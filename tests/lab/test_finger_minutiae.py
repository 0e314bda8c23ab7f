"""`limen.lab.finger_minutiae`: the minutiae-only refit sees the templates as a reference without a block field
does, and its operating points let exactly the impostor counts of the full model's through."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from limen.bio.finger.template import BlockField, FingerTemplate, Minutia, MinutiaType
from limen.lab.finger import FvcSample
from limen.lab.finger_minutiae import FMR_COUNTS, fmr_points, minutiae_evidence


def _template(seed: int) -> FingerTemplate:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(60, 340, (30, 2))
    cells = 20 * 20
    field = BlockField(16, 20, 20, bytes([40]) * cells, bytes([200]) * cells, bytes([110]) * cells)
    return FingerTemplate(400, 400, 500, tuple(Minutia(int(x), int(y), float(a), MinutiaType.ENDING, 80)
                                               for (x, y), a in zip(xy, rng.uniform(0, 2 * math.pi, 30), strict=True)),
                          field)


def test_the_evidence_is_the_fieldless_one() -> None:
    samples = [FvcSample(f, i, Path(f"{f}_{i}.tif")) for f in (1, 2) for i in (1, 2)]
    found = {0: _template(1), 1: _template(1), 2: _template(2), 3: _template(3)}
    x, y, fvc = minutiae_evidence(samples, found)
    assert x.shape[0] == 6 and list(y) == [1, 0, 0, 0, 0, 1]
    assert list(fvc) == [True, True, False, False, False, True]     # impostors: first impressions only
    assert np.all(x[:, 15:] == 0)                                     # no ridge-flow or frequency evidence
    with_field, _, _ = minutiae_evidence(samples, found, field=True)
    assert with_field[0, 15] > 0.9                                    # the same pairs with their fields kept


def test_each_point_lets_its_impostor_count_through() -> None:
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(-6, 2, 11_520), rng.normal(4, 2, 1_120)])
    labels = np.concatenate([np.zeros(11_520, int), np.ones(1_120, int)])
    points, fnmr = fmr_points(z, labels)
    impostor = np.logaddexp(0.0, z[labels == 0])
    ranked = np.sort(impostor)[::-1]
    for point, n in zip(points, FMR_COUNTS, strict=True):
        assert np.sum(impostor >= point) <= n and point <= ranked[n - 1] + 0.001
    assert np.sum(impostor >= points[0]) < FMR_COUNTS[0]              # this draw has ties there: fewer, never more
    assert list(points) == sorted(points) and all(round(p, 3) == p for p in points)
    genuine = np.logaddexp(0.0, z[labels == 1])
    assert fnmr == pytest.approx(tuple(float(np.mean(genuine < p)) for p in points))
