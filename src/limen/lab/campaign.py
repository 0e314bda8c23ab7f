"""The mask campaign, **simulated**: device profiles against every attack species, ISO/IEC 30107-3 report.

Reproduces the shape of four published lab tests of face terminals (an
attendance machine with two RGB cameras and no liveness; one with an
improved real-person model; a 3D door lock; a phone with depth) and Limen's
own RGB-only and 3D configurations.  The vendor devices are *stand-ins*: the
same Limen cues restricted to the sensors the device has; their real
algorithms are not known.  Presentations come from `limen.lab.simulate`;
every figure is **simulated**.

Per profile and species: enrolment (Purpose.ENROL) and verification
(Purpose.VERIFY) verdicts from the profile's cues through `fusion.fuse`.
APCER(species) = attacks passing verification; BPCER = bona fide denied;
enrolment refusal rate = enrolments refused; IAPAR = attacks that pass PAD
*and* match — the comparator is assumed to match every artefact of the
victim (worst case), so IAPAR = APCER here.  "Opens alone" applies Limen's
assurance rule: a face opens the door on its own only with HIGH assurance
(a depth or infrared cue judged bona fide); otherwise a second factor is
needed.  Which cues beat each mask species is reported per cue, with the
share of presentations that two or more cues beat (the issue asks that a mask
species be beaten by more than one cue), and BPCER per skin-tone group.

`python -m limen.lab.campaign --count N --profiles limen-3d --species bona_fide,silicone_mask`
runs a subset (larger counts for the figures at 1 %); `limen lab campaign` runs everything.
"""

from __future__ import annotations

import base64
import html
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from limen.decision import Assurance
from limen.lab import simulate
from limen.lab.pad import PadScoreRow, compute_metrics, det_png, verdict_margin, write_scores
from limen.lab.simulate import MASKS, STEREO, STRUCTURED_LIGHT, SensorModel, Species
from limen.pad import fusion
from limen.pad.contract import CueResult, CueScore, PresentationAttackDetector, Purpose
from limen.pad.depth import DepthCue
from limen.pad.eyes import EyeRegionCue
from limen.pad.infrared import InfraredCue, SubsurfaceCue
from limen.pad.pulse import PulseCue


@dataclass(frozen=True)
class Profile:
    """A device as the campaign models it: sensors, liveness cues, whether enrolment is checked."""

    key: str
    name: str
    sensor: SensorModel
    cues: tuple[PresentationAttackDetector, ...]
    enrol_checked: bool
    reported: str  # what the published test found (vendor devices) or "" for Limen
    note: str = ""
    assurance_rule: bool = False  # Limen: a face opens the door alone only with HIGH assurance


def profiles() -> tuple[Profile, ...]:
    depth, ir, eyes, pulse, dots = DepthCue(), InfraredCue(), EyeRegionCue(), PulseCue(), SubsurfaceCue()
    return (
        Profile("attendance-rgb", "Attendance machine, two RGB cameras, no liveness", STEREO, (), False,
                "enrolled a silicone mask and let it sign in", "stand-in: no PAD at all"),
        Profile("attendance-improved", "Attendance machine, improved real-person model (RGB)", STEREO, (pulse,),
                False, "refused the mask at verification", "stand-in: RGB liveness = pulse; enrolment unchecked"),
        Profile("door-3d", "3D door lock (structured light)", STRUCTURED_LIGHT, (depth, eyes), True,
                "refused to enrol the mask", "stand-in: depth relief + eye-region rim"),
        Profile("phone-depth", "Phone with depth (dot projector + flood IR)", STRUCTURED_LIGHT, (depth, ir), True,
                "refused to enrol the mask", "stand-in: depth relief + NIR reflectance"),
        Profile("limen-rgb", "Limen, RGB camera only", STEREO, (pulse,), True, "",
                "only the pulse cue runs on renders; the texture/motion cues against prints and screens are "
                "measured on real data (docs/pad.md)", assurance_rule=True),
        Profile("limen-3d", "Limen 3D (stereo depth + IR)", STEREO, (depth, ir, eyes, dots, pulse), True, "",
                "cues: depth relief, NIR reflectance, eye-hole rim, dot contrast (sub-surface scattering), pulse",
                assurance_rule=True),
    )


