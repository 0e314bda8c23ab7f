"""`limen lab finger`: the FVC protocol, its figures and a quality gate on FVC2002 DB1_B."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from limen.errors import BadRequest
from limen.lab.finger import FvcSample, LimenFinger, fnmr_at_fmr, fvc_pairs, fvc_samples, run_fvc, write_report
from tests.conftest import shared


def test_fvc_protocol_counts_280_genuine_and_45_impostor_pairs() -> None:
    samples = [FvcSample(f, i, Path(f"{f}_{i}.tif")) for f in range(101, 111) for i in range(1, 9)]
    genuine, impostor = fvc_pairs(samples)
    assert len(genuine) == 280 and len(impostor) == 45
    assert all(samples[a].finger == samples[b].finger for a, b in genuine)
    assert all(samples[a].impression == 1 == samples[b].impression for a, b in impostor)


def test_fnmr_at_fmr_takes_the_lowest_threshold_that_keeps_the_fmr() -> None:
    genuine = np.array([1.0, 2.0, 3.0, 4.0])
    impostor = np.array([0.5, 2.5])
    assert fnmr_at_fmr(genuine, impostor, 0.0) == 0.5        # threshold just above 2.5 rejects 1, 2
    assert fnmr_at_fmr(genuine, impostor, 0.4) == 0.5        # one false match of two is already too many
    assert fnmr_at_fmr(genuine, impostor, 0.5) == 0.0        # threshold 1.0: one false match, no false reject


def test_a_folder_without_fvc_names_is_refused(tmp_path: Path) -> None:
    (tmp_path / "face.jpg").write_bytes(b"x")
    with pytest.raises(BadRequest, match="no FFF_I images"):
        fvc_samples(tmp_path)


def test_a_folder_where_nothing_can_be_extracted_is_a_clear_error(tmp_path: Path) -> None:
    blank = np.full((300, 300), 128, np.uint8)
    for name in ("101_1", "101_2", "102_1", "102_2"):
        assert cv2.imwrite(str(tmp_path / f"{name}.png"), blank)
    with pytest.raises(BadRequest, match="4 of 4 images could not be extracted"):
        run_fvc(LimenFinger(), "blank", fvc_samples(tmp_path))


def test_the_report_says_its_times_are_wall_clock_at_the_load() -> None:
    from limen.lab.finger import FvcRun

    run = FvcRun("limen", "DB", np.array([3.0, 4.0]), np.array([0.5]), 0, np.array([100.0]), np.array([1.0]))
    from limen.lab.finger import _html

    page = _html([run.figures()], {"protocol": "FVC", "machine_load_1_5_15": (9.0, 8.0, 7.0),
                                   "mean_eer": {"limen": 0.0}, "note": "n"}, "det.png")
    assert "one core" not in page and "wall-clock" in page and "9.00 / 8.00 / 7.00" in page


def test_db1_quality_gate_and_report(tmp_path: Path) -> None:
    samples = fvc_samples(shared("fvc2002", "DB1_B"))
    run = run_fvc(LimenFinger(), "DB1_B", samples)
    figures = run.figures()
    assert figures["genuine_pairs"] == 280 and figures["impostor_pairs"] == 45
    assert float(figures["eer"]) < 0.05                     # development-data gate (docs/finger.md: 2.2 %)
    files = write_report([run], tmp_path, (0.0, 0.0, 0.0))
    assert "EER" in Path(files["report"]).read_text()
    assert Path(files["det"]).stat().st_size > 1000


def test_fit_score_learns_which_evidence_separates_and_reports_held_out_eers() -> None:
    pytest.importorskip("sklearn")
    from limen.bio.finger.matcher import FEATURES
    from limen.lab.finger import fit_score

    rng = np.random.default_rng(0)

    def database(shift: float) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(0.0, 1.0, (400, len(FEATURES)))
        y = (np.arange(400) < 100).astype(int)
        x[y == 1, 0] += 3.0 + shift                 # only the first feature (pairs) tells genuine from impostor
        return x, y

    fit = fit_score({"A": database(0.0), "B": database(0.5), "C": database(-0.5)})
    assert len(fit.weights) == len(FEATURES)
    assert fit.weights[0] > 5 * max(abs(w) for w in fit.weights[1:])
    assert set(fit.leave_one_out_eer) == {"A", "B", "C"}
    assert all(eer < 0.15 for eer in fit.leave_one_out_eer.values())
