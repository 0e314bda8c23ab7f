"""`limen-cloud sign-command add-user`: the command carries its signing time, so a lock slow or fast within
LINK_CLOCK_SKEW_S accepts it and one further off names its clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from limen import thresholds as T
from limen.db import open_db
from limen.errors import CommandRefused
from limen.link.commands import Action, CommandVerifier, DeviceRegistry, Refusal, SignedCommand
from limen_cloud.cli import app


@pytest.mark.parametrize(("lock_offset_s", "refusal"), [(-(T.LINK_CLOCK_SKEW_S - 1), None),
                                                        (-(T.LINK_CLOCK_SKEW_S + 10), Refusal.CLOCK_SKEW),
                                                        (T.LINK_CLOCK_SKEW_S + 1, None)])
def test_sign_command_add_user_carries_its_signing_time(tmp_path: Path, lock_offset_s: float,
                                                        refusal: Refusal | None) -> None:
    phone = Ed25519PrivateKey.generate()
    (tmp_path / "phone.key").write_bytes(phone.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    conn = open_db(tmp_path / "limen.db")
    devices = DeviceRegistry(conn)
    devices.pair("olga-phone", phone.public_key(), "olga", "olga", datetime.now(UTC))
    made = CliRunner().invoke(app, ["sign-command", "add-user", "--key", str(tmp_path / "phone.key"), "--device",
                                    "olga-phone", "--lock", "front-door", "--arg", "name=Max"])
    assert made.exit_code == 0, made.output
    signed = SignedCommand.from_bytes(made.output.strip().encode())
    at = datetime.now(UTC) + timedelta(seconds=lock_offset_s)  # the lock's clock, slow (< 0) or fast
    verifier = CommandVerifier(devices, "front-door")
    if refusal is None:
        command, _ = verifier.verify(signed, at)
        assert command.action is Action.ADD_USER and command.issued is not None and command.args["name"] == "Max"
    else:
        with pytest.raises(CommandRefused) as caught:
            verifier.verify(signed, at)
        assert caught.value.refusal is refusal
    conn.close()