@dataclass(frozen=True)
class Outcome:
    """One presentation through one profile."""

    species: str
    index: int
    enrol_passed: bool
    verify_passed: bool
    assurance: Assurance
    margin: float | None
    cue_says_attack: dict[str, bool]
    reason: str
    group: str = ""  # skin-tone group of the live person ("lighter" / "darker" skin: melanin below / above 0.5)


@dataclass
class ProfileReport:
    """Every figure of one profile (rates 0–1)."""

    profile: Profile
    outcomes: list[Outcome] = field(default_factory=list)

    def rate(self, species: str, what: Callable[[Outcome], bool]) -> float:
        rows = [o for o in self.outcomes if o.species == species]
        return float(np.mean([what(o) for o in rows])) if rows else math.nan

    def apcer(self, species: str) -> float:
        return self.rate(species, lambda o: o.verify_passed)

    @property
    def bpcer(self) -> float:
        return self.rate(Species.BONA_FIDE.value, lambda o: not o.verify_passed)

    def enrol_refusal(self, species: str) -> float:
        return self.rate(species, lambda o: not o.enrol_passed)

    def opens_alone(self, species: str) -> float:
        """Share that would open the door on the face alone: Limen needs HIGH assurance; the others do not."""
        if not self.profile.assurance_rule:
            return self.apcer(species) if species != Species.BONA_FIDE.value else 1.0 - self.bpcer
        return self.rate(species, lambda o: o.verify_passed and o.assurance is Assurance.HIGH)

    def cue_detection(self, species: str, cue: str) -> float:
        return self.rate(species, lambda o: o.cue_says_attack.get(cue, False))

    def beaten_by_two(self, species: str) -> float:
        """Share of presentations that at least two cues judged an attack (at verification)."""
        return self.rate(species, lambda o: sum(o.cue_says_attack.values()) >= 2)

    def bpcer_group(self, group: str) -> float:
        rows = [o for o in self.outcomes if o.species == Species.BONA_FIDE.value and o.group == group]
        return float(np.mean([not o.verify_passed for o in rows])) if rows else math.nan

    def rows(self) -> list[PadScoreRow]:
        return [PadScoreRow(f"{o.species}#{o.index}", o.species, str(o.index), o.margin, reason=o.reason)
                for o in self.outcomes]


def judge(profile: Profile, sample: Any) -> tuple[fusion.PadVerdict, fusion.PadVerdict, list[CueResult]]:
    """(enrolment verdict, verification verdict, verification cue results) of one presentation."""
    verdicts = []
    results: list[CueResult] = []
    for purpose in (Purpose.ENROL, Purpose.VERIFY):
        results = [c.score(sample, purpose) for c in profile.cues]
        required = tuple(c.name for c in profile.cues)  # a profile's cues must all judge (fail closed)
        verdicts.append(fusion.fuse(results, sample, purpose, required))
    return verdicts[0], verdicts[1], results


def run(count: int, seed: int = 1, on_progress: Callable[[int], None] | None = None,
        species: tuple[Species, ...] = tuple(Species), keys: tuple[str, ...] | None = None) -> list[ProfileReport]:
    """Render `count` presentations per species once per sensor model and judge them with every profile
    (or the profiles named in `keys`)."""
    reports = [ProfileReport(p) for p in profiles() if keys is None or p.key in keys]
    for sp in species:
        for i, presentation in enumerate(simulate.population(sp, count, seed=seed)):
            rendered: dict[str, Any] = {}
            for rep in reports:
                key = rep.profile.sensor.name
                if key not in rendered:
                    rendered[key] = simulate.render(presentation, rep.profile.sensor, seconds=4.0, fps=10.0).sample()
                rep.outcomes.append(_outcome(rep.profile, rendered[key], sp, i, _group(presentation)))
            if on_progress:
                on_progress(1)
    return reports


