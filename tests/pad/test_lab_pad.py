"""ISO/IEC 30107-3 metrics, score files and reports (limen.lab.pad)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from limen.errors import BadRequest
from limen.lab import pad as lab
from limen.lab.pad import BONA_FIDE, PadScoreRow


def rows(bona: list[float | None], **attacks: list[float | None]) -> list[PadScoreRow]:
    out = [PadScoreRow(f"b{i}", BONA_FIDE, "s1", s) for i, s in enumerate(bona)]
    for species, scores in attacks.items():
        out += [PadScoreRow(f"{species}{i}", species, "s2", s) for i, s in enumerate(scores)]
    return out


def test_apcer_per_species_max_and_bpcer() -> None:
    r = rows([1.0, 2.0, 3.0, -1.0], print=[-2.0, -1.5, 0.5, -3.0], screen=[0.1, 0.2, -1.0, -1.0])
    m = lab.compute_metrics(r, threshold=0.0)
    assert m.apcer == {"print": 0.25, "screen": 0.5}
    assert m.apcer_max == 0.5
    assert m.bpcer == 0.25
    assert m.attacks == {"print": 4, "screen": 4}


def test_operating_points() -> None:
    bona = list(np.linspace(0.0, 10.0, 100))
    attack = list(np.linspace(-10.0, 0.5, 100))
    m = lab.compute_metrics(rows(bona, print=attack), threshold=0.0)
    t1 = m.threshold_at_apcer["0.01"]
    assert lab.apcer({"print": np.array(attack)}, t1)["print"] <= 0.01
    assert m.bpcer_at_apcer["0.01"] == lab.bpcer(np.array(bona), t1)
    assert m.bpcer_at_apcer["0.05"] <= m.bpcer_at_apcer["0.01"]
    assert lab.bpcer(np.array(bona), m.threshold_at_bpcer["0.01"]) <= 0.01
    assert 0.0 <= m.eer <= 0.1


def test_no_response_denies_both_ways() -> None:
    m = lab.compute_metrics(rows([1.0, None], print=[None, -1.0]), threshold=0.0)
    assert m.no_response_bona_fide == 1 and m.no_response_attack == 1
    assert m.bpcer == 0.5 and m.apcer_max == 0.0


def test_metrics_need_both_classes() -> None:
    with pytest.raises(BadRequest):
        lab.compute_metrics(rows([1.0]), threshold=0.0)


def test_verdict_margin_is_the_weakest_cue() -> None:
    assert lab.verdict_margin({"texture": 2.0, "motion": 0.5}, {"texture": 1.0, "motion": 0.0}) == 0.5


def test_score_file_round_trip_and_report(tmp_path: Path) -> None:
    r = rows([1.0, 2.0, None], print=[-1.0, 0.5], screen=[-2.0])
    lab.write_scores(r, tmp_path / "s.csv")
    assert lab.read_scores(tmp_path / "s.csv") == r
    m = lab.compute_metrics(r, threshold=0.0)
    files = lab.write_report(r, m, tmp_path / "out", {"model": "x"}, {"name": "toy"})
    assert Path(files["det"]).read_bytes().startswith(b"\x89PNG")
    report = Path(files["report"]).read_text()
    assert "APCER [screen]" in report and "data:image/png;base64," in report
    assert '"apcer_max"' in Path(files["metrics"]).read_text()


def test_collect_samples_from_folders(tmp_path: Path) -> None:
    for rel in ("live/s1/a.jpg", "print/s1/b.jpg", "replay/c.png", "print/s2/notes.txt", "live/s3/burst/0.jpg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    got = {(p.path.name, p.species, p.subject) for p in lab.collect_samples(tmp_path)}
    assert got == {("a.jpg", BONA_FIDE, "s1"), ("b.jpg", "print", "s1"), ("c.png", "replay", ""),
                   ("burst", BONA_FIDE, "s3")}


def test_collect_samples_from_csv(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("path,species,subject\nx.jpg,real,7\ny.jpg,screen,7\n")
    got = lab.collect_samples(tmp_path, tmp_path / "labels.csv")
    assert [(s.species, s.subject) for s in got] == [(BONA_FIDE, "7"), ("screen", "7")]
    (tmp_path / "bad.csv").write_text("path,species\n,print\n")
    with pytest.raises(BadRequest):
        lab.collect_samples(tmp_path, tmp_path / "bad.csv")


def test_empty_dataset_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BadRequest):
        lab.collect_samples(tmp_path)


def test_det_points_are_monotonic() -> None:
    a, b = lab.det_points(rows([1.0, 2.0, 3.0], print=[0.0, 1.5, -1.0]))
    assert np.all(np.diff(a) <= 0) and np.all(np.diff(b) >= 0)
    assert not math.isnan(a.sum() + b.sum())


def test_collect_bursts_makes_each_folder_one_presentation(tmp_path: Path) -> None:
    for rel in ("live/p1/0.jpg", "live/p1/1.jpg", "screen_phone/p2/0.jpg", "screen_phone/p2/1.jpg", "print/x.jpg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    got = {(p.path.name, p.species) for p in lab.collect_samples(tmp_path, bursts=True)}
    assert got == {("p1", BONA_FIDE), ("p2", "screen_phone"), ("x.jpg", "print")}
    # without --bursts the same folders are subjects and each frame a sample
    assert len(lab.collect_samples(tmp_path)) == 5
