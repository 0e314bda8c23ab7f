"""The console in Simplified Chinese (LIMEN_LANG / --lang / the locale): human output and the error line are
translated; `--json` is an API and reads the same in every language."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from limen import thresholds
from limen.cli.common import STATE

from .test_access_cli import MAX_PIN, OWNER_PIN, limen, subprocess_limen


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thresholds, "PIN_ARGON2_MEMORY_KIB", 64)
    monkeypatch.setattr(thresholds, "PIN_ARGON2_TIME_COST", 1)


@pytest.fixture
def zh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIMEN_LANG", "zh_CN")


@pytest.fixture(autouse=True)
def no_lang_flag_left() -> None:
    STATE.lang = None


def _setup(d: Path) -> None:
    assert limen(d, "users", "add", "Olga", "--permission", "owner", new_pin=OWNER_PIN).exit_code == 0
    assert limen(d, "users", "add", "Max", "--as", "Olga", new_pin=MAX_PIN).exit_code == 0


def test_human_output_in_chinese(tmp_path: Path, zh: None) -> None:
    d = tmp_path / "data"
    first = limen(d, "users", "add", "Olga", "--permission", "owner", new_pin=OWNER_PIN)
    assert first.exit_code == 0 and "已添加 Olga" in first.stdout, first.output
    assert "已修改 Olga" in limen(d, "users", "modify", "Olga", "--name", "Olga", "--as", "Olga").stdout
    assert "没有临时码" in limen(d, "codes", "list", "--as", "Olga").stdout
    assert "已签名至第" in limen(d, "audit", "checkpoint").stdout


def test_the_lang_flag_chooses_the_language(tmp_path: Path) -> None:
    d = tmp_path / "data"
    _setup(d)
    assert "没有临时码" in limen(d, "--lang", "zh_CN", "codes", "list", "--as", "Olga").stdout
    assert limen(d, "--lang", "en", "codes", "list", "--as", "Olga").stdout.strip() == "no codes"


def test_json_is_the_same_in_both_languages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "data"
    _setup(d)
    for args in (("users", "list"), ("codes", "list", "--as", "Olga"), ("audit", "tail", "-n", "5")):
        monkeypatch.setenv("LIMEN_LANG", "en")
        english = limen(d, "--json", *args).stdout
        monkeypatch.setenv("LIMEN_LANG", "zh_CN")
        chinese = limen(d, "--json", *args).stdout
        assert english == chinese and json.loads(english) is not None, args


def test_a_pin_alone_that_needs_a_face_says_so_in_chinese(tmp_path: Path, zh: None) -> None:
    d = tmp_path / "data"
    _setup(d)
    assert limen(d, "users", "modify", "Max", "--rule", "dual", "--as", "Olga").exit_code == 0
    refused = limen(d, "unlock", "--pin", MAX_PIN)
    assert refused.exit_code == 3
    assert "已拒绝: face_first (请先刷脸，再输入密码)" in refused.stdout, refused.output


def test_the_error_line_of_the_entry_point_is_translated(tmp_path: Path) -> None:
    d = tmp_path / "data"
    args = ("codes", "revoke", "no-such-code", "--as", "Olga")
    missing = subprocess_limen(d, *args, LIMEN_LANG="zh_CN", LIMEN_ACTOR_PIN=OWNER_PIN)
    assert missing.returncode == 1 and missing.stderr.startswith("错误："), missing.stderr
    assert "此门锁上没有用户“Olga”" in missing.stderr  # the message itself, from its pattern
    same = subprocess_limen(d, *args, LIMEN_LANG="en", LIMEN_ACTOR_PIN=OWNER_PIN)
    assert same.stderr.startswith("error: "), same.stderr


def test_a_door_attempt_reads_in_chinese(zh: None) -> None:
    from limen.cli.face import describe
    from limen.decision import Decision, Outcome, Reason

    refused = Decision(Outcome.REJECT, Reason.NO_MATCH, user_name="Max", score=0.61, threshold=0.45,
                       timings={"embed": 12.0})
    assert describe(refused) == "拒绝 Max: no_match (距离 0.610，阈值 0.450) 用时 12 毫秒"


def test_tamper_status_in_chinese(tmp_path: Path, zh: None) -> None:
    shown = limen(tmp_path / "data", "tamper", "status")
    assert shown.exit_code == 0, shown.output
    assert "锁定：关闭" in shown.stdout and "防拆信号源：" in shown.stdout


def test_vault_status_in_chinese(tmp_path: Path, zh: None) -> None:
    shown = limen(tmp_path / "data", "vault", "status")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.startswith("模板库 ") and "密钥存储" in shown.stdout