def _group(p: simulate.Presentation) -> str:
    return "darker" if p.person.melanin >= 0.5 else "lighter"


def _outcome(profile: Profile, sample: Any, sp: Species, index: int, group: str = "") -> Outcome:
    if not profile.cues:  # no liveness: everything passes, with no assurance
        return Outcome(sp.value, index, True, True, Assurance.NONE, math.inf, {}, "no_pad", group)
    enrol, verify, results = judge(profile, sample)
    margin = verdict_margin(verify.scores, verify.thresholds) if verify.scores and len(verify.scores) == len(
        profile.cues) else None
    says = {r.cue: r.says_attack for r in results if isinstance(r, CueScore)}
    enrol_ok = enrol.passed or not profile.enrol_checked
    return Outcome(sp.value, index, enrol_ok, verify.passed, _assurance(profile, verify), margin, says,
                   verify.detail[:120], group)


def _assurance(profile: Profile, verdict: fusion.PadVerdict) -> Assurance:
    # Fusion's own scale counts texture as the base cue; here the base is the profile's cues.
    if not verdict.passed:
        return Assurance.NONE
    return Assurance.HIGH if set(verdict.cues_run) & fusion.SENSOR_CUES else Assurance.MEDIUM


def summary(reports: list[ProfileReport]) -> list[dict[str, Any]]:
    """The one-table summary: per profile, the four tests' questions and the error rates."""
    rows = []
    for rep in reports:
        p = rep.profile
        masks = {sp.value: rep.apcer(sp.value) for sp in MASKS}
        others = {sp.value: rep.apcer(sp.value) for sp in Species if sp not in MASKS and sp is not Species.BONA_FIDE}
        rows.append({
            "profile": p.key, "device": p.name, "reported_in_lab_test": p.reported or "—",
            "silicone_enrolment_refused": rep.enrol_refusal(Species.SILICONE_MASK.value),
            "silicone_verification_rejected": 1.0 - rep.apcer(Species.SILICONE_MASK.value),
            "apcer_masks": masks, "apcer_prints_screens": others, "bpcer": rep.bpcer,
            "bona_fide_enrolment_refused": rep.enrol_refusal(Species.BONA_FIDE.value),
            "iapar_worst_case": max([*masks.values(), *others.values()]),
            "silicone_opens_door_alone": rep.opens_alone(Species.SILICONE_MASK.value),
            "bona_fide_opens_door_alone": rep.opens_alone(Species.BONA_FIDE.value),
            "mask_cues": {sp.value: {c.name: rep.cue_detection(sp.value, c.name) for c in p.cues} for sp in MASKS},
            "masks_beaten_by_two_cues": {sp.value: rep.beaten_by_two(sp.value) for sp in MASKS},
            "bpcer_by_skin_group": {g: rep.bpcer_group(g) for g in ("lighter", "darker")},
            "per_species": {sp.value: _species_row(rep, sp) for sp in Species
                            if any(o.species == sp.value for o in rep.outcomes)},
            "note": p.note,
        })
    return rows


def _species_row(rep: ProfileReport, sp: Species) -> dict[str, Any]:
    """One species through one profile: error rate, enrolment refusal, door-alone share, per-cue detection."""
    error = rep.bpcer if sp is Species.BONA_FIDE else rep.apcer(sp.value)
    return {"presentations": sum(o.species == sp.value for o in rep.outcomes),
            "bpcer" if sp is Species.BONA_FIDE else "apcer": error,
            "enrolment_refused": rep.enrol_refusal(sp.value), "opens_door_alone": rep.opens_alone(sp.value),
            "beaten_by_two_cues": rep.beaten_by_two(sp.value),
            "cues": {c.name: rep.cue_detection(sp.value, c.name) for c in rep.profile.cues}}


