"""Quality gates on the shared face sets (the README's figures come from the same code)."""

from pathlib import Path

import pytest

from limen import thresholds
from limen.lab import datasets
from limen.lab.verification import score_multi_reference, score_pairs, write_outputs
from tests.conftest import shared


@pytest.fixture(scope="module")
def lfw() -> tuple[list[datasets.Sample], dict]:  # type: ignore[type-arg]
    samples = datasets.identity_folder_samples(shared("lfw-subset"))
    return samples, datasets.embed_samples(samples)


def test_lfw_subset_gates(lfw, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    samples, emb = lfw
    report = score_pairs("pairs", datasets.all_pairs(samples), emb, thresholds.FACE_MATCH_DEFAULT)
    m = report.metrics
    assert (m.genuine, m.impostor) == (450, 4500)
    assert report.fta_samples == []
    assert m.eer < 0.02
    assert m.far == 0.0              # the door threshold accepts no impostor pair of the set
    assert m.tar_at_far[1e-3] is not None and m.tar_at_far[1e-3] > 0.95
    files = write_outputs([report], tmp_path, "lfw")
    lines = Path(files["scores-pairs"]).read_text().splitlines()
    assert len(lines) == 1 + 4950 and Path(files["det"]).stat().st_size > 1000


def test_multi_sample_references_win_back_frr(lfw) -> None:  # type: ignore[no-untyped-def]
    samples, emb = lfw
    single = score_pairs("pairs", datasets.all_pairs(samples), emb, thresholds.FACE_MATCH_DEFAULT).metrics
    multi = score_multi_reference("ref3", samples, emb, 3, thresholds.FACE_MATCH_DEFAULT).metrics
    assert multi.far == 0.0
    assert multi.frr < single.frr / 2


def test_pairs_web_gates() -> None:
    samples, pairs = datasets.pairs_csv(shared("pairs-web", "pairs.csv"))
    report = score_pairs("pairs", pairs, datasets.embed_samples(samples), thresholds.FACE_MATCH_DEFAULT)
    assert report.metrics.genuine + report.metrics.impostor + report.fta_pairs == 300
    assert report.metrics.far == 0.0 and report.metrics.eer < 0.03 and report.metrics.accuracy > 0.9


def test_pairs_csv_rejects_bad_labels(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text("file_x,file_y,Decision\na.jpg,b.jpg,Maybe\n")
    with pytest.raises(Exception, match="Yes or No"):
        datasets.pairs_csv(csv)


def test_nuaa_live_impostors_stay_out_at_the_door_threshold() -> None:
    """The population on which dlib separates people least well sets the door threshold."""
    samples = datasets.identity_folder_samples(shared("nuaa-dev", "live"))[::4]
    report = score_pairs("pairs", datasets.all_pairs(samples), datasets.embed_samples(samples),
                         thresholds.FACE_MATCH_DEFAULT)
    m = report.metrics
    assert m.impostor > 20_000
    assert m.far <= 1e-3                               # at 0.49 this set gave FAR 15 %
    assert m.threshold_at_far[1e-3] is not None and m.threshold_at_far[1e-3] >= thresholds.FACE_MATCH_FMR_1E4 - 0.03
