"""Fusion fails closed: any attack wins, missing cues lower assurance, too little evidence denies."""

from __future__ import annotations

import math

from limen import thresholds
from limen.decision import Assurance, Reason
from limen.pad.contract import CueScore, CueUnavailable, Purpose
from limen.pad.faces import PadSample
from limen.pad.fusion import fuse, insufficient
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
