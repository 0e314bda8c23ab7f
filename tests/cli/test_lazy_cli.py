"""The CLI root loads lazily: `--help` imports no heavy library, and the command table matches the modules."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("numpy", "cv2", "PIL", "onnxruntime", "onnx", "dlib", "pydantic", "fastapi", "sklearn", "scipy",
         "matplotlib", "cryptography")

HELP = f"""
import sys
from typer.testing import CliRunner
from limen.cli import app
out = CliRunner().invoke(app, ["--help"])
assert out.exit_code == 0, out.output
assert "status" in out.output and "enroll" in out.output
print(sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r})))
"""

# Every module's registrations, eagerly (in a fresh process: sub-apps are module globals), versus the lazy table.
TABLE = """
import importlib, json, pkgutil
import typer, typer.main
from typer._click import Context
from typer.core import TyperGroup
import limen.cli as cli

def tree(group):
    ctx = Context(group)
    out = {}
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        sub = sorted(cmd.list_commands(Context(cmd))) if isinstance(cmd, TyperGroup) else []
        out[name] = [cmd.get_short_help_str(limit=500), sub]
    return out

eager = typer.Typer()
for info in pkgutil.iter_modules(cli.__path__):
    module = importlib.import_module(f"limen.cli.{info.name}")
    if hasattr(module, "register"):
        module.register(eager)
lazy = typer.main.get_group(cli.app)
lazy_tree = {}
for name in lazy.list_commands(Context(lazy)):
    cmd = cli._load(name)
    sub = sorted(cmd.list_commands(Context(cmd))) if isinstance(cmd, TyperGroup) else []
    lazy_tree[name] = [cli._COMMANDS[name][0], sub]
print(json.dumps({"eager": tree(typer.main.get_group(eager)), "lazy": lazy_tree}))
"""


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_help_imports_no_heavy_library() -> None:
    assert _run(HELP) == "[]"


def test_the_lazy_table_lists_exactly_what_the_modules_register() -> None:
    trees = json.loads(_run(TABLE))
    eager, lazy = trees["eager"], trees["lazy"]
    assert sorted(lazy) == sorted(eager), "add the new command to limen.cli._COMMANDS"
    assert eager["users"][1] and eager["lab"][1], "sub-commands are compared"
    for name, (short, sub) in eager.items():
        assert lazy[name][1] == sub, f"{name}: list every module that adds to it in _COMMANDS"
        assert lazy[name][0] == short, f"{name}: the help text in _COMMANDS differs from the command's"


def test_usage_errors_are_one_line_and_exit_2() -> None:
    out = subprocess.run([sys.executable, "-m", "limen", "no-such-command"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "No such command" in out.stderr and "unexpected" not in out.stderr
