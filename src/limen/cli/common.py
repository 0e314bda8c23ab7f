"""What every CLI command shares: settings, `--json` output, one-line errors."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

if TYPE_CHECKING:
    from limen.config import Settings

console = Console(stderr=True)


@dataclass
class CliState:
    data_dir: Path | None = None
    config_file: Path | None = None
    json: bool = False
    debug: bool = False
    lang: str | None = None  # --lang: before LIMEN_LANG and the locale variables
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from limen.config import load_settings  # pydantic: loaded by the commands that need settings only

            self._settings = load_settings(self.data_dir, self.config_file)
        return self._settings


STATE = CliState()


def language() -> str:
    """The CLI's language: `--lang`, else `LIMEN_LANG` (the setting), else LANGUAGE / LC_ALL / LC_MESSAGES / LANG."""
    from limen.service.i18n import cli_language

    return cli_language(STATE.lang or os.environ.get("LIMEN_LANG"), dict(os.environ))


def gettext(message: str) -> str:
    """`message` in the CLI's language (the service's gettext catalogue; English is the source text)."""
    from limen.service.i18n import translations

    return translations(language()).gettext(message) if message else message


def error_text(text: str) -> str:
    """An error's text in the CLI's language: known messages, patterns the lock composes ("no user with id …")
    and "field: reason" errors; anything else as written.  For the one error line the CLI prints."""
    from limen.service import i18n

    i18n.set_language(language())
    return i18n.message(text)


def output(data: Any, human: str | Callable[[], None]) -> None:
    """Print `data` as JSON under `--json`, else the human rendering."""
    if STATE.json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    elif callable(human):
        human()
    else:
        typer.echo(human)


@contextmanager
def progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr (hidden under --json); yields `advance(n)`."""
    if STATE.json or total <= 1:
        yield _ignore
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            bar.advance(task, n)

        yield advance


def _ignore(n: int = 1) -> None:
    return None
