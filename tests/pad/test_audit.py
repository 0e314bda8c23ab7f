"""The robustness audit: shifts change the image and nothing else, and selection uses held-out proxies only."""

from __future__ import annotations

import numpy as np
import pytest

from limen.pad.audit import CANDIDATES, SHIFTS, choose, cue_shift


@pytest.mark.parametrize("name", sorted(SHIFTS))
def test_each_shift_keeps_the_frame_format_and_changes_it(name: str) -> None:
    rng = np.random.default_rng(1)
    rgb = np.clip(rng.normal(128, 40, (120, 160, 3)), 0, 255).astype(np.uint8)
    out = SHIFTS[name](rgb)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert float(np.abs(out.astype(int) - rgb.astype(int)).mean()) > 1.0


def test_combinations_are_monotone_in_both_cues() -> None:
    lo = {"texture": np.array([-2.0]), "minifasnet": np.array([-1.0])}
    for name, cand in CANDIDATES.items():
        if name.startswith("minifasnet +"):
            base = cand(lo, {}, np.zeros(0))[0]
            assert cand({"texture": lo["texture"] + 1, "minifasnet": lo["minifasnet"]}, {}, np.zeros(0))[0] > base
            assert cand({"texture": lo["texture"], "minifasnet": lo["minifasnet"] + 1}, {}, np.zeros(0))[0] > base


def _res(eers: dict[str, float]) -> dict[str, object]:
    return {k: {"eer": v} for k, v in eers.items()}


def test_selection_is_by_the_worst_held_out_proxy_not_the_species_folds() -> None:
    report = {
        "LFW+web → NUAA": {"clean": _res({"minifasnet alone": 0.10, "fusion_v1": 0.05}),
                           "jpeg_q30": _res({"minifasnet alone": 0.12, "fusion_v1": 0.30})},
        "NUAA → LFW+web": {"clean": _res({"minifasnet alone": 0.08, "fusion_v1": 0.02})},
        # in-distribution-like species folds favour the fusion; they must not decide
        "leave print_matte out": {"clean": _res({"minifasnet alone": 0.50, "fusion_v1": 0.01})},
    }
    best, summary = choose(report)  # type: ignore[arg-type]
    assert best == "minifasnet alone"
    assert summary["fusion_v1"][0] == pytest.approx(0.30)


def test_cue_shift_names_the_cue_a_shift_breaks_at_the_clean_threshold() -> None:
    rng = np.random.default_rng(3)
    clean = rng.normal(3.0, 1.0, 400)
    table = cue_shift({"steady": {"clean": clean, "dim": clean + rng.normal(0, 0.05, 400)},
                       "fragile": {"clean": clean, "dim": clean - 2.0}})
    assert table["steady"]["clean"]["refused_at_clean_bpcer_point"] == pytest.approx(0.02, abs=0.005)
    assert table["steady"]["dim"]["refused_at_clean_bpcer_point"] < 0.05
    assert table["fragile"]["dim"]["median_change"] == pytest.approx(-2.0)
    assert table["fragile"]["dim"]["refused_at_clean_bpcer_point"] > 0.2  # held to the clean point, not re-tuned
