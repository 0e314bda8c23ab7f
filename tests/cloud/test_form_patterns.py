"""Every form field's `pattern` compiles as browsers now compile it: a JavaScript RegExp with the `v` flag, where
an unescaped `-` at a character class's end is an error (Chromium then ignores the pattern: newcomer walk)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import limen
import limen_cloud

TEMPLATES = [Path(limen.__file__).parent / "service" / "templates", Path(limen_cloud.__file__).parent / "templates"]


def test_every_pattern_compiles_in_v_mode() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    patterns = sorted({html.unescape(p) for d in TEMPLATES for f in d.glob("*.html")
                       for p in re.findall(r'\bpattern="([^"]*)"', f.read_text(encoding="utf-8"))})
    assert "[A-Za-z0-9._\\-]+" in patterns  # the claim form's lock id
    script = ("const bad = []; for (const p of JSON.parse(process.argv[1])) { try { new RegExp(`^(?:${p})$`, 'v') }"
              " catch (e) { bad.push(p) } } console.log(JSON.stringify(bad))")
    out = subprocess.run([node, "-e", script, json.dumps(patterns)], capture_output=True, text=True, check=True,
                         timeout=30)
    assert json.loads(out.stdout) == []
