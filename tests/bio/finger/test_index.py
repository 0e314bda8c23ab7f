"""1:N search: the edge-key vote keeps the right finger on the shortlist."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from limen.bio.finger import matcher
from limen.bio.finger.extract import extract_file
from limen.bio.finger.index import EdgeIndex
from limen.bio.finger.template import FingerTemplate, Minutia, MinutiaType


def _synthetic(seed: int) -> matcher.PreparedTemplate:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 50))
    return matcher.prepare(FingerTemplate(400, 400, 500, tuple(
        Minutia(int(x), int(y), float(a), MinutiaType.ENDING, 60)
        for x, y, a in zip(rng.integers(20, 380, n), rng.integers(20, 380, n), rng.uniform(0, 6.28, n),
                           strict=True))))


def test_a_reference_finds_itself_among_many() -> None:
    index = EdgeIndex()
    for k in range(300):
        index.add(f"s{k}", _synthetic(k))
    assert index.search(_synthetic(123))[0].key == "s123"
    assert len(index) == 300


def test_real_probes_are_found_behind_synthetic_filler(fvc_db1: Path) -> None:
    index = EdgeIndex()
    for f in range(101, 111):
        index.add(str(f), matcher.prepare(extract_file(fvc_db1 / f"{f}_1.tif")))
    for k in range(200):
        index.add(f"s{k}", _synthetic(k))
    found = [index.search(matcher.prepare(extract_file(fvc_db1 / f"{f}_2.tif")))[0].key == str(f)
             for f in range(101, 111)]
    assert sum(found) >= 7
