"""Fusion fails closed: any attack wins, missing cues lower assurance, too little evidence denies."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from limen import thresholds
from limen.decision import Assurance, Reason
from limen.errors import ConfigError
from limen.pad.contract import CueResult, CueScore, CueUnavailable, Purpose
from limen.pad.faces import PadSample
from limen.pad.fusion import fuse, insufficient
from limen.pad.fusion_model import FusionModel, Logistic
from tests.pad.helpers import fake_view


def sample(n: int, analysed: int | None = None, **unusable: int) -> PadSample:
    return PadSample(tuple(fake_view(i) for i in range(n)), analysed=analysed or n, unusable=unusable)


LIVE = CueScore("texture", 3.0, 0.5)
SPOOF = CueScore("texture", -3.0, 0.5)
MOTION_LIVE = CueScore("motion", 1.0, 0.0)
MOTION_PLANAR = CueScore("motion", -1.0, 0.0)


def test_texture_alone_passes_with_low_assurance() -> None:
    v = fuse([LIVE, CueUnavailable("motion", "single_frame")], sample(1), Purpose.VERIFY)
    assert v.passed and v.reason == "bona_fide"
    assert v.assurance is Assurance.LOW
    assert v.cues_missing == {"motion": "single_frame"}
    assert v.decision_reason is None


def test_any_reliable_cue_saying_attack_wins() -> None:
    v = fuse([LIVE, MOTION_PLANAR], sample(4), Purpose.VERIFY)
    assert not v.passed and v.reason == "attack"
    assert v.decision_reason is Reason.PAD_FAILED
    assert "motion" in v.detail


def test_two_cues_give_medium_and_sensor_cues_high() -> None:
    assert fuse([LIVE, MOTION_LIVE], sample(4), Purpose.VERIFY).assurance is Assurance.MEDIUM
    depth = CueScore("depth", 2.0, 0.0)
    assert fuse([LIVE, MOTION_LIVE, depth], sample(4), Purpose.VERIFY).assurance is Assurance.HIGH


def test_no_texture_never_passes() -> None:
    v = fuse([MOTION_LIVE, CueUnavailable("texture", "no_usable_face")], sample(4), Purpose.VERIFY)
    assert not v.passed and v.reason == "insufficient_evidence"
    assert v.assurance is Assurance.NONE
    assert v.decision_reason is Reason.INSUFFICIENT_EVIDENCE


def test_enrolment_needs_several_frames() -> None:
    few = thresholds.PAD_ENROL_MIN_FRAMES - 1
    v = fuse([LIVE], sample(few), Purpose.ENROL)
    assert not v.passed and v.reason == "insufficient_evidence"
    assert f"{thresholds.PAD_ENROL_MIN_FRAMES} needed" in v.detail
    assert fuse([LIVE], sample(thresholds.PAD_ENROL_MIN_FRAMES), Purpose.ENROL).passed


def test_enrolment_refusal_says_so() -> None:
    v = fuse([SPOOF], sample(3), Purpose.ENROL)
    assert not v.passed and v.detail.startswith("enrolment refused")


def test_mostly_unusable_frames_deny_with_the_reasons() -> None:
    v = fuse([LIVE], sample(1, analysed=4, no_face=3), Purpose.VERIFY)
    assert not v.passed and v.reason == "insufficient_evidence"
    assert "no_face: 3" in v.detail


def test_nan_score_counts_as_attack() -> None:
    v = fuse([CueScore("texture", math.nan, 0.5)], sample(1), Purpose.VERIFY)
    assert not v.passed and v.reason == "attack"


def test_insufficient_helper_and_dict_form() -> None:
    v = insufficient(Purpose.VERIFY, "no frames")
    d = v.to_dict()
    assert d["passed"] is False and d["assurance"] == "none" and d["reason"] == "insufficient_evidence"
    assert fuse([LIVE], sample(1), Purpose.VERIFY).decision_scores == {"pad_texture": 3.0}


# ------------------------------------------------------------------ learned fusion


def logistic(inputs: tuple[str, ...], coef: list[float], intercept: float = 0.0) -> Logistic:
    n = len(inputs)
    return Logistic(inputs, np.zeros(n), np.ones(n), np.asarray(coef, dtype=float), intercept)


MODEL = FusionModel(
    edges=logistic(("longest", "sides", "contrast", "segments"), [0.0, -1.0, 0.0, 0.0], 1.0),
    combinations=(logistic(("texture", "edges", "minifasnet"), [1.0, 1.0, 1.0]),
                  logistic(("texture", "edges"), [1.0, 0.5], -0.5)),
)
EDGES_OK = CueScore("edges", 1.0, thresholds.PAD_EDGE_VETO)


def test_fused_score_is_required_and_can_deny_alone() -> None:
    t = thresholds.PAD_FUSED_VERIFY
    weak = CueScore("texture", t - 0.5, -50.0)  # passes its own (veto) threshold …
    v = fuse([weak, CueScore("edges", 0.0, thresholds.PAD_EDGE_VETO)], sample(1), Purpose.VERIFY, model=MODEL)
    assert v.scores["fused"] == pytest.approx(t - 1.0)  # … but the calibrated combination does not
    assert not v.passed and v.reason == "attack" and "fused" in v.detail


def test_fusion_uses_the_combination_of_the_cues_that_ran() -> None:
    mfn = CueScore("minifasnet", 2.0, -3.0)
    with_mfn = fuse([LIVE, EDGES_OK, mfn], sample(1), Purpose.VERIFY, model=MODEL)
    without = fuse([LIVE, EDGES_OK, CueUnavailable("minifasnet", "model_not_imported")], sample(1),
                   Purpose.VERIFY, model=MODEL)
    assert with_mfn.scores["fused"] == pytest.approx(6.0)
    assert without.scores["fused"] == pytest.approx(3.0)
    assert with_mfn.passed and without.passed and without.cues_missing["minifasnet"] == "model_not_imported"


def test_no_combination_for_the_cues_that_ran_is_insufficient() -> None:
    v = fuse([LIVE], sample(1), Purpose.VERIFY, model=MODEL)  # the edges cue did not run
    assert not v.passed and v.reason == "insufficient_evidence" and "fused" in v.detail


def test_single_frame_cues_alone_stay_low_assurance() -> None:
    v = fuse([LIVE, EDGES_OK, CueScore("minifasnet", 2.0, -3.0)], sample(1), Purpose.VERIFY, model=MODEL)
    assert v.assurance is Assurance.LOW
    flicker = CueScore("flicker", 1.0, 0.0)
    assert fuse([LIVE, EDGES_OK, flicker], sample(4), Purpose.VERIFY, model=MODEL).assurance is Assurance.MEDIUM


def test_enrolment_holds_the_fused_score_to_the_stricter_threshold() -> None:
    v = fuse([LIVE, EDGES_OK], sample(3), Purpose.ENROL, model=MODEL)
    assert v.thresholds["fused"] == thresholds.PAD_FUSED_ENROL >= thresholds.PAD_FUSED_VERIFY


def test_fusion_model_round_trip_and_damage(tmp_path: Path) -> None:
    path = tmp_path / "fusion.npz"
    MODEL.save(path, trained="test")
    loaded = FusionModel.load(path)
    assert loaded.combine({"texture": 1.0, "edges": 1.0}) is not None
    assert loaded.combine({"texture": 1.0, "edges": 1.0})[0] == pytest.approx(1.0)  # type: ignore[index]
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ConfigError):
        FusionModel.load(path)


def test_shipped_fusion_loads() -> None:
    from limen.pad.fusion_model import shipped_fusion

    model = shipped_fusion()
    assert model.inputs == {"texture", "minifasnet"}
    assert model.combine({"texture": 0.0}) is None  # no combination without the deep cue
    low = model.combine({"texture": -5.0, "minifasnet": -5.0})
    high = model.combine({"texture": 5.0, "minifasnet": 5.0})
    assert low is not None and high is not None and low[0] < thresholds.PAD_FUSED_VERIFY < high[0]


# ------------------------------------------------------------------ frame-by-frame consistency of a burst

PAIR = FusionModel(edges=MODEL.edges, combinations=(logistic(("texture", "minifasnet"), [1.0, 1.0]),))


def burst_cues(texture: list[float], mfn: list[float]) -> list[CueResult]:
    from limen.pad.texture import per_frame_evidence

    t, m = np.array(texture), np.array(mfn)
    return [CueScore("texture", float(t.mean()), -50.0, {"frames": float(t.size)} | per_frame_evidence(t)),
            CueScore("minifasnet", float(m.mean()), -50.0, {"frames": float(m.size)} | per_frame_evidence(m))]


def test_robust_minimum_forgives_a_quarter_of_the_frames_rounded_down() -> None:
    from limen.pad.fusion import robust_minimum

    assert robust_minimum(np.array([3.0, 3.0, 3.0, 3.0, -5.0])) == 3.0  # the door's burst: one frame forgiven
    assert robust_minimum(np.array([3.0, -4.0, 3.0, 3.0, -5.0])) == -4.0
    assert robust_minimum(np.array([3.0, 3.0, -5.0])) == -5.0  # fewer than 4 frames: the minimum
    assert robust_minimum(np.array([2.5])) == 2.5
    assert math.isnan(robust_minimum(np.array([1.0, math.nan, 2.0, 3.0])))
    assert math.isnan(robust_minimum(np.zeros(0)))


def test_a_burst_whose_frames_disagree_is_judged_by_its_weak_frames() -> None:
    t = thresholds.PAD_FUSED_VERIFY
    good, bad = t / 2 + 2.0, t / 2 - 3.0  # per frame: fused = texture + minifasnet
    steady = fuse(burst_cues([good] * 5, [good] * 5), sample(5), Purpose.VERIFY, model=PAIR)
    assert steady.passed and steady.scores["fused"] == pytest.approx(2 * good)
    one_off = fuse(burst_cues([good] * 4 + [bad], [good] * 5), sample(5), Purpose.VERIFY, model=PAIR)
    assert one_off.passed and one_off.evidence["fused"]["frames_below"] == 1.0
    # two weak frames: the mean still passes, the burst does not (a mean would hide a flickering replay)
    two = fuse(burst_cues([good] * 3 + [bad] * 2, [good] * 5), sample(5), Purpose.VERIFY, model=PAIR)
    assert two.evidence["fused"]["mean"] >= t
    assert not two.passed and two.reason == "attack" and "fused" in two.detail


def test_without_per_frame_scores_the_fusion_combines_the_means() -> None:
    v = fuse([CueScore("texture", 1.0, -50.0), CueScore("minifasnet", 2.0, -50.0)], sample(5), Purpose.VERIFY,
             model=PAIR)
    assert v.scores["fused"] == pytest.approx(3.0) and "frames_below" not in v.evidence["fused"]


def test_shipped_fusion_is_monotone_and_weights_the_deep_cue_more() -> None:
    from limen.pad.fusion_model import shipped_fusion

    comb = shipped_fusion().combinations[0]
    w = dict(zip(comb.inputs, comb.coef / comb.scale, strict=True))
    assert w["texture"] > 0 and w["minifasnet"] > 0  # more live-looking evidence never lowers the fused score
    assert w["minifasnet"] >= 1.5 * w["texture"]  # the audit's choice: texture does not carry over as well
