"""`limen` — the command-line tool.

Each command group lives in its own module exposing `register(app)`; the
top-level commands are listed in `_COMMANDS` with the modules that build them,
and a module is imported only when one of its commands runs.  Errors print one line (`error: …`) and exit 1; a
traceback only with `--debug`.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer._click import Command, Context  # typer ≥ 0.20 carries its own click
from typer._click.exceptions import ClickException
from typer.core import TyperCommand, TyperGroup

from limen.cli.common import STATE, console, error_text, gettext
from limen.errors import LimenError

# Top-level commands in the order shown by --help: (short help, modules whose `register(app)` builds it).
# Only the modules of the command being run are imported, so `limen --help` loads no camera, image or
# numerical library.  tests/cli/test_lazy_cli.py checks this table against every module's registrations.
_COMMANDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "enrol": ("Enrol NAME from face videos or bursts of frames (liveness-checked) and/or fingerprints (--finger, "
              "--sensor); all or nothing; needs consent.", ("face",)),
    "enroll": ("Enrol NAME from face videos or bursts of frames (liveness-checked) and/or fingerprints (--finger, "
               "--sensor); all or nothing; needs consent.", ("face",)),  # the old spelling, hidden from --help
    "verify": ("1:1: is the face (--face) and/or finger (--finger, --sensor) the enrolled NAME's? A door attempt "
               "(policy, audit, door).", ("face",)),
    "identify": ("1:N: who, among the enrolled, is this face (--face) and/or finger (--finger, --sensor)? A door "
                 "attempt (policy, audit, door).", ("face",)),
    "unlock": ("Try to open the configured door through the lock's controller (same policy, audit and door path).",
               ("access",)),
    "serve": ("Start the lock service: open the printed address in a browser (/kiosk is the door screen).",
              ("serve",)),
    "status": ("Vault, lockdown, door, face rule, audit chain head and pending alarms.", ("status",)),
    "users": ("People known to the lock.", ("users", "access")),
    "credentials": ("PINs, RFID tags, face/fingerprint links of users.", ("access",)),
    "schedules": ("Week-day, year-day and holiday schedules.", ("access",)),
    "codes": ("Offline codes for guests (derived from the owner's secret).", ("access",)),
    "access": ("Lock-wide access settings: operating mode, lockdown, lockout, status.", ("access",)),
    "vault": ("Template vault: protected, sealed templates and crypto-erase.", ("vault",)),
    "audit": ("The tamper-evident audit trail: tail, verify, export.", ("audit",)),
    "alerts": ("Alarms: test the channels, list and deliver the outbox.", ("alerts",)),
    "pad": ("Presentation attack detection: is it a live face or a photo/screen?", ("pad",)),
    "capture": ("Depth and infrared cameras: list, record, inspect.", ("capture",)),
    "tamper": ("Tamper response: simulate a tamper, status, owner re-provisioning.", ("tamper",)),
    "finger": ("Fingerprint: enrol, verify, list, pair a sensor, simulate a sensor.", ("finger",)),
    "lab": ("Evaluation: verification, PAD, template protection.", ("lab", "pad", "vault")),
    "models": ("Model weights: import (checked and converted) and list.", ("models",)),
    "link": ("The cloud link: owner devices, signed commands, certificates.", ("link",)),
    "privacy": ("Privacy: a person's data as JSON, and erasure of a person (\"delete me\").", ("privacy",)),
}

_LAB_ONLY = ("matplotlib", "sklearn")  # pyproject's [lab] extra
_ALIASES = frozenset({"enroll"})  # old spellings: still run, not listed

_built = typer.Typer()  # the groups registered so far (each module once per process)
_registered: set[str] = set()


def _load(name: str) -> Command | None:
    """The real command `name`, importing and registering only the modules that build it."""
    for module in _COMMANDS[name][1]:
        if module not in _registered:
            importlib.import_module(f"limen.cli.{module}").register(_built)
            _registered.add(module)
    group = typer.main.get_group(_built)
    return group.get_command(Context(group), name)


class _LazyGroup(TyperGroup):
    """Lists the commands from `_COMMANDS`; imports a command's modules only when it is run."""

    _resolving = False

    def list_commands(self, ctx: Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name not in _COMMANDS:
            return None
        if self._resolving:
            return _load(cmd_name)
        text = _COMMANDS[cmd_name][0]
        return TyperCommand(cmd_name, help=text, short_help=text, hidden=cmd_name in _ALIASES)  # what --help lists

    def resolve_command(self, ctx: Context, args: list[str]) -> Any:
        self._resolving = True
        try:
            return super().resolve_command(ctx, args)
        finally:
            self._resolving = False


app = typer.Typer(
    name="limen",
    help="Limen: biometric door lock — face recognition, protected templates, access rules, audit.",
    cls=_LazyGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Data directory (env LIMEN_DATA_DIR).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML settings file (env LIMEN_CONFIG).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    lang: Annotated[str | None, typer.Option("--lang", help="Language of the messages: en or zh_CN (env LIMEN_LANG, "
                                             "else the locale).")] = None,
) -> None:
    STATE.data_dir, STATE.config_file, STATE.json, STATE.debug = data_dir, config, json_out, debug
    STATE.lang = lang


def _error_code(exc: BaseException) -> str:
    """`NotFound` → "not_found": the same codes the service's JSON errors use."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def _json_error(code: str, reason: str, status: int) -> None:
    """Under `--json` every error is one JSON object on stdout: {"error": code, "reason": text}."""
    sys.stdout.write(json.dumps({"error": code, "reason": reason}) + "\n")
    sys.exit(status)


def _error_label() -> str:
    return gettext("error:")


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except LimenError as exc:
        if STATE.debug:
            raise
        if STATE.json:
            _json_error(_error_code(exc), str(exc), 1)
        console.print(f"[red]{_error_label()}[/red] {escape(error_text(str(exc)))}", highlight=False,
                      soft_wrap=True)
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        console.print(gettext("aborted"))
        sys.exit(130)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in _LAB_ONLY or STATE.debug:
            raise
        console.print(f"[red]{_error_label()}[/red] "
                      + escape(gettext("this command needs {module}, part of the lab extra: {install}").format(
                          module=exc.name, install="pip install 'limen[lab]'")), highlight=False, soft_wrap=True)
        sys.exit(1)
    except ClickException as exc:  # usage errors: click's own message
        if STATE.json:
            _json_error("usage", exc.format_message(), exc.exit_code)
        exc.show()
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # anything unexpected
        if STATE.debug:
            raise
        if STATE.json:
            _json_error("unexpected", f"{type(exc).__name__}: {exc} (rerun with --debug)", 2)
        console.print(f"[red]{_error_label()}[/red] " + escape(gettext(
            "unexpected {error}: {text} (rerun with --debug)").format(error=type(exc).__name__, text=str(exc))),
                      highlight=False, soft_wrap=True)
        sys.exit(2)
    if isinstance(code, int) and code != 0:
        sys.exit(code)
