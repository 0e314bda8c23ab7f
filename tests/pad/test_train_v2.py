"""texture_v2 training: the cross-condition folds really hold out what they claim (synthetic items)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from limen.lab import pad_train_v2 as train_v2
from limen.lab.pad import BONA_FIDE
from limen.lab.pad_train_v2 import REAL_PRINT, Item
from limen.lab.recapture import SPECIES


def fake_items() -> list[Item]:
    out = []
    for group in ("lfw-a", "lfw-b", "web", "nuaa-0001", "nuaa-0002"):
        for session in ("01", "02"):
            name = f"0001_00_00_{session}_1.jpg" if group.startswith("nuaa") else f"{group}_{session}.jpg"
            kinds = [BONA_FIDE, *(s.value for s in SPECIES)] + ([REAL_PRINT] if group.startswith("nuaa") else [])
            out += [Item(Path(kind) / group / name, kind, group) for kind in kinds]
    return out


def test_folds_hold_out_what_they_name() -> None:
    items = fake_items()
    ds = np.array([i.dataset for i in items])
    sp = np.array([i.species for i in items])
    folds = train_v2.folds(items)
    assert len(folds) == 2 + 2 * len(SPECIES) + 2
    for fold in folds:
        assert not np.any(fold.train & fold.test)
        tested = set(sp[fold.test]) - {BONA_FIDE}
        if fold.name.startswith("train LFW"):
            assert not np.any(fold.train & (ds == "nuaa")) and tested == {REAL_PRINT}
        elif fold.name.startswith("train NUAA"):
            assert set(ds[fold.train]) == {"nuaa"} and "nuaa" not in set(ds[fold.test])
        elif fold.name.startswith("leave"):
            left_out = fold.name.split()[1]
            assert tested == {left_out} and left_out not in set(sp[fold.train])
            groups = {i.group for i, t in zip(items, fold.test, strict=True) if t}
            assert not groups & {i.group for i, t in zip(items, fold.train, strict=True) if t}
        else:
            assert tested == {REAL_PRINT}


def test_sessions_are_read_from_nuaa_names_only() -> None:
    assert Item(Path("live/nuaa-0001/0001_00_00_02_7.jpg"), BONA_FIDE, "nuaa-0001").session == "02"
    assert Item(Path("live/lfw-a/x_0001.jpg"), BONA_FIDE, "lfw-a").session == ""


def test_fitted_logistic_orders_the_classes() -> None:
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(50), np.zeros(50)].astype(int)
    x = np.column_stack([rng.normal(size=100) + 3 * y, rng.normal(size=100)])
    model = train_v2.fit_logistic(x, y, ("texture", "minifasnet"))
    logits = model.logits(x)
    assert logits[y == 1].mean() > logits[y == 0].mean() and model.coef[0] > abs(model.coef[1])
