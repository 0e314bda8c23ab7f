"""`limen pad check` (judge one capture) and `limen lab pad` (ISO/IEC 30107-3 evaluation)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from limen.cli.common import output, progress

pad_app = typer.Typer(help="Presentation attack detection: is it a live face or a photo/screen?",
                      no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(pad_app, name="pad")
    try:
        from limen.cli.lab import lab_app
    except ImportError:  # the lab group is not part of this build
        return
    lab_app.command("pad")(lab_pad)


@pad_app.command("check")
def check(
    path: Annotated[Path, typer.Argument(help="An image, a video file or a folder of frames.")],
    enrol: Annotated[bool, typer.Option("--enrol", help="Use enrolment's stricter rules.")] = False,
    challenge: Annotated[str | None, typer.Option(
        help="What the person was asked to do: turn_left_right, turn_right_left, or moves like left,up,right.")] = None,
    models_dir: Annotated[Path | None, typer.Option(
        help="Imported models (MiniFASNet, required to pass); default: the settings' models_dir.")] = None,
) -> None:
    """Judge one presentation: bona fide, attack, or insufficient evidence (exit code 1 unless bona fide)."""
    from limen.capture import load_capture
    from limen.config import load_settings
    from limen.errors import BadRequest
    from limen.pad import Challenge, ChallengeSequence, Purpose, assess

    asked: Challenge | ChallengeSequence | None = None
    if challenge in {c.value for c in Challenge}:
        asked = Challenge(challenge)
    elif challenge:
        try:
            asked = ChallengeSequence.parse(challenge)
        except BadRequest:
            raise BadRequest("--challenge", f"use {', '.join(c.value for c in Challenge)} or moves such as "
                             "left,up,right") from None
    models = models_dir if models_dir is not None else load_settings().models_dir
    verdict = assess(load_capture(path), purpose=Purpose.ENROL if enrol else Purpose.VERIFY, challenge=asked,
                     models_dir=models)

    def human() -> None:
        typer.echo(f"{verdict.reason} (assurance {verdict.assurance.value}): {verdict.detail}")
        for cue, score in verdict.scores.items():
            typer.echo(f"  {cue}: score {score:.3f} (threshold {verdict.thresholds[cue]:.3f})")
        for cue, why in verdict.cues_missing.items():
            typer.echo(f"  {cue}: not run ({why})")
        typer.echo(f"  frames: {verdict.frames_usable} usable of {verdict.frames_analysed} analysed"
                   + (f" {verdict.unusable}" if verdict.unusable else ""))

    output(verdict.to_dict(), human)
    if not verdict.passed:
        raise typer.Exit(1)


def lab_pad(
    dataset: Annotated[Path, typer.Argument(help="Folder: <species>/[<subject>/]files; live/real = bona fide.")],
    labels: Annotated[Path | None, typer.Option(help="CSV path,species[,subject] instead of folder names.")] = None,
    folds: Annotated[str, typer.Option(help="'subject': retrain per left-out subject; 'none': shipped model.")] = (
        "none"
    ),
    identities: Annotated[bool, typer.Option(help="Also measure IAPAR (PAD + face matcher, subjects = ids).")] = (
        False
    ),
    out: Annotated[Path, typer.Option(help="Folder for the score file, metrics, DET curve and HTML report.")] = (
        Path("lab-out/pad")
    ),
    cache: Annotated[Path | None, typer.Option(help="Feature cache for --folds subject (.npz).")] = None,
    bursts: Annotated[bool, typer.Option(help="<species>/<presentation>/<frames>: each folder is one burst; "
                                               "report per presentation (the door's decision) and per frame.")] = False,
    models_dir: Annotated[Path | None, typer.Option(help="Imported models (MiniFASNet); without it that cue "
                                                         "is unavailable.")] = None,
    enrol: Annotated[bool, typer.Option("--enrol", help="Judge as enrolment does (stricter; ≥ 3 frames).")] = False,
) -> None:
    """PAD figures in ISO/IEC 30107-3 terms: APCER per species, BPCER, BPCER@APCER, DET, HTML report."""
    from limen import thresholds
    from limen.errors import BadRequest
    from limen.lab import pad as lab

    samples = lab.collect_samples(dataset, labels, bursts=bursts)
    frame_rows: list[lab.PadScoreRow] = []
    if folds == "subject":
        rows = lab.score_cross_validated(samples, cache)
        protocol = "leave-one-subject-out: texture model retrained without each subject (single frames)"
    elif folds == "none":
        with progress("PAD", len(samples)) as advance:
            scored = lab.score_presentations(samples, "enrol" if enrol else "verify", on_progress=advance,
                                             models_dir=models_dir, per_frame=bursts and not enrol)
        rows, frame_rows = scored.presentations, scored.frames
        purpose = "enrol" if enrol else "verify"
        protocol = (f"shipped models, limen.pad.assess(purpose={purpose}) on each presentation"
                    + (" (whole burst, as the door decides) and on each frame alone" if bursts else ""))
    else:
        raise BadRequest("--folds", "use 'subject' or 'none'")
    metrics = lab.compute_metrics(rows, threshold=0.0)
    extra: dict[str, Any] = {}
    if identities:
        with progress("IAPAR", sum(s.is_attack for s in samples)) as advance:
            extra["iapar"] = lab.impostor_attack_rate(rows, samples, on_progress=advance).as_dict()
    metrics = lab.PadMetrics(**{**metrics.__dict__, "extra": extra})
    config = {"protocol": protocol, "score": "min over cues of (score − threshold); accepted when ≥ 0",
              "PAD_TEXTURE_VERIFY": thresholds.PAD_TEXTURE_VERIFY, "PAD_FUSED_VERIFY": thresholds.PAD_FUSED_VERIFY,
              "model": _model_label(), "models_dir": str(models_dir) if models_dir else "none"}
    species = {k: v for k, v in metrics.attacks.items()}
    info = {"name": dataset.name, "path": str(dataset), "bona_fide": metrics.bona_fide, "attack species": species,
            "subjects": len({s.subject for s in samples})}
    files = lab.write_report(rows, metrics, out, config, info)
    result: dict[str, Any] = {"metrics": metrics.as_dict(), "files": files}
    frame_metrics = None
    if frame_rows:
        frame_metrics = lab.compute_metrics(frame_rows, threshold=0.0)
        frame_config = {**config, "unit": "one frame (each frame of every burst judged alone)"}
        result["per_frame"] = {"metrics": frame_metrics.as_dict(),
                               "files": lab.write_report(frame_rows, frame_metrics, out / "frames", frame_config,
                                                         info | {"frames": len(frame_rows)})}

    def human() -> None:
        if frame_metrics is not None:
            typer.echo("per presentation (the door's decision on the whole burst):")
        _print(metrics, files)
        if frame_metrics is not None:
            typer.echo("per frame (each frame judged alone):")
            _print(frame_metrics, result["per_frame"]["files"])

    output(result, human)


def _print(m: Any, files: dict[str, str]) -> None:
    def pct(x: float) -> str:
        return f"{100 * x:.2f} %"

    typer.echo(f"{m.bona_fide} bona fide, attacks {m.attacks}; no response: {m.no_response_bona_fide} bona fide, "
               f"{m.no_response_attack} attack")
    typer.echo(f"at the operating point: BPCER {pct(m.bpcer)}, APCER {pct(m.apcer_max)} "
               + " ".join(f"[{k}: {pct(v)}]" for k, v in m.apcer.items()))
    for k, v in m.bpcer_at_apcer.items():
        typer.echo(f"BPCER @ APCER = {float(k):.0%}: {pct(v)}")
    for k, v in m.apcer_at_bpcer.items():
        typer.echo(f"APCER @ BPCER = {float(k):.0%}: {pct(v)}")
    typer.echo(f"EER {pct(m.eer)}")
    if "iapar" in m.extra:
        i = m.extra["iapar"]
        typer.echo(f"IAPAR (PAD + matcher): {pct(i['iapar'])} of {i['attacks']} impostor attacks "
                   f"(matcher alone: {pct(i['iapar_without_pad'])})")
    for k, v in files.items():
        typer.echo(f"  {k}: {v}")


def _model_label() -> str:
    """The shipped models the report was made with, named by their files (never a stale literal)."""
    from limen.pad.fusion_model import MODEL_FILE as FUSION_FILE
    from limen.pad.texture import MODEL_FILE as TEXTURE_FILE

    return f"{TEXTURE_FILE.stem} + {FUSION_FILE.stem} + MiniFASNet V2/V1SE"
