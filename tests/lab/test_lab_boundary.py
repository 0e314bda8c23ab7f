"""The lab stays out of the lock: only `limen.lab` imports the `[lab]` extra, and only the CLI's lab commands import it.

A static check over src/limen (every import, also inside functions): scikit-learn or matplotlib imported by any
module outside `limen/lab`, or `limen.lab` imported outside `limen/lab` and `limen/cli`, fails here.  Training
recipes (`lab/pad_train*.py`) and the PAD robustness audit (`lab/pad_audit.py`) live in the lab; what the lock needs
at run time from them (the trained model files in `pad/models/`) stays in the lock's package.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "limen"
LAB_EXTRA = ("sklearn", "matplotlib")


def imports() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        module = path.relative_to(SRC).with_suffix("").as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found += [(module, node.lineno, a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found += [(module, node.lineno, node.module)]
                found += [(module, node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


def test_only_the_lab_imports_the_lab_extra() -> None:
    stray = sorted({f"src/limen/{m}.py:{line} imports {name}" for m, line, name in imports()
                    if name.split(".")[0] in LAB_EXTRA and not m.startswith("lab/")})
    assert not stray, "the lock's code imports the [lab] extra:\n" + "\n".join(stray)


def test_only_the_cli_s_lab_commands_import_the_lab() -> None:
    stray = sorted({f"src/limen/{m}.py:{line} imports {name}" for m, line, name in imports()
                    if (name == "limen.lab" or name.startswith("limen.lab."))
                    and not m.startswith(("lab/", "cli/"))})
    assert not stray, "lock code imports limen.lab:\n" + "\n".join(stray)


def test_the_scan_sees_the_lab_s_own_imports() -> None:
    seen = {(m, name) for m, _, name in imports()}
    assert ("lab/pad_train", "sklearn.linear_model") in seen  # the check is not blind (a lazy import inside a function)
    assert not (SRC / "pad" / "train.py").exists() and not (SRC / "pad" / "train_v2.py").exists()
