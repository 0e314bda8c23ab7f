"""`limen models import PATH` and `limen models list`: model weights the lock loads from its models directory.

Weights are never shipped with Limen: the owner imports them once (checked
against pinned SHA-256 digests, converted to ONNX, written with a manifest)
into `Settings.models_dir` (`<data_dir>/models`, env `LIMEN_MODELS_DIR`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from limen.cli.common import STATE, output
from limen.cli.common import gettext as _

models_app = typer.Typer(help="Model weights: import (checked and converted) and list.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")


@models_app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="A folder (or one file) holding upstream MiniFASNet .pth weights.")],
) -> None:
    """Check MiniFASNet weights against their pinned digests, convert them to ONNX, write them with a manifest."""
    from limen.pad.minifasnet_models import import_models, status

    models_dir = STATE.settings.models_dir
    written = import_models(path, models_dir)
    missing = [r.variant.spec.source_file for r in status(models_dir) if not r.verified]
    data = {"models_dir": str(models_dir), "still_missing": missing,
            "imported": [{"model": m.model, "source": m.source_file, "source_sha256": m.source_sha256,
                          "onnx_sha256": m.onnx_sha256, "converter": m.converter} for m in written]}

    def human() -> None:
        for m in written:
            typer.echo(_("imported {model} from {source} (sha256 {digest}…) into {folder}").format(
                model=m.model, source=m.source_file, digest=m.source_sha256[:16], folder=models_dir))
        if missing:
            typer.echo(_("the MiniFASNet cue needs both models; still missing: {files}").format(
                files=", ".join(missing)))

    output(data, human)


@models_app.command("list")
def list_() -> None:
    """What is imported into the models directory and whether each file still matches its manifest."""
    from limen.cli.status import model_detail
    from limen.pad.minifasnet_models import status

    models_dir = STATE.settings.models_dir
    rows = status(models_dir)
    data = {"models_dir": str(models_dir),
            "models": [{"model": r.variant.spec.model, "source_file": r.variant.spec.source_file,
                        "imported": r.imported, "verified": r.verified, "detail": r.detail} for r in rows]}

    def human() -> None:
        typer.echo(_("models directory: {folder}").format(folder=models_dir))
        for r in rows:
            typer.echo(f"  {r.variant.spec.model:<16} {model_detail(r.detail)}")

    output(data, human)
    if any(r.imported and not r.verified for r in rows):
        raise typer.Exit(1)
