"""A prompt goes to stderr: the commands whose stdout is redirected (`--json > file`, `--request > unlock.json`)
keep it for the output alone, and the person sees the question (newcomer walkthrough, docs/cloud.md step 8)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from typer.testing import CliRunner

from tests.cli.test_access_cli import OWNER_PIN, limen


def test_sign_command_request_prints_only_json_on_stdout_and_asks_for_the_pin_on_stderr(tmp_path: Path) -> None:
    from limen_cloud.cli import app

    (tmp_path / "phone.key").write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    restore = base64.b64encode(X25519PrivateKey.generate().public_key().public_bytes_raw()).decode()
    made = CliRunner().invoke(app, ["sign-command", "unlock", "--key", str(tmp_path / "phone.key"), "--device",
                                    "olga-phone", "--lock", "front-door", "--restore-key", restore, "--request"],
                              input="246813\n")
    assert made.exit_code == 0, made.output
    assert "PIN" in made.stderr and "PIN" not in made.stdout
    assert set(json.loads(made.stdout)) == {"payload"}  # what `> unlock.json` keeps, posted as it is


def test_a_json_command_that_asks_for_the_owners_pin_keeps_stdout_for_the_json(tmp_path: Path) -> None:
    from limen.cli import app
    from limen.cli.common import STATE

    d = tmp_path / "lock"
    assert limen(d, "users", "add", "Olga", new_pin=OWNER_PIN).exit_code == 0
    STATE._settings = None
    asked = CliRunner().invoke(app, ["--json", "link", "recovery-key", "--as", "Olga"], input=OWNER_PIN + "\n",
                               env={"LIMEN_DATA_DIR": str(d), "LIMEN_ACTOR_PIN": None})
    assert asked.exit_code == 0, asked.output
    assert "PIN of Olga" in asked.stderr and "PIN" not in asked.stdout
    assert set(json.loads(asked.stdout)) == {"recovery_key"}
