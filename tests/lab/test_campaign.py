"""The SIMULATED mask campaign: profiles, the four tests' questions, the ISO/IEC 30107-3 report."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from limen.lab import campaign
from limen.lab.simulate import Species

SPECIES = (Species.BONA_FIDE, Species.SILICONE_MASK, Species.TABLET)


@cache
def reports() -> list[campaign.ProfileReport]:
    return campaign.run(2, seed=3, species=SPECIES)


def by_key(key: str) -> campaign.ProfileReport:
    return next(r for r in reports() if r.profile.key == key)


def test_every_profile_judges_every_presentation() -> None:
    assert [r.profile.key for r in reports()] == [p.key for p in campaign.profiles()]
    assert all(len(r.outcomes) == 2 * len(SPECIES) for r in reports())


def test_a_device_without_liveness_enrols_and_accepts_the_mask() -> None:
    rep = by_key("attendance-rgb")
    assert rep.enrol_refusal(Species.SILICONE_MASK.value) == 0.0
    assert rep.apcer(Species.SILICONE_MASK.value) == 1.0


def test_limen_3d_refuses_the_mask_and_the_screen_and_only_it_opens_alone() -> None:
    rep = by_key("limen-3d")
    assert rep.enrol_refusal(Species.SILICONE_MASK.value) == 1.0
    assert rep.apcer(Species.SILICONE_MASK.value) == 0.0
    assert rep.apcer(Species.TABLET.value) == 0.0
    assert by_key("limen-rgb").opens_alone(Species.BONA_FIDE.value) == 0.0  # RGB-only never reaches HIGH
    assert by_key("attendance-rgb").opens_alone(Species.SILICONE_MASK.value) == 1.0  # no such rule there


def test_the_report_is_labelled_simulated_and_has_det_curves(tmp_path: Path) -> None:
    files = campaign.write_report(reports(), tmp_path, 2, 3)
    page = Path(files["html"]).read_text()
    assert "SIMULATED" in page and page.count("<h2>") == len(campaign.profiles())
    summary = json.loads(Path(files["summary"]).read_text())
    assert summary["simulated"] is True
    assert {p["profile"] for p in summary["profiles"]} == {p.key for p in campaign.profiles()}
    assert (tmp_path / "scores-limen-3d.csv").exists()


@pytest.mark.parametrize("profile", [p.key for p in campaign.profiles() if p.cues])
def test_mask_verdicts_name_the_cues_that_beat_them(profile: str) -> None:
    rep = by_key(profile)
    for o in rep.outcomes:
        if o.species == Species.SILICONE_MASK.value and not o.verify_passed and o.cue_says_attack:
            assert any(o.cue_says_attack.values()) or "could not judge" in o.reason


def test_limen_3d_beats_the_silicone_mask_with_two_independent_cues() -> None:
    rep = by_key("limen-3d")
    assert {"depth", "infrared", "eyes", "subsurface", "pulse"} == {c.name for c in rep.profile.cues}
    assert rep.cue_detection(Species.SILICONE_MASK.value, "subsurface") == 1.0
    assert rep.cue_detection(Species.BONA_FIDE.value, "subsurface") == 0.0
    masks = [o for o in rep.outcomes if o.species == Species.SILICONE_MASK.value]
    assert rep.beaten_by_two(Species.SILICONE_MASK.value) == sum(
        sum(o.cue_says_attack.values()) >= 2 for o in masks) / len(masks)
    assert {o.group for o in rep.outcomes} <= {"lighter", "darker"}


def test_the_summary_shows_every_species_and_cue(tmp_path: Path) -> None:
    row = next(r for r in campaign.summary(reports()) if r["profile"] == "limen-3d")
    assert set(row["per_species"]) == {s.value for s in SPECIES}
    assert set(row["per_species"]["silicone_mask"]["cues"]) == {c.name for c in by_key("limen-3d").profile.cues}
    assert "bpcer" in row["per_species"]["bona_fide"] and "apcer" in row["per_species"]["tablet_screen"]
    text = campaign.markdown(reports(), 2, 3)
    assert text.startswith("**Simulated**") and "subsurface says attack" in text and "BPCER by skin-tone" in text
    for line in text.splitlines():  # every table row has as many cells as its header
        if line.startswith("| species"):
            width = line.count("|")
        elif line.startswith("|"):
            assert line.count("|") == width, line


def test_a_subset_runs_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    campaign.main(["--count", "1", "--seed", "4", "--profiles", "limen-3d", "--species", "bona_fide",
                   "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "limen-3d" in out and "silicone" not in out
    assert json.loads((tmp_path / "summary.json").read_text())["profiles"][0]["profile"] == "limen-3d"
