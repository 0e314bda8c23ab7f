"""Contract suite: every cue honours `PresentationAttackDetector` and never passes by default."""

from __future__ import annotations

import numpy as np
import pytest

from limen.capture import Frame
from limen.pad.contract import CueScore, CueUnavailable, PresentationAttackDetector, Purpose
from limen.pad.edges import EdgeCue
from limen.pad.faces import FaceView, PadSample
from limen.pad.motion import MotionCue
from limen.pad.photometric import FlickerCue
from limen.pad.pipeline import DEFAULT_CUES
from limen.pad.sensors import DepthCue, InfraredCue, SubsurfaceCue
from limen.pad.texture import TextureCue
from tests.pad.helpers import fake_view


class PadCueContract:
    """Subclass with `make()` returning the cue under test."""

    def make(self) -> PresentationAttackDetector:
        raise NotImplementedError

    def test_is_a_detector_with_a_name(self) -> None:
        cue = self.make()
        assert isinstance(cue, PresentationAttackDetector)
        assert cue.name and cue.name.isidentifier()

    @pytest.mark.parametrize("purpose", list(Purpose))
    def test_empty_sample_is_unavailable_not_a_pass(self, purpose: Purpose) -> None:
        result = self.make().score(PadSample((), analysed=0), purpose)
        assert isinstance(result, CueUnavailable) and result.cue == self.make().name

    def test_returns_a_cue_result(self) -> None:
        result = self.make().score(PadSample((fake_view(0), fake_view(1, seed=3)), analysed=2), Purpose.VERIFY)
        assert isinstance(result, CueScore | CueUnavailable)
        if isinstance(result, CueScore):
            assert np.isfinite(result.score) and np.isfinite(result.threshold)


class TestTextureCue(PadCueContract):
    def make(self) -> PresentationAttackDetector:
        return TextureCue()


class TestMotionCue(PadCueContract):
    def make(self) -> PresentationAttackDetector:
        return MotionCue()


class TestEdgeCue(PadCueContract):
    def make(self) -> PresentationAttackDetector:
        return EdgeCue()


class TestFlickerCue(PadCueContract):
    def make(self) -> PresentationAttackDetector:
        return FlickerCue()

    def test_one_frame_cannot_show_flicker(self) -> None:
        result = FlickerCue().score(PadSample((fake_view(),), analysed=1), Purpose.VERIFY)
        assert isinstance(result, CueUnavailable) and result.reason == "single_frame"


class TestDepthCue(PadCueContract):
    def make(self) -> PresentationAttackDetector:
        return DepthCue()

    def test_depth_of_another_size_than_the_colour_is_not_judged(self) -> None:
        v = fake_view()
        with_depth = FaceView(0, Frame(rgb=v.frame.rgb, depth=np.ones((10, 10), np.float32)), v.box, v.points, v.crop)
        result = DepthCue().score(PadSample((with_depth,), analysed=1), Purpose.VERIFY)
        assert isinstance(result, CueUnavailable) and result.reason == "depth_not_registered_to_colour"


class TestInfraredCue(PadCueContract):
    def make(self) -> PresentationAttackDetector:
        return InfraredCue()


class TestSubsurfaceCue(PadCueContract):
    def make(self) -> PresentationAttackDetector:
        return SubsurfaceCue()


def test_default_cues_cover_every_family() -> None:
    names = [c.name for c in DEFAULT_CUES]
    assert names[:2] == ["texture", "motion"]
    assert {"depth", "infrared"} <= set(names)
