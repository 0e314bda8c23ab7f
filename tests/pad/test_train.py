"""The training script's pieces: column bookkeeping, fitting, the two protocols (synthetic data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from limen.lab import pad_train as train
from limen.lab.pad import BONA_FIDE, PadSampleRef
from limen.pad.texture import FAMILIES, WIDTHS, LinearModel, TextureModel, family_columns, texture_features
from tests.pad.helpers import fake_view


def test_columns_match_the_feature_layout() -> None:
    crop = fake_view().crop
    full = texture_features(crop)
    for fams in train.FAMILY_SETS:
        assert np.allclose(full[train.columns(fams)], texture_features(crop, fams))
    assert train.columns(tuple(FAMILIES)).size == full.size


INFORMATIVE = int(family_columns(("distortion",))[0])


def synthetic(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n), np.zeros(n)].astype(int)
    x = rng.normal(size=(2 * n, sum(WIDTHS.values())))
    x[:, INFORMATIVE] += 3.0 * y  # one informative feature (the first distortion feature)
    refs = np.array(
        [PadSampleRef(Path(f"s{i % 4}_00_00_0{1 + (i // 2) % 2}_{i}.jpg"), BONA_FIDE if y[i] else "print", f"s{i % 4}")
         for i in range(2 * n)],
        dtype=object,
    )
    return x, y, refs


def test_fit_learns_the_informative_feature() -> None:
    x, y, _ = synthetic()
    cols = train.columns(("distortion",))
    model = train.fit(x[:, cols], y, 1.0, ("distortion",))
    assert isinstance(model, LinearModel)
    assert np.argmax(np.abs(model.coef)) == 0 and model.coef[0] > 0
    assert (model.logits(x[:, cols])[y == 1].mean()) > (model.logits(x[:, cols])[y == 0].mean())


def test_ensemble_averages_its_members() -> None:
    x, y, _ = synthetic()
    members = ((("distortion",), 1.0), (("distortion", "frequency"), 0.1))
    model = train.fit_model(x, x + 0.01, y, members)
    assert isinstance(model, TextureModel) and len(model.members) == 2
    each = [m.logits(x[:, train.columns(m.families)]) for m in model.members]
    assert model.logits_all(x) == pytest.approx(np.mean(each, axis=0))


def test_protocols_give_out_of_fold_scores() -> None:
    x, y, refs = synthetic()
    subjects = np.array([r.subject for r in refs])
    members = ((("distortion",), 1.0),)
    oof = train.leave_one_subject_out(x, x, y, subjects, members)
    assert oof.shape == y.shape and oof[y == 1].mean() > oof[y == 0].mean()
    clean, other = train.generalisation_score(x, x, y, refs, members)
    assert clean < 0.2 and other < 0.2


def test_augmentation_is_reproducible_and_changes_the_frame() -> None:
    frame = fake_view().frame.rgb
    a = train.augment(frame, np.random.default_rng(0))
    b = train.augment(frame, np.random.default_rng(0))
    assert a.shape == frame.shape and np.array_equal(a, b) and not np.array_equal(a, frame)


def test_session_is_read_from_nuaa_names() -> None:
    assert train.session_of(PadSampleRef(Path("0001_00_00_02_35.jpg"), BONA_FIDE)) == "02"
    assert train.session_of(PadSampleRef(Path("clip.mp4"), BONA_FIDE)) == ""
