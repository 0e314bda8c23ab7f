"""`limen link pair-device / devices / execute / unpair / csr / install-cert` as typed."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from limen.link import pki
from limen.link.commands import Action, Command, sign
from limen.link.forward import claim_hash
from tests.cli.test_access_cli import OWNER_PIN, limen


def command_file(tmp: Path, key: Ed25519PrivateKey, counter: int, action: Action = Action.LOCKDOWN,
                 lock: str = "limen-lock") -> Path:
    cmd = Command(lock, action, counter, datetime.now(UTC) + timedelta(seconds=60), "olga-phone")
    path = tmp / f"cmd-{counter}.json"
    path.write_bytes(sign(cmd, key).to_bytes())
    return path


def test_pair_a_device_in_person_then_run_its_signed_commands(tmp_path: Path) -> None:
    d = tmp_path / "data"
    phone = Ed25519PrivateKey.generate()
    pub = tmp_path / "phone.pub"
    pub.write_bytes(phone.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    assert limen(d, "users", "add", "Olga", new_pin=OWNER_PIN).exit_code == 0
    wrong = limen(d, "link", "pair-device", "olga-phone", "--public-key", str(pub), "--as", "Olga",
                  actor_pin="000000")
    assert wrong.exit_code != 0
    paired = limen(d, "link", "pair-device", "olga-phone", "--public-key", str(pub), "--as", "Olga")
    assert paired.exit_code == 0, paired.output
    listed = json.loads(limen(d, "--json", "link", "devices").output)
    assert [r["device"] for r in listed] == ["olga-phone"] and listed[0]["counter"] == 0

    done = limen(d, "--json", "link", "execute", str(command_file(tmp_path, phone, 5)))
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["executed"]
    replay = limen(d, "--json", "link", "execute", str(command_file(tmp_path, phone, 5)))
    assert replay.exit_code == 3 and json.loads(replay.output)["reason"] == "replayed"
    other = limen(d, "--json", "link", "execute", str(command_file(tmp_path, phone, 6, lock="back-door")))
    assert other.exit_code == 3 and json.loads(other.output)["reason"] == "wrong_lock"
    tail = json.loads(limen(d, "--json", "audit", "tail", "-n", "50").output)
    assert [r["reason"] for r in tail if r["kind"] == "remote_command"] == ["done", "replayed", "wrong_lock"]

    issued = limen(d, "--json", "link", "claim-code", "--as", "Olga")
    code = json.loads(issued.output)["claim_code"]
    with sqlite3.connect(d / "limen.db") as db:
        stored = db.execute("SELECT code_hash FROM link_claim").fetchone()[0]
    assert stored == claim_hash(code) and code not in stored

    assert limen(d, "link", "unpair", "olga-phone", "--as", "Olga").exit_code == 0
    gone = limen(d, "--json", "link", "execute", str(command_file(tmp_path, phone, 7)))
    assert gone.exit_code == 3 and json.loads(gone.output)["reason"] == "unknown_device"


def test_csr_then_install_the_issued_certificate(tmp_path: Path) -> None:
    d = tmp_path / "data"
    csr_file = tmp_path / "lock.csr"
    assert limen(d, "link", "csr", "--out", str(csr_file)).exit_code == 0
    ca = pki.FleetCA.create("fleet", datetime.now(UTC))
    (tmp_path / "ca.pem").write_bytes(pki.pem(ca.cert))
    (tmp_path / "lock.pem").write_bytes(pki.pem(ca.issue(csr_file.read_bytes(), datetime.now(UTC))))
    ok = limen(d, "link", "install-cert", str(tmp_path / "lock.pem"), "--ca", str(tmp_path / "ca.pem"))
    assert ok.exit_code == 0, ok.output
    rogue = pki.FleetCA.create("rogue", datetime.now(UTC))
    (tmp_path / "rogue.pem").write_bytes(pki.pem(rogue.issue(pki.make_csr(pki.new_key(), "x"), datetime.now(UTC))))
    bad = limen(d, "link", "install-cert", str(tmp_path / "rogue.pem"), "--ca", str(tmp_path / "ca.pem"))
    assert bad.exit_code != 0
