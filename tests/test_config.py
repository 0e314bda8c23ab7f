from pathlib import Path

import pytest

from limen.config import KeyStoreKind, load_settings
from limen.errors import ConfigError


def test_defaults_are_embedded(data_dir: Path) -> None:
    s = load_settings(data_dir)
    assert s.db_path == data_dir / "limen.db"
    assert s.keystore is KeyStoreKind.SOFTWARE
    assert s.pkcs11_pin is None  # never a default PIN
    assert data_dir.is_dir()


def test_toml_file_then_environment_wins(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "limen.toml").write_text('[limen]\nport = 9000\ndevice_id = "front-door"\n')
    assert load_settings(data_dir).port == 9000
    monkeypatch.setenv("LIMEN_PORT", "9100")
    s = load_settings(data_dir)
    assert s.port == 9100 and s.device_id == "front-door"


@pytest.mark.parametrize("text", ['[limen]\nport = 70000\n', '[limen]\nunknown_key = 1\n', "[limen\nport=1"])
def test_invalid_settings_are_one_clear_error(data_dir: Path, text: str) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "limen.toml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(data_dir)
    assert "port" in str(err.value) or "unknown_key" in str(err.value) or "limen.toml" in str(err.value)


def test_unwritable_data_dir_is_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError):
        load_settings(blocker / "sub")


def test_an_open_data_dir_is_restricted_to_its_owner(tmp_path: Path) -> None:
    d = tmp_path / "shared-dir"
    d.mkdir(mode=0o755)
    d.chmod(0o755)
    load_settings(d)
    assert d.stat().st_mode & 0o777 == 0o700


def test_the_token_pin_never_shows_in_a_repr(data_dir: Path) -> None:
    s = load_settings(data_dir, keystore="pkcs11", pkcs11_pin="123456")
    assert "123456" not in repr(s) and s.pkcs11_pin is not None
    assert s.pkcs11_pin.get_secret_value() == "123456"


@pytest.mark.parametrize("device_id", ["limen-cloud", "homeassistant", "front/door", "door+", "door#", "front door"])
def test_a_device_id_that_would_widen_the_brokers_acl_is_refused(data_dir: Path, device_id: str) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "limen.toml").write_text(f'[limen]\ndevice_id = "{device_id}"\nlink_broker = "fleet:8883"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(data_dir)
    assert "device_id" in str(err.value)


def test_a_lock_without_a_broker_keeps_the_device_id_it_had(data_dir: Path) -> None:
    """The previous release took any printable id; its audit checkpoints and witness carry it, so a lock
    without the link still starts with it after the upgrade (regression: every command failed)."""
    data_dir.mkdir(parents=True)
    (data_dir / "limen.toml").write_text('[limen]\ndevice_id = "Front door"\n')
    assert load_settings(data_dir).device_id == "Front door"
