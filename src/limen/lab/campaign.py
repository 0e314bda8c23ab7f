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
needed.  Which cues beat each mask species is reported per cue.
"""

from __future__ import annotations

import base64
import html
import json
import math
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
from limen.pad.infrared import InfraredCue
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
    depth, ir, eyes, pulse = DepthCue(), InfraredCue(), EyeRegionCue(), PulseCue()
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
        Profile("limen-3d", "Limen 3D (stereo depth + IR)", STEREO, (depth, ir, eyes, pulse), True, "",
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
        species: tuple[Species, ...] = tuple(Species)) -> list[ProfileReport]:
    """Render `count` presentations per species once per sensor model and judge them with every profile."""
    reports = [ProfileReport(p) for p in profiles()]
    for sp in species:
        for i, presentation in enumerate(simulate.population(sp, count, seed=seed)):
            rendered: dict[str, Any] = {}
            for rep in reports:
                key = rep.profile.sensor.name
                if key not in rendered:
                    rendered[key] = simulate.render(presentation, rep.profile.sensor, seconds=4.0, fps=10.0).sample()
                rep.outcomes.append(_outcome(rep.profile, rendered[key], sp, i))
            if on_progress:
                on_progress(1)
    return reports


def _outcome(profile: Profile, sample: Any, sp: Species, index: int) -> Outcome:
    if not profile.cues:  # no liveness: everything passes, with no assurance
        return Outcome(sp.value, index, True, True, Assurance.NONE, math.inf, {}, "no_pad")
    enrol, verify, results = judge(profile, sample)
    margin = verdict_margin(verify.scores, verify.thresholds) if verify.scores and len(verify.scores) == len(
        profile.cues) else None
    says = {r.cue: r.says_attack for r in results if isinstance(r, CueScore)}
    enrol_ok = enrol.passed or not profile.enrol_checked
    return Outcome(sp.value, index, enrol_ok, verify.passed, _assurance(profile, verify), margin, says,
                   verify.detail[:120])


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
            "note": p.note,
        })
    return rows


def write_report(reports: list[ProfileReport], out: Path, count: int, seed: int) -> dict[str, str]:
    """report.html (summary table + per-profile ISO/IEC 30107-3 tables + DET curves), summary.json, scores."""
    out.mkdir(parents=True, exist_ok=True)
    table = summary(reports)
    files = {"html": str(out / "report.html"), "summary": str(out / "summary.json")}
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
            "<th>opens door alone</th><th>beaten by (share per cue)</th></tr>"]
    for sp in Species:
        n = sum(o.species == sp.value for o in rep.outcomes)
        label = "BPCER " + _pct(rep.bpcer) if sp is Species.BONA_FIDE else _pct(rep.apcer(sp.value))
        cues = ", ".join(f"{c.name} {_pct(rep.cue_detection(sp.value, c.name))}" for c in p.cues)
        body.append(f"<tr><td>{sp.value}</td><td>{n}</td><td>{label}</td><td>{_pct(rep.enrol_refusal(sp.value))}</td>"
                    f"<td>{_pct(rep.opens_alone(sp.value))}</td><td>{cues or '—'}</td></tr>")
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


def _pct(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.1f} %"


def _json(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else str(x)
