"""Depth, infrared and eye-region cues on SIMULATED captures, and every bad input the issue lists."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import numpy as np
import pytest

from limen.capture import Capture
from limen.decision import Assurance
from limen.lab import simulate
from limen.lab.simulate import Species
from limen.pad import fusion
from limen.pad.contract import CueScore, CueUnavailable, Purpose
from limen.pad.depth import DepthCue
from limen.pad.eyes import EyeRegionCue
from limen.pad.faces import FaceView, PadSample
from limen.pad.infrared import InfraredCue, SubsurfaceCue

CUES = (DepthCue(), InfraredCue(), EyeRegionCue(), SubsurfaceCue())


@cache
def sim(species: Species, index: int = 0, **changes: object) -> simulate.SimCapture:
    p = simulate.population(species, index + 1, seed=11)[index]
    return simulate.render(replace(p, **changes), simulate.STEREO, seconds=1.0, fps=8.0)  # type: ignore[arg-type]


def judged(species: Species, cue: object, **changes: object) -> object:
    return cue.score(sim(species, **changes).sample(), Purpose.VERIFY)  # type: ignore[attr-defined]


@pytest.mark.parametrize("cue", CUES, ids=lambda c: c.name)
def test_a_live_face_passes_every_sensor_cue(cue: object) -> None:
    result = judged(Species.BONA_FIDE, cue)
    assert isinstance(result, CueScore) and not result.says_attack, result


@pytest.mark.parametrize("species", [Species.FLAT_PRINT, Species.BENT_PRINT, Species.PAPER_MASK])
def test_depth_flags_flat_and_bent_paper(species: Species) -> None:
    result = judged(species, DepthCue())
    assert isinstance(result, CueScore) and result.says_attack, result


@pytest.mark.parametrize("species", [Species.PHONE, Species.TABLET, Species.FLAT_PRINT])
def test_infrared_flags_screens_dark_and_paper_bright(species: Species) -> None:
    result = judged(species, InfraredCue())
    assert isinstance(result, CueScore) and result.says_attack, result


@pytest.mark.parametrize("species", [Species.RESIN_MASK, Species.SILICONE_MASK])
def test_the_eye_holes_of_a_3d_mask_are_seen_at_enrolment(species: Species) -> None:
    result = EyeRegionCue().score(sim(species).sample(), Purpose.ENROL)
    assert isinstance(result, CueScore) and result.says_attack, result


@pytest.mark.parametrize("species", [Species.SILICONE_MASK, Species.FLAT_PRINT, Species.PAPER_MASK])
def test_sharp_dots_betray_silicone_and_paper(species: Species) -> None:
    result = judged(species, SubsurfaceCue())
    assert isinstance(result, CueScore) and result.says_attack, result


def test_a_bright_resin_mask_is_attack_or_overexposed_never_a_pass() -> None:
    for index in range(3):
        result = SubsurfaceCue().score(sim(Species.RESIN_MASK, index).sample(), Purpose.VERIFY)
        assert (isinstance(result, CueScore) and result.says_attack) or (
            isinstance(result, CueUnavailable) and "overexposed" in result.reason), result


def test_the_dots_are_judged_against_a_stricter_limit_at_enrolment() -> None:
    sample = sim(Species.BONA_FIDE).sample()
    verify, enrol = (SubsurfaceCue().score(sample, p) for p in (Purpose.VERIFY, Purpose.ENROL))
    assert isinstance(verify, CueScore) and isinstance(enrol, CueScore)
    assert verify.score == enrol.score and enrol.threshold > verify.threshold == 0.0
    eyes_verify, eyes_enrol = (EyeRegionCue().score(sample, p) for p in (Purpose.VERIFY, Purpose.ENROL))
    assert isinstance(eyes_verify, CueScore) and isinstance(eyes_enrol, CueScore)
    assert eyes_enrol.threshold > eyes_verify.threshold


def test_a_dark_or_saturated_ir_image_leaves_no_dots_to_judge() -> None:
    s = sim(Species.BONA_FIDE)
    dark = replace(s, capture=Capture(tuple(replace(f, ir=(f.ir // 8) if f.ir is not None else None)
                                            for f in s.capture.frames)))
    result = SubsurfaceCue().score(dark.sample(), Purpose.VERIFY)
    assert isinstance(result, CueUnavailable), result
    white = replace(s, capture=Capture(tuple(replace(f, ir=np.full_like(f.ir, 255) if f.ir is not None else None)
                                             for f in s.capture.frames)))
    result = SubsurfaceCue().score(white.sample(), Purpose.VERIFY)
    assert isinstance(result, CueUnavailable), result


def _without_some_depth(s: simulate.SimCapture, keep: float) -> simulate.SimCapture:
    rng = np.random.default_rng(0)
    frames = []
    for f in s.capture.frames:
        assert f.depth is not None
        d = f.depth.copy()
        d[rng.random(d.shape) > keep] = 0
        frames.append(replace(f, depth=d))
    return replace(s, capture=Capture(tuple(frames), s.capture.source, s.capture.meta))


def test_depth_full_of_holes_is_insufficient_not_a_pass() -> None:
    holed = _without_some_depth(sim(Species.BONA_FIDE), keep=0.3)
    for cue in (DepthCue(), EyeRegionCue()):
        result = cue.score(holed.sample(), Purpose.VERIFY)
        assert isinstance(result, CueUnavailable) and "hole" in result.reason, result


def test_misaligned_streams_never_pass() -> None:
    s = sim(Species.BONA_FIDE, misregister_px=35)
    for cue in (DepthCue(), EyeRegionCue()):
        result = cue.score(s.sample(), Purpose.VERIFY)
        assert isinstance(result, CueUnavailable) or result.says_attack, result


def test_a_depth_camera_that_stops_mid_burst_is_reported() -> None:
    s = sim(Species.BONA_FIDE, depth_stops_after=4)
    result = DepthCue().score(s.sample(), Purpose.VERIFY)
    assert isinstance(result, CueUnavailable) and result.reason == "depth_stream_stopped"


def test_an_ir_emitter_that_is_off_is_reported() -> None:
    s = sim(Species.BONA_FIDE, emitter_on=False)
    for cue in (InfraredCue(), SubsurfaceCue()):
        result = cue.score(s.sample(), Purpose.VERIFY)
        assert isinstance(result, CueUnavailable) and "emitter" in result.reason
    unknown = s.capture.frames
    dark = replace(s, capture=Capture(tuple(replace(f, emitter_on=None) for f in unknown)))
    result = InfraredCue().score(dark.sample(), Purpose.VERIFY)
    assert isinstance(result, CueUnavailable) and "dark" in result.reason


def test_frames_from_different_devices_are_not_judged() -> None:
    s = sim(Species.BONA_FIDE)
    frames = list(s.capture.frames)
    frames[1] = replace(frames[1], device="realsense:other")
    mixed = replace(s, capture=Capture(tuple(frames)))
    for cue in CUES:
        result = cue.score(mixed.sample(), Purpose.VERIFY)
        assert isinstance(result, CueUnavailable) and result.reason == "frames_from_different_devices"


def test_frames_without_intrinsics_are_not_judged() -> None:
    s = sim(Species.BONA_FIDE)
    bare = replace(s, capture=Capture(tuple(replace(f, geometry=None) for f in s.capture.frames)))
    result = DepthCue().score(bare.sample(), Purpose.VERIFY)
    assert isinstance(result, CueUnavailable) and result.reason == "no_intrinsics"


def test_rgb_only_frames_leave_the_sensor_cues_unavailable() -> None:
    s = sim(Species.BONA_FIDE)
    rgb_only = PadSample(tuple(FaceView(v.index, replace(v.frame, depth=None, ir=None), v.box, v.points, v.crop)
                               for v in s.sample().faces), analysed=8)
    assert all(isinstance(c.score(rgb_only, Purpose.VERIFY), CueUnavailable) for c in CUES)


def test_high_assurance_needs_a_sensor_cue_that_judged_bona_fide() -> None:
    s = sim(Species.BONA_FIDE).sample()
    texture = CueScore("texture", 1.0, 0.0)  # the RGB cue every capture has (not simulated here)
    live = [texture, *(c.score(s, Purpose.VERIFY) for c in CUES)]
    verdict = fusion.fuse(live, s, Purpose.VERIFY, required=())
    assert verdict.passed and verdict.assurance is Assurance.HIGH
    missing = [texture, CueUnavailable("depth", "depth_holes"), CueUnavailable("infrared", "ir_emitter_off")]
    verdict = fusion.fuse(missing, s, Purpose.VERIFY, required=("depth",))
    assert not verdict.passed and verdict.assurance is not Assurance.HIGH


def test_the_pipeline_runs_the_sensor_cues_on_frames_that_carry_depth_and_ir() -> None:
    from limen.pad import assess

    s = simulate.render(simulate.population(Species.BONA_FIDE, 1, seed=2)[0], seconds=4.0, fps=10.0)
    verdict = assess(s.capture, purpose=Purpose.VERIFY, boxes=list(s.boxes))
    assert {"depth", "infrared", "subsurface", "eyes", "pulse"} <= set(verdict.cues_run), verdict.cues_missing
    assert not any(verdict.scores[c] < verdict.thresholds[c]
                   for c in ("depth", "infrared", "subsurface", "eyes", "pulse"))
    off = replace(s, capture=Capture(tuple(replace(f, emitter_on=False) for f in s.capture.frames)))
    verdict = assess(off.capture, purpose=Purpose.VERIFY, boxes=list(s.boxes))
    assert verdict.cues_missing.get("infrared") == "ir_emitter_off"
    assert verdict.cues_missing.get("subsurface") == "ir_emitter_off"


def test_the_door_pipeline_refuses_a_silicone_mask_by_its_sharp_dots() -> None:
    from limen.pad import assess

    mask = simulate.population(Species.SILICONE_MASK, 2, seed=3)[1]  # one whose face is large enough at the door
    s = simulate.render(mask, simulate.STEREO, seconds=1.0, fps=8.0)
    verdict = assess(s.capture, purpose=Purpose.VERIFY, boxes=list(s.boxes))
    assert "subsurface" in verdict.cues_run and verdict.scores["subsurface"] < verdict.thresholds["subsurface"]
    assert not verdict.passed and verdict.reason == "attack"


def test_the_pipeline_refuses_a_capture_mixing_devices() -> None:
    from limen.pad import assess

    s = sim(Species.BONA_FIDE)
    frames = list(s.capture.frames)
    frames[3] = replace(frames[3], device="realsense:another")
    verdict = assess(Capture(tuple(frames)), purpose=Purpose.VERIFY, boxes=list(s.boxes))
    assert not verdict.passed and verdict.reason == fusion.INSUFFICIENT and "devices" in verdict.detail
