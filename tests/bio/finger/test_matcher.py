"""The matcher: invariance to rigid motion, and genuine above impostor on real prints."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from limen import thresholds
from limen.bio.finger.extract import extract_file
from limen.bio.finger.matcher import (
    FEATURES,
    PreparedTemplate,
    _agreeing_edges,
    _inside,
    _overlap,
    features,
    field_agreement,
    minutiae_score_on_field_scale,
    prepare,
    similarity,
)
from limen.bio.finger.template import BlockField, FingerTemplate, Minutia, MinutiaType


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


def test_features_of_a_moved_copy_pair_every_minutia() -> None:
    a = _random_template(3)
    f = dict(zip(FEATURES, features(prepare(a), prepare(_moved(a, -0.3, (20, 5)))), strict=True))
    n = len(a.minutiae)
    assert f["pairs"] >= 0.9 * n
    assert f["aligned pairs"] >= 0.9 * n
    assert f["pairs / √(overlap_p·overlap_c)"] > 0.85


def test_a_partial_copy_pairs_only_inside_the_overlap() -> None:
    a = _random_template(4, n=50)
    half = FingerTemplate(a.width, a.height, a.dpi, tuple(m for m in a.minutiae if m.x < 200))
    f = dict(zip(FEATURES, features(prepare(a), prepare(_moved(half, 0.2, (-10, 10)))), strict=True))
    assert f["pairs"] >= 0.9 * len(half.minutiae)
    # the overlap fraction counts only the probe minutiae inside the partial print: close to 1, not ½
    assert f["pairs / √(overlap_p·overlap_c)"] > 0.8
    assert f["pairs / √(n_p·n_c)"] < 0.8


def test_unrelated_templates_pair_few_minutiae_and_score_low() -> None:
    a, b = prepare(_random_template(5)), prepare(_random_template(6))
    f = dict(zip(FEATURES, features(a, b), strict=True))
    assert f["pairs"] < 10
    assert 0.0 < similarity(a, b) < similarity(a, prepare(_moved(_random_template(5), 1.0, (0, 0))))


def test_inside_counts_points_in_a_grown_convex_polygon() -> None:
    square = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
    points = np.array([[5.0, 5.0], [12.0, 5.0], [16.0, 5.0], [-1.0, -1.0]])
    assert _inside(points, square, 0.0) == 1
    assert _inside(points, square, 3.0) == 3
    assert _inside(points, square[::-1], 3.0) == 3            # either winding


def _agreeing_by_brute_force(p: PreparedTemplate, c: PreparedTemplate) -> dict[tuple[int, int, int, int], float]:
    """Every (i, j, a, b) whose edges agree, by comparing every probe edge with every candidate edge."""
    limit = math.cos(thresholds.FINGER_MATCH_EDGE_ANGLE)
    out = {}
    for i, a in zip(*np.nonzero(np.isfinite(p.dist)), strict=True):
        tol = max(thresholds.FINGER_MATCH_EDGE_DIST_PX, thresholds.FINGER_MATCH_EDGE_DIST_REL * float(p.dist[i, a]))
        for j, b in zip(*np.nonzero(np.isfinite(c.dist)), strict=True):
            gap = abs(float(p.dist[i, a]) - float(c.dist[j, b]))
            ca = math.cos(float(p.alpha[i, a]) - float(c.alpha[j, b]))
            cb = math.cos(float(p.beta[i, a]) - float(c.beta[j, b]))
            if gap <= tol and ca >= limit and cb >= limit:
                out[(int(i), int(j), int(a), int(b))] = max(gap / tol, (1 - min(ca, cb)) / (1 - limit))
    return out


def test_the_edge_join_finds_exactly_the_agreeing_edges_of_a_brute_force_comparison() -> None:
    a = _random_template(7, n=30)
    for other in (_moved(a, 0.5, (12, -7)), _random_template(8, n=30)):
        p, c = prepare(a), prepare(other)
        ii, jj, aa, bb, err = _agreeing_edges(p, c)
        found = {(int(i), int(j), int(x), int(y)): float(e) for i, j, x, y, e in zip(ii, jj, aa, bb, err, strict=True)}
        expected = _agreeing_by_brute_force(p, c)
        # float32 tables: an edge within 1e-4 of a tolerance may fall either side
        assert {k for k, v in expected.items() if v < 1 - 1e-4} <= set(found) <= set(expected) | {
            k for k in found if found[k] > 1 - 1e-3}
        assert all(abs(found[k] - expected[k]) < 1e-3 for k in set(found) & set(expected))
        assert len(found) > 0
        assert list(ii * c.size + jj) == sorted(ii * c.size + jj)       # sorted by pair: the growth relies on it


def test_a_moved_copy_is_root_aligned_and_another_finger_is_not() -> None:
    a = _random_template(9, n=35)
    moved = dict(zip(FEATURES, features(prepare(a), prepare(_moved(a, 0.7, (-25, 18)))), strict=True))
    other = dict(zip(FEATURES, features(prepare(a), prepare(_random_template(10, n=35))), strict=True))
    assert moved["root-aligned minutiae"] >= 30
    assert other["root-aligned minutiae"] <= 8
    assert moved["tightly aligned pairs / √(overlap_p·overlap_c), re-aligned"] > 0.85
    assert other["tightly aligned pairs / √(overlap_p·overlap_c), re-aligned"] < 0.4


def test_overlap_by_moved_half_planes_counts_as_the_moved_hulls() -> None:
    p, c = prepare(_random_template(11, n=30)), prepare(_random_template(12, n=25))
    for angle, shift in ((0.0, (0.0, 0.0)), (0.6, (40.0, -30.0)), (-1.2, (-90.0, 15.0))):
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        move = np.array(shift)
        margin = thresholds.FINGER_MATCH_OVERLAP_MARGIN_PX
        assert _overlap(p, c, rot, move) == (_inside(p.xy, c.hull @ rot.T + move, margin),
                                             _inside(c.xy @ rot.T + move, p.hull, margin))


def _field(theta: float, rows: int = 20, cols: int = 20, freq: int = 110) -> BlockField:
    code = int(round(theta % math.pi * 256 / math.pi)) % 256
    cells = rows * cols
    return BlockField(16, rows, cols, bytes([code]) * cells, bytes([200]) * cells, bytes([freq]) * cells)


def _with_field(t: FingerTemplate, field: BlockField | None) -> PreparedTemplate:
    return prepare(FingerTemplate(t.width, t.height, t.dpi, t.minutiae, field))


def test_field_agreement_follows_the_ridge_flow_once_aligned() -> None:
    t = _random_template(5)
    probe = _with_field(t, _field(0.3))
    same, crossing = _with_field(t, _field(0.3)), _with_field(t, _field(0.3 + math.pi / 2))
    identity, still = np.eye(2), np.zeros(2)
    flow, frequency = field_agreement(probe, same, identity, still)
    assert flow > 0.99 and frequency == 1.0
    assert field_agreement(probe, crossing, identity, still)[0] < -0.99
    # a candidate turned by 0.5 rad: its field is 0.5 rad behind until the motion turns it back
    turned = _with_field(t, _field(0.3 - 0.5))
    rot = np.array([[math.cos(0.5), -math.sin(0.5)], [math.sin(0.5), math.cos(0.5)]])
    assert field_agreement(probe, turned, rot, still)[0] > 0.99
    assert field_agreement(probe, turned, identity, still)[0] < 0.6


def test_field_agreement_counts_ridge_frequency_and_needs_an_overlap() -> None:
    t = _random_template(6)
    probe = _with_field(t, _field(0.0, freq=100))
    assert field_agreement(probe, _with_field(t, _field(0.0, freq=140)), np.eye(2), np.zeros(2))[1] == 0.0
    assert field_agreement(probe, _with_field(t, _field(0.0, freq=105)), np.eye(2), np.zeros(2))[1] == 1.0
    assert field_agreement(probe, _with_field(t, _field(0.0)), np.eye(2), np.array([900.0, 0.0])) == (0.0, 0.0)


def test_an_older_reference_without_field_is_scored_by_the_minutiae_model_on_the_same_scale() -> None:
    t = _random_template(7)
    old, new = _with_field(t, None), _with_field(t, _field(0.2))
    assert field_agreement(old, new, np.eye(2), np.zeros(2)) == (0.0, 0.0)
    evidence = features(new, old)
    weights = thresholds.FINGER_MATCH_MINUTIAE_WEIGHTS
    z = float(np.dot(evidence[:len(weights)], weights)) + thresholds.FINGER_MATCH_MINUTIAE_BIAS
    assert similarity(new, old) == minutiae_score_on_field_scale(float(np.logaddexp(0.0, z))) > 0.0
    assert similarity(new, old) != similarity(new, _with_field(t, _field(0.2)))


def test_the_minutiae_scale_map_keeps_each_fmr_point_and_order() -> None:
    points = thresholds.FINGER_MATCH_MINUTIAE_FMR_POINTS
    targets = (thresholds.FINGER_MATCH_FMR_1E2, thresholds.FINGER_MATCH_FMR_1E3, thresholds.FINGER_MATCH_FMR_1E4)
    for old, new in zip(points, targets, strict=True):
        assert minutiae_score_on_field_scale(old) == pytest.approx(new)
    grid = np.linspace(0.0, 10.0, 101)
    mapped = [minutiae_score_on_field_scale(float(v)) for v in grid]
    assert mapped[0] == 0.0 and all(b > a for a, b in zip(mapped, mapped[1:], strict=False))


def test_real_genuine_prints_agree_in_ridge_flow(fvc_db1: Path) -> None:
    a, b = (prepare(extract_file(fvc_db1 / f"101_{k}.tif")) for k in (1, 2))
    f = dict(zip(FEATURES, features(a, b), strict=True))
    assert f["ridge-flow agreement over the aligned overlap"] > 0.8        # FVC2002 B: genuine mean 0.96, impostor 0.51
    assert f["share of the aligned overlap agreeing in ridge frequency"] > 0.5


def test_a_copy_turned_past_the_rotation_limit_is_not_aligned() -> None:
    a = _random_template(13)
    within = dict(zip(FEATURES, features(prepare(a), prepare(_moved(a, 1.2, (10, -5)))), strict=True))
    past = dict(zip(FEATURES, features(prepare(a), prepare(_moved(a, math.pi - 0.3, (10, -5)))), strict=True))
    assert math.pi - 0.3 > thresholds.FINGER_MATCH_MAX_ROTATION
    assert within["pairs"] >= 0.9 * len(a.minutiae) and within["root-aligned minutiae"] >= 0.9 * len(a.minutiae)
    assert past["pairs"] <= 4 and past["root-aligned minutiae"] <= 8       # as another finger's


def test_the_pairing_kept_is_the_heavy_one_whose_alignment_follows_the_ridge_flow() -> None:
    # a candidate holding two pieces of the probe under two motions: the bigger piece turned 0.8 rad against
    # the candidate's ridge flow, the smaller one in line with it
    a = _random_template(16, n=44)
    left = FingerTemplate(a.width, a.height, a.dpi, tuple(m for m in a.minutiae if m.x < 185))
    right = FingerTemplate(a.width, a.height, a.dpi, tuple(m for m in a.minutiae if m.x >= 185))
    pieces = left.minutiae + _moved(right, 0.8, (450, 0)).minutiae
    assert len(left.minutiae) + 8 <= len(right.minutiae)
    candidate = FingerTemplate(1000, 400, 500, pieces)
    probe = _with_field(a, _field(0.3))
    with_flow = dict(zip(FEATURES, features(probe, _with_field(candidate, _field(0.3, rows=25, cols=63))),
                         strict=True))
    without = dict(zip(FEATURES, features(_with_field(a, None), _with_field(candidate, None)), strict=True))
    assert without["pairs"] >= 0.9 * len(right.minutiae)            # no field: the heaviest pairing, as before
    assert 0.9 * len(left.minutiae) <= with_flow["pairs"] <= len(left.minutiae)
    assert with_flow["ridge-flow agreement over the aligned overlap"] > 0.99
