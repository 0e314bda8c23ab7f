"""Quality gates on real data (../shared/data/nuaa-dev): a subject-disjoint smoke fit and the shipped model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from limen.capture import Capture, load_image
from limen.lab import pad_train as train
from limen.lab.pad import BONA_FIDE, PadSampleRef, PadScoreRow, compute_metrics
from limen.pad import Purpose, assess, faces
from limen.pad.texture import shipped_model, texture_features
from tests.pad.helpers import nuaa_files


def features(kind: str, subjects: list[str], n: int) -> tuple[np.ndarray, list[PadSampleRef]]:
    refs = [PadSampleRef(f, BONA_FIDE if kind == "live" else kind, s) for s in subjects for f in nuaa_files(kind, s, n)]
    fams = shipped_model().families
    x = []
    kept = []
    for r in refs:
        sample = faces.locate(Capture.single(load_image(r.path)))
        if sample.faces:
            x.append(texture_features(sample.faces[0].crop, fams))
            kept.append(r)
    return np.stack(x), kept


def test_subject_disjoint_smoke_fit_separates_print_from_live() -> None:
    train_subjects, test_subjects = ["0001", "0003", "0004", "0006"], ["0005", "0009"]
    xl, _ = features("live", train_subjects, 6)
    xp, _ = features("print", train_subjects, 6)
    model = train.fit(np.vstack([xl, xp]), np.r_[np.ones(len(xl)), np.zeros(len(xp))], 0.1, shipped_model().families)
    tl, rl = features("live", test_subjects, 6)
    tp, rp = features("print", test_subjects, 6)
    scores = np.r_[model.logits(tl), model.logits(tp)]
    rows = [PadScoreRow(str(r.path), r.species, r.subject, float(s)) for r, s in zip(rl + rp, scores, strict=True)]
    assert compute_metrics(rows, threshold=0.0).eer < 0.25


def test_shipped_model_gate_on_a_slice(minifasnet_models_dir: Path) -> None:
    """Regression gate (the shipped models saw these subjects: this guards the pipeline, not generalisation)."""
    live = [f for s in ("0002", "0007") for f in nuaa_files("live", s, 8, stride=9)]
    prints = [f for s in ("0002", "0007") for f in nuaa_files("print", s, 8, stride=9)]

    def passed(f: Path) -> bool:
        return assess(Capture.single(load_image(f)), purpose=Purpose.VERIFY, models_dir=minifasnet_models_dir).passed

    bona_denied = sum(not passed(f) for f in live)
    attacks_passed = sum(passed(f) for f in prints)
    assert attacks_passed <= 1  # APCER ≤ 1/16
    assert bona_denied <= 3  # BPCER ≤ 3/16


def test_iapar_counts_only_attacks_that_pass_pad_and_match() -> None:
    from limen.lab.pad import impostor_attack_rate

    live = [PadSampleRef(f, BONA_FIDE, "0002") for f in nuaa_files("live", "0002", 2)]
    prints = [PadSampleRef(f, "print", "0002") for f in nuaa_files("print", "0002", 3)]
    # pretend PAD passed the first attack only
    rows = [PadScoreRow(str(r.path), r.species, r.subject, 1.0 if i == 0 else -1.0) for i, r in enumerate(prints)]
    report = impostor_attack_rate(rows, live + prints, references_per_subject=2)
    assert report.attacks == 3 and report.references == 1
    assert report.accepted <= 1 <= report.matched + report.not_embedded
    assert report.iapar <= report.iapar_without_pad
