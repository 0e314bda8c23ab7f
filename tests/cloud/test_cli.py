"""`limen-cloud ca init / sign / revoke`: a fleet CA kept in a directory; `sign-command` on the owner's device."""

from __future__ import annotations

import base64
import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from typer.testing import CliRunner

from limen.audit.keys import SigningKey
from limen.db import open_db
from limen.errors import CommandRefused
from limen.link import pki
from limen.link.backup import Recipient, RecipientKind, digest, seal_backup, unwrap_key
from limen.link.commands import Action, CommandVerifier, DeviceRegistry, SignedCommand
from limen.link.execute import open_reply
from limen_cloud.cli import app


def test_ca_init_sign_revoke(tmp_path: Path) -> None:
    ca_dir, runner = tmp_path / "ca", CliRunner()
    assert runner.invoke(app, ["ca", "init", str(ca_dir)]).exit_code == 0
    assert stat.S_IMODE((ca_dir / "ca.key").stat().st_mode) == 0o600
    assert runner.invoke(app, ["ca", "init", str(ca_dir)]).exit_code != 0  # never overwrites a CA
    (tmp_path / "lock.csr").write_bytes(pki.make_csr(pki.new_key(), "front-door"))
    signed = runner.invoke(app, ["ca", "sign", str(ca_dir), str(tmp_path / "lock.csr"), "--out",
                                 str(tmp_path / "lock.pem")])
    assert signed.exit_code == 0, signed.output
    cert = x509.load_pem_x509_certificate((tmp_path / "lock.pem").read_bytes())
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    cert.verify_directly_issued_by(ca_cert)
    assert runner.invoke(app, ["ca", "revoke", str(ca_dir), str(tmp_path / "lock.pem")]).exit_code == 0
    crl = x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None


def test_ca_crl_reissues_and_pushes(tmp_path: Path) -> None:
    ca_dir, runner, target = tmp_path / "ca", CliRunner(), tmp_path / "broker-crl.pem"
    assert runner.invoke(app, ["ca", "init", str(ca_dir)]).exit_code == 0
    before = x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes())
    (tmp_path / "lock.csr").write_bytes(pki.make_csr(pki.new_key(), "front-door"))
    assert runner.invoke(app, ["ca", "sign", str(ca_dir), str(tmp_path / "lock.csr"), "--out",
                               str(tmp_path / "lock.pem")]).exit_code == 0
    assert runner.invoke(app, ["ca", "revoke", str(ca_dir), str(tmp_path / "lock.pem")]).exit_code == 0
    made = runner.invoke(app, ["ca", "crl", str(ca_dir), "--push", str(target)])
    assert made.exit_code == 0, made.output
    pushed = x509.load_pem_x509_crl(target.read_bytes())
    serial = x509.load_pem_x509_certificate((tmp_path / "lock.pem").read_bytes()).serial_number
    assert pushed.get_revoked_certificate_by_serial_number(serial) is not None  # revocations kept
    assert pushed.next_update_utc is not None and before.next_update_utc is not None
    assert pushed.next_update_utc >= before.next_update_utc
    assert runner.invoke(app, ["ca", "crl", str(tmp_path / "no-ca")]).exit_code != 0


