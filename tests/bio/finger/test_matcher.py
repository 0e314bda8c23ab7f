"""The matcher: invariance to rigid motion, and genuine above impostor on real prints."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from limen.bio.finger.extract import extract_file
from limen.bio.finger.matcher import prepare, similarity
from limen.bio.finger.template import FingerTemplate, Minutia, MinutiaType


def _random_template(seed: int, n: int = 40) -> FingerTemplate:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(60, 340, (n, 2))
    return FingerTemplate(400, 400, 500, tuple(
        Minutia(int(x), int(y), float(a), MinutiaType.ENDING, 80)
        for (x, y), a in zip(xy, rng.uniform(0, 2 * math.pi, n), strict=True)))


def _moved(t: FingerTemplate, angle: float, shift: tuple[int, int]) -> FingerTemplate:
    c, s = math.cos(angle), math.sin(angle)
    out = []
    for m in t.minutiae:
        x, y = m.x - 200, m.y - 200
        out.append(Minutia(int(round(c * x - s * y + 200 + shift[0])), int(round(s * x + c * y + 200 + shift[1])),
                           (m.angle + angle) % (2 * math.pi), m.kind, m.quality))
    return FingerTemplate(t.width, t.height, t.dpi, tuple(out))


def test_a_rotated_and_shifted_copy_matches_far_above_another_finger() -> None:
    a = _random_template(1)
    moved = similarity(prepare(a), prepare(_moved(a, 0.4, (15, -10))))
    other = similarity(prepare(a), prepare(_random_template(2)))
    assert moved > 4 * max(other, 1e-3)


def test_too_few_minutiae_score_zero() -> None:
    one = FingerTemplate(400, 400, 500, (Minutia(5, 5, 0.0, MinutiaType.ENDING, 50),))
    assert similarity(prepare(one), prepare(_random_template(1))) == 0.0


def test_genuine_impressions_outscore_impostors_on_fvc(fvc_db1: Path) -> None:
    t = {name: prepare(extract_file(fvc_db1 / f"{name}.tif")) for name in ("101_1", "101_2", "101_3", "102_1",
                                                                            "103_1", "104_1")}
    genuine = [similarity(t["101_1"], t["101_2"]), similarity(t["101_1"], t["101_3"])]
    impostor = [similarity(t["101_1"], t[o]) for o in ("102_1", "103_1", "104_1")]
    assert min(genuine) > max(impostor)
