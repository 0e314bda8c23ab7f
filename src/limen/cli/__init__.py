"""`limen` — the command-line tool.

Each command group lives in its own module exposing `register(app)`; the groups
are listed in `_GROUPS`.  Errors print one line (`error: …`) and exit 1; a
traceback only with `--debug`.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from limen.cli.common import STATE, console
from limen.errors import LimenError

app = typer.Typer(
    name="limen",
    help="Limen: biometric door lock — face recognition, protected templates, access rules, audit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Command groups, in the order shown by --help.
_GROUPS = ("face", "users", "access", "vault", "audit", "alerts", "pad", "capture", "tamper", "lab", "models",
           "serve", "status")


@app.callback()
def _root(
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Data directory (env LIMEN_DATA_DIR).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML settings file (env LIMEN_CONFIG).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    STATE.data_dir, STATE.config_file, STATE.json, STATE.debug = data_dir, config, json_out, debug


def _register_groups() -> None:
    for name in _GROUPS:
        try:
            module = importlib.import_module(f"limen.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"limen.cli.{name}":
                continue
            raise
        module.register(app)


_register_groups()


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except LimenError as exc:
        if STATE.debug:
            raise
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors and anything unexpected
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        if STATE.debug:
            raise
        console.print(f"[red]error:[/red] unexpected {type(exc).__name__}: {escape(str(exc))} (rerun with --debug)",
                      highlight=False, soft_wrap=True)
        sys.exit(2)
    if isinstance(code, int) and code != 0:
        sys.exit(code)