def test_sign_command_makes_a_command_the_lock_itself_accepts_once(tmp_path: Path) -> None:
    phone = Ed25519PrivateKey.generate()
    (tmp_path / "phone.key").write_bytes(phone.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    devices = DeviceRegistry(open_db(tmp_path / "limen.db"))
    devices.pair("olga-phone", phone.public_key(), "olga", "olga", datetime.now(UTC))
    verifier, runner = CommandVerifier(devices, "front-door"), CliRunner()
    base = ["sign-command", "--key", str(tmp_path / "phone.key"), "--device", "olga-phone", "--lock", "front-door"]

    made = runner.invoke(app, [*base[:1], "erase", *base[1:], "--arg", "user=Max", "--arg", "scope=person"])
    assert made.exit_code == 0, made.output
    signed = SignedCommand.from_bytes(made.output.strip().encode())
    command, device = verifier.verify(signed, datetime.now(UTC))
    assert (command.action, dict(command.args), device and device.name) == (
        Action.ERASE, {"user": "Max", "scope": "person"}, "olga-phone")
    with pytest.raises(CommandRefused, match="replayed"):
        verifier.verify(signed, datetime.now(UTC))  # the lock takes it once

    request = runner.invoke(app, [*base[:1], "unlock", *base[1:], "--request"])  # the body of POST …/commands
    assert request.exit_code == 0, request.output
    relayed = SignedCommand.from_bytes(json.loads(request.output)["payload"].encode())
    assert verifier.verify(relayed, datetime.now(UTC))[0].action is Action.UNLOCK
    other = runner.invoke(app, [*base[:1], "unlock", *base[1:6], "back-door"])
    with pytest.raises(CommandRefused, match="another lock"):
        verifier.verify(SignedCommand.from_bytes(other.output.strip().encode()), datetime.now(UTC))

    (tmp_path / "x25519.key").write_bytes(X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    for bad in (["open-sesame", *base[1:]], ["unlock", *base[1:], "--arg", "no-equals"],
                ["unlock", *base[1:2], str(tmp_path / "x25519.key"), *base[3:]]):
        refused = runner.invoke(app, [*base[:1], *bad])
        assert refused.exit_code != 0 and "payload" not in refused.output, bad


def test_ca_sign_issues_home_assistant_s_certificate_only_as_a_service(tmp_path: Path) -> None:
    ca_dir, runner = tmp_path / "ca", CliRunner()
    assert runner.invoke(app, ["ca", "init", str(ca_dir)]).exit_code == 0
    (tmp_path / "ha.csr").write_bytes(pki.make_csr(pki.new_key(), "homeassistant"))
    sign = ["ca", "sign", str(ca_dir), str(tmp_path / "ha.csr"), "--out", str(tmp_path / "ha.pem")]
    as_lock = runner.invoke(app, sign)
    assert as_lock.exit_code != 0 and "reserved" in as_lock.output and not (tmp_path / "ha.pem").exists()
    assert runner.invoke(app, [*sign, "--service"]).exit_code == 0
    cert = x509.load_pem_x509_certificate((tmp_path / "ha.pem").read_bytes())
    assert cert.subject.rfc4514_string() == "CN=homeassistant"
    (tmp_path / "lock.csr").write_bytes(pki.make_csr(pki.new_key(), "front-door"))
    not_service = runner.invoke(app, ["ca", "sign", str(ca_dir), str(tmp_path / "lock.csr"), "--out",
                                      str(tmp_path / "lock.pem"), "--service"])
    assert not_service.exit_code != 0 and "not one of the fleet's services" in not_service.output


def test_sign_restore_seals_the_backup_s_key_to_the_target_lock_and_signs_its_digest(tmp_path: Path) -> None:
    phone, phone_x, target = Ed25519PrivateKey.generate(), X25519PrivateKey.generate(), X25519PrivateKey.generate()
    (tmp_path / "phone.key").write_bytes(phone.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (tmp_path / "phone-x.b64").write_text(base64.b64encode(phone_x.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())).decode())
    blob = seal_backup(b'{"rows": 1}', "front-door", 4, datetime.now(UTC),
                       [Recipient("olga-phone", RecipientKind.DEVICE, phone_x.public_key())],
                       SigningKey(Ed25519PrivateKey.generate()))
    (tmp_path / "backup.limenbak").write_bytes(blob)
    devices = DeviceRegistry(open_db(tmp_path / "limen.db"))
    devices.pair("olga-phone", phone.public_key(), "olga", "olga", datetime.now(UTC))
    target_b64 = base64.b64encode(target.public_key().public_bytes(serialization.Encoding.Raw,
                                                                   serialization.PublicFormat.Raw)).decode()
    base = ["sign-restore", str(tmp_path / "backup.limenbak"), "--backup-id", "9", "--key", str(tmp_path / "phone.key"),
            "--device", "olga-phone", "--lock", "front-door", "--restore-key", target_b64]

    made = CliRunner().invoke(app, [*base, "--backup-key", str(tmp_path / "phone-x.b64"), "--revoked", "code:c1"])
    assert made.exit_code == 0, made.output
    body = json.loads(made.output)
    command, _ = CommandVerifier(devices, "front-door").verify(
        SignedCommand.from_bytes(body["payload"].encode()), datetime.now(UTC))
    assert body["backup_id"] == 9 and command.action is Action.RESTORE
    assert (command.args["backup"], command.args["from_lock"], command.args["revoked"]) == (
        digest(blob), "front-door", "code:c1")
    assert open_reply(target, command.args["key"]) == unwrap_key(blob, phone_x)[1]  # only the target opens it
    assert "pin" not in command.args

    with_pin = CliRunner().invoke(app, [*base, "--backup-key", str(tmp_path / "phone-x.b64"), "--pin"],
                                  input="246813\n")  # require_pin_for_remote on the target: the owner's PIN, sealed
    assert with_pin.exit_code == 0, with_pin.output
    wire = json.loads(with_pin.output.strip().splitlines()[-1])["payload"]
    assert "246813" not in wire
    assert open_reply(target, json.loads(SignedCommand.from_bytes(wire.encode()).body)["args"]["pin"]) == \
        b"limen-pin-v1:246813"

    (tmp_path / "other-x.b64").write_text(base64.b64encode(X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())).decode())
    not_mine = CliRunner().invoke(app, [*base, "--backup-key", str(tmp_path / "other-x.b64")])
    assert not_mine.exit_code != 0 and "payload" not in not_mine.output


def test_sign_command_seals_the_owners_pin_to_the_lock_for_an_unlock(tmp_path: Path) -> None:
    phone = Ed25519PrivateKey.generate()
    (tmp_path / "phone.key").write_bytes(phone.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    lock_key = X25519PrivateKey.generate()
    restore = base64.b64encode(lock_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
    base = ["sign-command", "unlock", "--key", str(tmp_path / "phone.key"), "--device", "olga-phone",
            "--lock", "front-door", "--restore-key", restore]
    made = CliRunner().invoke(app, base, input="246813\n")
    assert made.exit_code == 0, made.output
    wire = made.output.strip().splitlines()[-1]
    assert "246813" not in wire  # the cloud relaying it cannot read the PIN
    sealed = json.loads(SignedCommand.from_bytes(wire.encode()).body)["args"]["pin"]
    assert open_reply(lock_key, sealed) == b"limen-pin-v1:246813"
    for bad, text in ((["--restore-key", "not-base64!"], "12\n"), ([], "12a4\n")):
        refused = CliRunner().invoke(app, [*base[:-2], *(bad or base[-2:])], input=text)
        assert refused.exit_code != 0, bad
    lock = CliRunner().invoke(app, ["sign-command", "lock", *base[2:]], input="246813\n")
    assert lock.exit_code != 0  # a PIN is sealed into an unlock, add_user or add_code only
    for adds in ("add-code", "add-user"):  # they make a way in: require_pin_for_remote asks the PIN for them too
        made = CliRunner().invoke(app, ["sign-command", adds, *base[2:]], input="246813\n")
        assert made.exit_code == 0, made.output
        sealed = json.loads(SignedCommand.from_bytes(made.output.strip().splitlines()[-1].encode()).body)["args"]
        assert open_reply(lock_key, sealed["pin"]) == b"limen-pin-v1:246813"
