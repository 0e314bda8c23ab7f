"""`assess` end to end: real NUAA presentations, and every kind of odd input gets a clear deny."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from limen.capture import Capture, Frame, load_image
from limen.decision import Assurance
from limen.pad import PadVerdict, Purpose, assess
from tests.pad.helpers import nuaa_burst, nuaa_files


def denied_for_lack_of_evidence(v: PadVerdict) -> bool:
    return (not v.passed) and v.reason == "insufficient_evidence" and bool(v.detail)


@pytest.mark.parametrize("purpose", list(Purpose))
def test_empty_capture_is_insufficient(purpose: Purpose) -> None:
    v = assess(Capture(()), purpose=purpose)
    assert denied_for_lack_of_evidence(v) and v.assurance is Assurance.NONE


@pytest.mark.parametrize(
    "rgb",
    [
        np.zeros((480, 640, 3), np.uint8),  # black: no face
        np.full((480, 640, 3), 255, np.uint8),  # blown out
        np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8),  # noise
        np.zeros((4, 4, 3), np.uint8),  # tiny
        np.zeros((100, 100), np.uint8),  # not RGB
        np.zeros((100, 100, 3), np.float32),  # wrong dtype
    ],
)
def test_frames_without_a_usable_face_are_insufficient(rgb: np.ndarray) -> None:
    v = assess(Capture((Frame(rgb=rgb),)), purpose=Purpose.VERIFY)
    assert denied_for_lack_of_evidence(v)


def test_not_a_capture_is_insufficient() -> None:
    assert denied_for_lack_of_evidence(assess("photo.jpg", purpose=Purpose.VERIFY))  # type: ignore[arg-type]


def test_without_minifasnet_nothing_passes(tmp_path: Path) -> None:
    """Texture alone is near chance on unseen data: without the deep cue a live face is not judged bona fide."""
    v = assess(nuaa_burst("live", "0001"), purpose=Purpose.VERIFY, models_dir=tmp_path / "empty")
    assert denied_for_lack_of_evidence(v)
    assert v.cues_missing["minifasnet"] == "model_not_imported" and "minifasnet" in v.detail


def test_live_burst_passes_with_medium_or_low_assurance(minifasnet_models_dir: Path) -> None:
    v = assess(nuaa_burst("live", "0001"), purpose=Purpose.VERIFY, models_dir=minifasnet_models_dir)
    assert v.passed and v.reason == "bona_fide"
    assert v.assurance in (Assurance.LOW, Assurance.MEDIUM)
    assert v.frames_usable == 4 and {"texture", "minifasnet", "fused"} <= set(v.cues_run)


def test_print_burst_is_an_attack_and_refused_at_enrolment(minifasnet_models_dir: Path) -> None:
    burst = nuaa_burst("print", "0001")
    assert assess(burst, purpose=Purpose.VERIFY, models_dir=minifasnet_models_dir).reason == "attack"
    enrol = assess(burst, purpose=Purpose.ENROL, models_dir=minifasnet_models_dir)
    assert not enrol.passed and enrol.detail.startswith("enrolment refused")


def test_one_frame_video_verifies_but_cannot_enrol(minifasnet_models_dir: Path) -> None:
    one = nuaa_burst("live", "0001", n=1)
    assert assess(one, purpose=Purpose.VERIFY, models_dir=minifasnet_models_dir).passed
    enrol = assess(one, purpose=Purpose.ENROL, models_dir=minifasnet_models_dir)
    assert denied_for_lack_of_evidence(enrol) and "needed" in enrol.detail
    assert enrol.cues_missing.get("motion") == "single_frame"


def test_frames_of_different_sizes_never_crash() -> None:
    burst = nuaa_burst("live", "0001", n=3)
    resized = Frame(rgb=np.ascontiguousarray(burst.frames[1].rgb[::2, ::2]), t=1.0)
    mixed = Capture((burst.frames[0], resized, burst.frames[2]))
    v = assess(mixed, purpose=Purpose.VERIFY)
    assert isinstance(v, PadVerdict)
    assert v.passed or v.reason in ("attack", "insufficient_evidence")


def test_burst_with_faceless_frames_uses_the_others_or_denies() -> None:
    burst = nuaa_burst("live", "0001", n=2)
    black = Frame(rgb=np.zeros_like(burst.frames[0].rgb), t=2.0)
    v = assess(Capture(burst.frames + (black,)), purpose=Purpose.VERIFY)
    assert v.unusable.get("no_face") == 1 and v.frames_usable == 2
    mostly_empty = assess(Capture((burst.frames[0], black, black, black)), purpose=Purpose.VERIFY)
    assert denied_for_lack_of_evidence(mostly_empty) and "no_face: 3" in mostly_empty.detail


def test_face_cut_by_the_image_border_is_insufficient() -> None:
    rgb = load_image(nuaa_files("live", "0001", 1)[0])
    # keep only the left part of the face: the box touches the border and is no longer square
    cut = np.ascontiguousarray(rgb[:, 300:])
    v = assess(Capture.single(cut), purpose=Purpose.VERIFY)
    assert denied_for_lack_of_evidence(v)
    assert v.unusable.get("face_at_border") == 1


@pytest.mark.parametrize(("gain", "why"), [(0.2, "too_dark"), (6.0, "too_bright"), (0.05, "no_face")])
def test_extreme_lighting_is_a_clear_deny(gain: float, why: str) -> None:
    rgb = load_image(nuaa_files("live", "0001", 1)[0])
    lit = np.clip(rgb.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    v = assess(Capture.single(lit), purpose=Purpose.VERIFY)
    assert denied_for_lack_of_evidence(v)
    assert v.unusable == {why: 1}


def test_long_video_is_subsampled() -> None:
    burst = nuaa_burst("live", "0001", n=2)
    long = Capture(tuple(Frame(rgb=burst.frames[i % 2].rgb, t=float(i)) for i in range(40)))
    from limen import thresholds

    assert assess(long, purpose=Purpose.VERIFY).frames_analysed == thresholds.PAD_MAX_FRAMES


def test_known_boxes_skip_detection_and_agree(minifasnet_models_dir: Path) -> None:
    burst = nuaa_burst("live", "0001", n=1)
    detected = assess(burst, purpose=Purpose.VERIFY, models_dir=minifasnet_models_dir)
    from limen.pad import faces

    box = faces.locate(burst).faces[0].box
    given = assess(burst, purpose=Purpose.VERIFY, boxes=[box], models_dir=minifasnet_models_dir)
    assert given.passed == detected.passed
    assert given.scores["texture"] == pytest.approx(detected.scores["texture"])


def test_a_box_outside_the_frame_is_ignored() -> None:
    from limen.bio.face.detect import Box

    burst = nuaa_burst("live", "0001", n=1)
    v = assess(burst, purpose=Purpose.VERIFY, boxes=[Box(600, 400, 900, 700)])
    assert v.frames_usable == 1  # fell back to detection


def test_importing_pad_leaves_the_sensor_cues_for_the_first_assessment() -> None:
    """Every CLI command imports `limen.pad`; building the cues loads no SciPy either (the pulse cue imports it
    only when it measures a pulse, 63a7a19)."""
    import subprocess
    import sys

    code = ("import sys, limen.pad, limen.pad.minifasnet_models; print('scipy' in sys.modules);"
            "from limen.pad.pipeline import DEFAULT_CUES; print('pulse' in [c.name for c in DEFAULT_CUES],"
            " 'scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["False", "True", "False"]


def test_given_cues_replace_the_defaults_but_minifasnet_still_joins(tmp_path: Path) -> None:
    from limen.pad.texture import TextureCue

    v = assess(nuaa_burst("live", "0001", n=3), purpose=Purpose.VERIFY, cues=(TextureCue(),), models_dir=tmp_path)
    assert v.cues_missing.get("minifasnet") == "model_not_imported" and not v.passed
    assert "motion" not in v.cues_run and "motion" not in v.cues_missing
