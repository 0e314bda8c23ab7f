"""The training script's pieces: column bookkeeping, fitting, the two protocols (synthetic data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from limen.lab.pad import BONA_FIDE, PadSampleRef
from limen.pad import train
from limen.pad.texture import FAMILIES, LinearModel, texture_features
from tests.pad.helpers import fake_view


def test_columns_match_the_feature_layout() -> None:
    crop = fake_view().crop
    full = texture_features(crop)
    for fams in train.FAMILY_SETS:
        assert np.allclose(full[train.columns(fams)], texture_features(crop, fams))
    assert train.columns(tuple(FAMILIES)).size == full.size


def synthetic(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n), np.zeros(n)].astype(int)
    x = rng.normal(size=(2 * n, 5))
    x[:, 0] += 3.0 * y  # one informative feature
    refs = np.array(
        [PadSampleRef(Path(f"s{i % 4}_00_00_0{1 + (i // 2) % 2}_{i}.jpg"), BONA_FIDE if y[i] else "print", f"s{i % 4}")
         for i in range(2 * n)],
        dtype=object,
    )
    return x, y, refs


def test_fit_learns_the_informative_feature() -> None:
    x, y, _ = synthetic()
    model = train.fit(x, y, 1.0, ("distortion",))
    assert isinstance(model, LinearModel)
    assert np.argmax(np.abs(model.coef)) == 0 and model.coef[0] > 0
    assert (model.logits(x)[y == 1].mean()) > (model.logits(x)[y == 0].mean())


def test_protocols_give_out_of_fold_scores() -> None:
    x, y, refs = synthetic()
    subjects = np.array([r.subject for r in refs])
    oof = train.leave_one_subject_out(x, y, subjects, 1.0, ("distortion",))
    assert oof.shape == y.shape and oof[y == 1].mean() > oof[y == 0].mean()
    assert train.cross_session_eer(x, y, refs, 1.0, ("distortion",)) < 0.2


def test_session_is_read_from_nuaa_names() -> None:
    assert train.session_of(PadSampleRef(Path("0001_00_00_02_35.jpg"), BONA_FIDE)) == "02"
    assert train.session_of(PadSampleRef(Path("clip.mp4"), BONA_FIDE)) == ""
