"""`limen lab …`: evaluations you can rerun (other packages add their own commands to `lab_app`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from limen import thresholds
from limen.cli.capture import lab_campaign, lab_pulse
from limen.cli.common import STATE, output, progress
from limen.cli.finger import lab_finger
from limen.errors import BadRequest
from limen.lab import datasets
from limen.lab.verification import VerificationReport, score_multi_reference, score_pairs, write_outputs

lab_app = typer.Typer(help="Evaluation: verification, PAD, template protection.", no_args_is_help=True)
lab_app.command("pulse")(lab_pulse)
lab_app.command("campaign")(lab_campaign)
lab_app.command("finger")(lab_finger)


def register(app: typer.Typer) -> None:
    app.add_typer(lab_app, name="lab")


@lab_app.command("verify")
def verify(
    identity_folders: Annotated[Path | None, typer.Option(help="A set with one folder per identity.")] = None,
    pairs: Annotated[Path | None, typer.Option(help="CSV of labelled pairs: file_x,file_y,Decision.")] = None,
    threshold: Annotated[float, typer.Option(help="Distance threshold (default: Limen's door setting).")] = (
        thresholds.FACE_MATCH_DEFAULT
    ),
    references: Annotated[int, typer.Option(help="Also score K-image fused references (identity folders).")] = 0,
    out: Annotated[Path, typer.Option(help="Folder for score files, summary and DET curve.")] = Path("lab-out"),
    gates: Annotated[bool, typer.Option("--gates", help="Apply the door's quality gates (refusals count as FTA).")]
    = False,
) -> None:
    """Face verification figures: accuracy, FAR/FRR, EER, TAR@FAR, DET curve and score files."""
    if (identity_folders is None) == (pairs is None):
        raise BadRequest("--identity-folders/--pairs", "give exactly one of them")
    if identity_folders is not None:
        samples = datasets.identity_folder_samples(identity_folders)
        pair_list = datasets.all_pairs(samples)
    else:
        assert pairs is not None
        samples, pair_list = datasets.pairs_csv(pairs)
    with progress("embedding faces", len(samples)) as advance:
        embeddings = datasets.embed_samples(samples, on_progress=advance, gates=gates)
    reports = [score_pairs("pairs", pair_list, embeddings, threshold)]
    if references > 0 and identity_folders is not None:
        reports.append(score_multi_reference(f"ref{references}", samples, embeddings, references, threshold))
    files = write_outputs(reports, out, title=str(identity_folders or pairs))
    output({"reports": [r.as_dict() for r in reports], "files": files}, lambda: _print(reports, files))


def _pct(x: float | None) -> str:
    return "n/a (set too small)" if x is None else f"{100 * x:.2f} %"


def _print(reports: list[VerificationReport], files: dict[str, str]) -> None:
    for r in reports:
        m = r.metrics
        typer.echo(f"[{r.name}] {m.genuine} genuine / {m.impostor} impostor comparisons; "
                   f"failures to acquire: {len(r.fta_samples)} samples ({r.fta_pairs} comparisons)")
        typer.echo(f"  at threshold {m.threshold:.3f}: accuracy {_pct(m.accuracy)}, FAR {_pct(m.far)}, "
                   f"FRR {_pct(m.frr)}")
        typer.echo(f"  EER {_pct(m.eer)} (threshold {m.eer_threshold:.3f})")
        for target, tar in m.tar_at_far.items():
            t = m.threshold_at_far[target]
            at = "" if t is None else f" (threshold {t:.3f})"
            typer.echo(f"  TAR at FAR={target:g}: {_pct(tar)}{at}")
    for k, v in files.items():
        typer.echo(f"  {k}: {v}")
    _ = STATE
