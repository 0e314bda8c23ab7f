"""`limen status`, `limen serve`'s start-up lines, `limen link …` and `limen models …` in Simplified Chinese;
their `--json` reads the same in every language."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from limen import thresholds
from limen.cli.common import STATE

from .test_access_cli import OWNER_PIN, limen


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thresholds, "PIN_ARGON2_MEMORY_KIB", 64)
    monkeypatch.setattr(thresholds, "PIN_ARGON2_TIME_COST", 1)


@pytest.fixture(autouse=True)
def no_lang_flag_left() -> None:
    STATE.lang = None


def _both(d: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[str, str]:
    """The output of `limen *args` in English, then in Chinese."""
    out = []
    for lang in ("en", "zh_CN"):
        monkeypatch.setenv("LIMEN_LANG", lang)
        result = limen(d, *args)
        assert result.exit_code == 0, result.output
        out.append(result.stdout)
    return out[0], out[1]


def test_status_in_chinese(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "data"
    assert limen(d, "users", "add", "Olga", "--permission", "owner", new_pin=OWNER_PIN).exit_code == 0
    english, chinese = _both(d, monkeypatch, "status", "--verify")
    assert "records, head" in english and "chain verifies" in english, english
    for line in ("设备", "模板库", "未配置防拆来源", "人脸均被拒绝", "未导入", "条记录，链头", "审计链校验通过",
                 "备份", "1 个用户，模式"):
        assert line in chinese, (line, chinese)
    assert "records" not in chinese and "not imported" not in chinese, chinese
    assert len(english.splitlines()) == len(chinese.splitlines())
    english, chinese = _both(d, monkeypatch, "--json", "status")
    assert english == chinese and json.loads(english)["device_id"], chinese


class _NoServer:
    """Stands in for uvicorn's server: `limen serve` prints its start-up lines, then returns at once."""

    def __init__(self, config: object) -> None:
        self.config = config

    def run(self) -> None:
        return None


def test_serve_start_up_lines_in_chinese(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from limen.cli import serve

    monkeypatch.setattr(serve.uvicorn, "Server", _NoServer)
    d = tmp_path / "data"
    english, chinese = _both(d, monkeypatch, "serve", "--host", "0.0.0.0", "--port", "8099", "--no-link")  # noqa: S104
    assert "Limen lock service on http://0.0.0.0:8099" in english and "one-time setup link" in english, english
    for line in ("Limen 门锁服务运行于 http://0.0.0.0:8099（门口屏幕：http://0.0.0.0:8099/kiosk",
                 "人脸活体检测模型未导入", "未配置防拆来源", "allowed_hosts 中列出", "尚无主人账户"):
        assert line in chinese, (line, chinese)
    assert "Limen lock service" not in chinese and "No owner account" not in chinese, chinese
    assert len(english.splitlines()) == len(chinese.splitlines())


def test_link_in_chinese(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    d = tmp_path / "data"
    assert limen(d, "users", "add", "Olga", "--permission", "owner", new_pin=OWNER_PIN).exit_code == 0
    said = []
    for lang, device in (("en", "olga-phone"), ("zh_CN", "olga-tablet")):
        monkeypatch.setenv("LIMEN_LANG", lang)
        pub = base64.b64encode(X25519PrivateKey.generate().public_key().public_bytes_raw()).decode()
        said.append(limen(d, "link", "backup-key", device, "--public-key", pub, "--as", "Olga").stdout.strip())
    assert said == ["backups are now also encrypted to olga-phone", "备份今后也加密给 olga-tablet"]
    english, chinese = _both(d, monkeypatch, "link", "backups")
    assert (english.strip(), chinese.strip()) == ("no backups", "没有备份")
    assert _both(d, monkeypatch, "link", "devices")[1].strip() == "没有已配对的设备"
    made = _both(d, monkeypatch, "link", "backup")
    assert "bytes, encrypted" in made[0] and "字节，已加密" in made[1], made
    english, chinese = _both(d, monkeypatch, "link", "backups")
    assert english.count("not uploaded") == 2 and chinese.count("未上传") == 2, chinese
    assert "uploaded" not in chinese
    english, chinese = _both(d, monkeypatch, "link", "backup-templates", "off", "--as", "Olga")
    assert "不含生物特征数据" in chinese and "no biometric data" in english
    english, chinese = _both(d, monkeypatch, "--json", "link", "backups")
    assert english == chinese and len(json.loads(english)) == 2


def test_models_in_chinese(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "data"
    monkeypatch.delenv("LIMEN_MODELS_DIR", raising=False)
    english, chinese = _both(d, monkeypatch, "models", "list")
    assert english.splitlines()[0] == f"models directory: {d / 'models'}"
    assert chinese.splitlines()[0] == f"模型目录：{d / 'models'}"
    assert [line.split()[-1] for line in chinese.splitlines()[1:]] == ["未导入", "未导入"], chinese
    english, chinese = _both(d, monkeypatch, "--json", "models", "list")
    assert english == chinese and json.loads(english)["models_dir"] == str(d / "models")


def test_importing_a_model_says_so_in_chinese(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from .test_models_cli import weights

    d = tmp_path / "data"
    monkeypatch.delenv("LIMEN_MODELS_DIR", raising=False)
    monkeypatch.setenv("LIMEN_LANG", "zh_CN")
    one = limen(d, "models", "import", str(weights() / "2.7_80x80_MiniFASNetV2.pth"))
    assert one.exit_code == 0, one.output
    assert "已从 2.7_80x80_MiniFASNetV2.pth 导入 MiniFASNetV2" in one.stdout, one.stdout
    assert "仍缺少：4_0_0_80x80_MiniFASNetV1SE.pth" in one.stdout, one.stdout
    listed = limen(d, "models", "list")
    assert [line.split()[-1] for line in listed.stdout.splitlines()[1:]] == ["已校验", "未导入"], listed.stdout
