"""`limen-cloud device-key`: the owner's device makes its keys with the tool the docs name (newcomer walkthrough,
docs/cloud.md step 7), in the forms the lock's pairing and backup commands take."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from typer.testing import CliRunner

from limen_cloud.cli import app
from tests.cli.test_access_cli import OWNER_PIN, limen


def test_device_keys_pair_and_register_at_the_lock_and_sign_there(tmp_path: Path) -> None:
    signing = CliRunner().invoke(app, ["device-key", str(tmp_path / "phone.key")])
    backup = CliRunner().invoke(app, ["device-key", str(tmp_path / "phone-x.key"), "--x25519"])
    assert signing.exit_code == 0 and backup.exit_code == 0, signing.output + backup.output
    for name in ("phone.key", "phone-x.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    private = serialization.load_pem_private_key((tmp_path / "phone.key").read_bytes(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    assert signing.stdout == (tmp_path / "phone.pub").read_text()  # the public half printed, nothing else
    assert "pair-device" in signing.stderr and "backup-key" in backup.stderr
    x_private = serialization.load_pem_private_key((tmp_path / "phone-x.key").read_bytes(), password=None)
    assert isinstance(x_private, X25519PrivateKey)

    d = tmp_path / "lock"
    assert limen(d, "users", "add", "Olga", new_pin=OWNER_PIN).exit_code == 0
    paired = limen(d, "link", "pair-device", "olga-phone", "--public-key", str(tmp_path / "phone.pub"),
                   "--as", "Olga")
    registered = limen(d, "link", "backup-key", "olga-phone", "--public-key", backup.stdout.strip(), "--as", "Olga")
    assert paired.exit_code == 0 and registered.exit_code == 0, paired.output + registered.output
    made = json.loads(limen(d, "--json", "link", "backup").output)
    assert Path(made["file"]).exists()  # encrypted to the X25519 key it made
    signed = CliRunner().invoke(app, ["sign-command", "lock", "--key", str(tmp_path / "phone.key"),
                                      "--device", "olga-phone", "--lock", "any"])
    assert signed.exit_code == 0, signed.output


def test_device_key_never_overwrites_a_key(tmp_path: Path) -> None:
    (tmp_path / "phone.key").write_text("a key already paired")
    again = CliRunner().invoke(app, ["device-key", str(tmp_path / "phone.key")])
    assert again.exit_code != 0 and (tmp_path / "phone.key").read_text() == "a key already paired"
    assert not (tmp_path / "phone.pub").exists()
    (tmp_path / "tablet.pub").write_text("kept")
    beside = CliRunner().invoke(app, ["device-key", str(tmp_path / "tablet.key")])
    assert beside.exit_code != 0 and not (tmp_path / "tablet.key").exists()
    assert CliRunner().invoke(app, ["device-key", str(tmp_path / "x.pub")]).exit_code != 0