def markdown(reports: list[ProfileReport], count: int, seed: int) -> str:
    """Per profile and species: APCER (BPCER for bona fide), enrolment refusal, door alone, per cue — **simulated**."""
    lines = [f"**Simulated** (`limen.lab.simulate`, {count} presentations per species, seed {seed}).", ""]
    for rep in reports:
        cues = [c.name for c in rep.profile.cues]
        lines += [f"{rep.profile.name} (`{rep.profile.key}`):", "",
                  "| species | n | APCER (verify) / BPCER | enrolment refused | opens door alone "
                  "| beaten by ≥ 2 cues |" + "".join(f" {c} says attack |" for c in cues),
                  "|---|---|---|---|---|---|" + "---|" * len(cues)]
        for sp in Species:
            row = _species_row(rep, sp)
            if not row["presentations"]:
                continue
            error = f"BPCER {_pct(rep.bpcer)}" if sp is Species.BONA_FIDE else _pct(rep.apcer(sp.value))
            lines.append(f"| {sp.value} | {row['presentations']} | {error} | {_pct(row['enrolment_refused'])} | "
                         f"{_pct(row['opens_door_alone'])} | {_pct(row['beaten_by_two_cues'])} |"
                         + "".join(f" {_pct(row['cues'][c])} |" for c in cues))
        groups = ", ".join(f"{g} skin {_pct(rep.bpcer_group(g))}" for g in ("lighter", "darker"))
        lines += ["", f"BPCER by skin-tone group: {groups}.", ""]
    return "\n".join(lines)


def write_report(reports: list[ProfileReport], out: Path, count: int, seed: int) -> dict[str, str]:
    """report.html (summary table + per-profile ISO/IEC 30107-3 tables + DET curves), summary.json, summary.md,
    scores."""
    out.mkdir(parents=True, exist_ok=True)
    table = summary(reports)
    files = {"html": str(out / "report.html"), "summary": str(out / "summary.json"),
             "markdown": str(out / "summary.md")}
    (out / "summary.md").write_text(markdown(reports, count, seed) + "\n", encoding="utf-8")
    (out / "summary.json").write_text(json.dumps({"simulated": True, "per_species": count, "seed": seed,
                                                  "profiles": table}, indent=2, default=_json))
    sections = []
    for rep in reports:
        rows = rep.rows()
        write_scores(rows, out / f"scores-{rep.profile.key}.csv")
        files[f"scores-{rep.profile.key}"] = str(out / f"scores-{rep.profile.key}.csv")
        sections.append(_section(rep, rows))
    (out / "report.html").write_text(_html(table, sections, count, seed), encoding="utf-8")
    return files


