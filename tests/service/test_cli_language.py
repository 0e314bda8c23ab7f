"""The CLI speaks the user's language: LIMEN_LANG, else LANGUAGE / LC_ALL / LC_MESSAGES / LANG (any zh → zh_CN),
through the same gettext catalogue as the console; --json errors keep their stable codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def limen(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("LIMEN_", "LC_", "LANG"))}
    environ.update({"LIMEN_DATA_DIR": str(data_dir), **env})
    return subprocess.run([sys.executable, "-m", "limen", *args], capture_output=True, text=True, env=environ,
                          stdin=subprocess.DEVNULL, timeout=120, check=False)


@pytest.mark.parametrize(("env", "expected"), [
    ({"LANG": "zh_CN.UTF-8"}, "没有设置告警通道"),
    ({"LANG": "en_US.UTF-8", "LIMEN_LANG": "zh_CN"}, "没有设置告警通道"),
    ({"LANG": "zh_CN.UTF-8", "LIMEN_LANG": "en"}, "no alarm channel configured"),
    ({}, "no alarm channel configured"),
])
def test_an_error_in_the_users_language(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    out = limen(tmp_path, "alerts", "test", **env)
    assert out.returncode == 1 and expected in out.stderr, out.stderr


def test_human_output_and_json_codes(tmp_path: Path) -> None:
    out = limen(tmp_path, "alerts", "list", LANG="zh_CN.UTF-8")
    assert out.returncode == 0 and "没有排队的告警" in out.stdout, out.stdout + out.stderr
    out = limen(tmp_path, "--json", "alerts", "test", LANG="zh_CN.UTF-8")
    body = json.loads(out.stdout)
    assert body["error"] == "config_error" and "告警通道" in body["reason"]


@pytest.mark.parametrize(("env", "expected"), [
    ({"LANG": "zh_CN.UTF-8"}, "password: 两次输入的密码不一致"),
    ({"LANG": "en_GB.UTF-8"}, "password: the two passwords differ"),
])
def test_error_text_for_the_cli(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str) -> None:
    from limen.cli.common import error_text
    from limen.service import i18n

    for key in ("LIMEN_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        assert error_text("password: the two passwords differ") == expected
    finally:
        i18n.set_language("en")
