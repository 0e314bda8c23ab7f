"""The shipped texture model: loads without pickle, scores finitely, refuses a damaged file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from limen.errors import ConfigError
from limen.pad import texture
from limen.pad.contract import CueScore, CueUnavailable, Purpose
from limen.pad.faces import PadSample
from tests.pad.helpers import fake_view


def test_shipped_model_is_small_and_consistent() -> None:
    assert texture.MODEL_FILE.stat().st_size < 100_000
    model = texture.shipped_model()
    assert set(model.families) <= set(texture.FAMILIES) and model.members
    for member in model.members:
        width = texture.texture_features(fake_view().crop, member.families).size
        assert member.coef.shape == (width,)


def test_model_layouts_agree() -> None:
    model = texture.shipped_model()
    crop = fake_view().crop
    full = texture.texture_features(crop)
    assert model.logits_of(texture.texture_features(crop, model.families)) == pytest.approx(model.logits_all(full))


def test_model_card_exists() -> None:
    card = texture.MODEL_DIR / "texture_v2.md"
    text = card.read_text()
    assert "nuaa-dev" in text and "APCER" in text and "cross-condition" in text


def member(families: tuple[str, ...], seed: int) -> texture.LinearModel:
    width = sum(texture.WIDTHS[f] for f in families)
    coef = np.random.default_rng(seed).normal(size=width)
    return texture.LinearModel(np.zeros(width), np.ones(width), coef, 0.25, families)


def test_save_load_round_trip(tmp_path: Path) -> None:
    m = texture.TextureModel((member(("distortion",), 1), member(("lbp", "frequency"), 2)))
    m.save(tmp_path / "m.npz", trained="today")
    back = texture.TextureModel.load(tmp_path / "m.npz")
    x = np.random.default_rng(3).normal(size=(2, sum(texture.WIDTHS.values())))
    assert back.logits_all(x) == pytest.approx(m.logits_all(x))
    assert back.families == ("lbp", "distortion", "frequency")
    assert [b.families for b in back.members] == [("distortion",), ("lbp", "frequency")]


def test_inconsistent_member_is_a_config_error(tmp_path: Path) -> None:
    bad = texture.LinearModel(np.zeros(3), np.ones(3), np.ones(3), 0.0, ("distortion",))  # 22 expected
    texture.TextureModel((bad,)).save(tmp_path / "m.npz")
    with pytest.raises(ConfigError):
        texture.TextureModel.load(tmp_path / "m.npz")


@pytest.mark.parametrize("payload", [b"", b"not a zip", b"PK\x03\x04garbage"])
def test_damaged_model_is_a_config_error(tmp_path: Path, payload: bytes) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(payload)
    with pytest.raises(ConfigError):
        texture.TextureModel.load(bad)


def test_enrolment_threshold_is_stricter() -> None:
    assert texture.threshold_for(Purpose.ENROL) >= texture.threshold_for(Purpose.VERIFY)  # a veto either way
    from limen import thresholds

    assert thresholds.PAD_FUSED_ENROL > thresholds.PAD_FUSED_VERIFY  # the fused score is where enrolment is stricter


def test_cue_averages_frames_and_reports_evidence() -> None:
    sample = PadSample((fake_view(0, seed=1), fake_view(1, seed=2)), analysed=2)
    result = texture.TextureCue().score(sample, Purpose.VERIFY)
    assert isinstance(result, CueScore)
    per_frame = texture.TextureCue().frame_scores(sample)
    assert result.score == pytest.approx(per_frame.mean())
    assert result.evidence["frames"] == 2


def test_cue_without_faces_is_unavailable() -> None:
    assert isinstance(texture.TextureCue().score(PadSample((), analysed=3), Purpose.VERIFY), CueUnavailable)


def test_non_finite_scores_never_pass() -> None:
    nan_member = texture.LinearModel(np.zeros(22), np.ones(22), np.full(22, np.nan), 0.0, ("distortion",))
    cue = texture.TextureCue(texture.TextureModel((nan_member,)))
    result = cue.score(PadSample((fake_view(),), analysed=1), Purpose.VERIFY)
    assert isinstance(result, CueUnavailable)