def _section(rep: ProfileReport, rows: list[PadScoreRow]) -> str:
    p = rep.profile
    body = [f"<h2>{html.escape(p.name)} <small>({p.key}; depth sensor model: "
            f"{html.escape(p.sensor.name)})</small></h2>",
            f"<p>Cues: {', '.join(c.name for c in p.cues) or 'none'}. {html.escape(p.note)}</p>",
            "<table><tr><th>species</th><th>presentations</th><th>APCER (verify)</th><th>enrolment refused</th>"
            "<th>opens door alone</th><th>beaten by ≥ 2 cues</th><th>beaten by (share per cue)</th></tr>"]
    for sp in Species:
        n = sum(o.species == sp.value for o in rep.outcomes)
        label = "BPCER " + _pct(rep.bpcer) if sp is Species.BONA_FIDE else _pct(rep.apcer(sp.value))
        cues = ", ".join(f"{c.name} {_pct(rep.cue_detection(sp.value, c.name))}" for c in p.cues)
        body.append(f"<tr><td>{sp.value}</td><td>{n}</td><td>{label}</td><td>{_pct(rep.enrol_refusal(sp.value))}</td>"
                    f"<td>{_pct(rep.opens_alone(sp.value))}</td><td>{_pct(rep.beaten_by_two(sp.value))}</td>"
                    f"<td>{cues or '—'}</td></tr>")
    body.append("</table>")
    if p.cues and any(r.score is not None for r in rows):
        try:
            m = compute_metrics(rows, 0.0)
            png = det_png(rows, f"{p.key} (SIMULATED)")
            body.append(f"<p>EER {_pct(m.eer)}; BPCER at APCER ≤ 1 %: {_pct(m.bpcer_at_apcer.get('0.01', math.nan))};"
                        f" APCER at BPCER ≤ 1 %: {_pct(m.apcer_at_bpcer.get('0.01', math.nan))}</p>")
            body.append(f"<img alt='DET {p.key}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
        except Exception as exc:  # a degenerate set (e.g. nothing scored) still gets its table
            body.append(f"<p>DET curve not drawn: {html.escape(type(exc).__name__)}</p>")
    return "\n".join(body)


def _html(table: list[dict[str, Any]], sections: list[str], count: int, seed: int) -> str:
    head = ("<tr><th>device</th><th>lab test reported</th><th>silicone mask enrolment refused</th>"
            "<th>silicone mask at verification rejected</th><th>mask APCER (paper / resin / silicone)</th>"
            "<th>print & screen APCER (max)</th><th>BPCER</th><th>silicone opens door alone</th></tr>")
    lines = []
    for r in table:
        masks = " / ".join(_pct(v) for v in r["apcer_masks"].values())
        lines.append(f"<tr><td>{html.escape(r['device'])}</td><td>{html.escape(r['reported_in_lab_test'])}</td>"
                     f"<td>{_pct(r['silicone_enrolment_refused'])}</td><td>{_pct(r['silicone_verification_rejected'])}"
                     f"</td><td>{masks}</td><td>{_pct(max(r['apcer_prints_screens'].values()))}</td>"
                     f"<td>{_pct(r['bpcer'])}</td><td>{_pct(r['silicone_opens_door_alone'])}</td></tr>")
    style = ("body{font-family:sans-serif;max-width:1100px}td,th{border:1px solid #bbb;padding:3px 6px}"
             "table{border-collapse:collapse}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Limen mask campaign (SIMULATED)</title>"
            f"<style>{style}</style></head><body><h1>Mask campaign — SIMULATED</h1>"
            f"<p><b>Every figure on this page is simulated</b> (limen.lab.simulate, {count} presentations per species,"
            f" seed {seed}); vendor devices are stand-ins built from Limen's cues. ISO/IEC 30107-3 terms: APCER per "
            f"species, BPCER, enrolment refusal, IAPAR (= APCER here: the comparator is assumed to match every "
            f"artefact).</p><table>{head}{''.join(lines)}</table>{''.join(sections)}</body></html>")


def _pct(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.1f} %"


def _json(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else str(x)


def main(argv: list[str] | None = None) -> None:
    """`python -m limen.lab.campaign`: a subset of the campaign (profiles, species) at a larger count."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--count", type=int, default=25)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profiles", default="", help="comma-separated profile keys (default: all)")
    parser.add_argument("--species", default="", help="comma-separated species (default: all)")
    parser.add_argument("--out", type=Path, default=Path("lab-out/campaign-subset"))
    args = parser.parse_args(argv)
    keys = tuple(k for k in args.profiles.split(",") if k) or None
    species = tuple(Species(s) for s in args.species.split(",") if s) or tuple(Species)
    reports = run(args.count, args.seed, species=species, keys=keys)
    write_report(reports, args.out, args.count, args.seed)
    sys.stdout.write(markdown(reports, args.count, args.seed) + "\n")


if __name__ == "__main__":
    main()
