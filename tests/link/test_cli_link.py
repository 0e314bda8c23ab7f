"""`limen link pair-device / devices / execute / unpair / csr / install-cert / restore` as typed."""

from __future__ import annotations

import base64
import io
import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import segno
from click.testing import Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from limen.audit.keys import key_id, load_public_b64
from limen.link import pki
from limen.link.backup import digest, open_backup, parse_recovery_key, unwrap_key
from limen.link.commands import Action, Command, sign
from limen.link.execute import seal_pin, seal_reply
from limen.link.forward import claim_hash
from tests.cli.test_access_cli import MAX_PIN, OWNER_PIN, limen
from tests.cli.test_access_cli import cheap_argon2 as cheap_argon2  # noqa: F401 - the autouse fixture applies here

NEW_PIN = "975312"  # the owner's PIN set in person on the replacement lock


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


def _paired(d: Path, tmp: Path, phone: Ed25519PrivateKey, *extra: str, actor_pin: str = OWNER_PIN) -> Result:
    pub = tmp / "phone.pub"
    pub.write_bytes(phone.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return limen(d, *extra, "link", "pair-device", "olga-phone", "--public-key", str(pub), "--as", "Olga",
                 actor_pin=actor_pin)


def test_pairing_gives_the_owner_the_locks_audit_key(tmp_path: Path) -> None:
    """Review finding: a replacement lock restores the old lock's backups only under the old lock's audit key,
    and pairing never showed it (the reviewer read keys/audit_ed25519.pub off the smashed lock)."""
    d = tmp_path / "data"
    assert limen(d, "users", "add", "Olga", new_pin=OWNER_PIN).exit_code == 0
    phone = Ed25519PrivateKey.generate()
    paired = _paired(d, tmp_path, phone, "--json")
    assert paired.exit_code == 0, paired.output
    record = json.loads(paired.output)
    on_disk = (d / "keys" / "audit_ed25519.pub").read_text().strip()
    assert record["audit_key"] == on_disk and record["lock"] == "limen-lock" and record["device"] == "olga-phone"
    assert record["audit_key_id"] == key_id(load_public_b64(on_disk))
    assert limen(d, "link", "unpair", "olga-phone", "--as", "Olga").exit_code == 0
    shown = _paired(d, tmp_path, phone, "--lang", "en")  # the human output, with the QR of the same record
    assert shown.exit_code == 0, shown.output
    assert record["audit_key"] in shown.output and record["audit_key_id"] in shown.output
    assert limen(d, "link", "unpair", "olga-phone", "--as", "Olga").exit_code == 0
    with_qr = limen(d, "link", "pair-device", "olga-phone", "--public-key", str(tmp_path / "phone.pub"),
                    "--as", "Olga", "--qr")
    assert with_qr.exit_code == 0, with_qr.output
    qr = io.StringIO()
    segno.make(json.dumps(record, sort_keys=True), error="m").terminal(out=qr, compact=True)
    assert qr.getvalue() in with_qr.output and qr.getvalue() not in shown.output


def test_a_replacement_restores_with_the_key_from_the_owners_pairing_record(tmp_path: Path) -> None:
    """The whole flow with what the owner's devices hold: the pairing record (audit key), the phone's X25519
    key, the printed recovery key; the old lock's disk is gone.  Both restore paths: the signed command
    (`limen link execute`) and the recovery key at the lock (`limen link restore`)."""
    old, phone, phone_x = tmp_path / "old", Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
    assert limen(old, "users", "add", "Olga", new_pin=OWNER_PIN).exit_code == 0
    assert limen(old, "users", "add", "Max", "--as", "Olga", new_pin=MAX_PIN).exit_code == 0
    record = json.loads(_paired(old, tmp_path, phone, "--json").output)  # kept on the phone
    phone_pub = base64.b64encode(phone_x.public_key().public_bytes_raw()).decode()
    assert limen(old, "link", "backup-key", "olga-phone", "--public-key", phone_pub, "--as", "Olga").exit_code == 0
    printed = json.loads(limen(old, "--json", "link", "recovery-key", "--as", "Olga").output)["recovery_key"]
    made = limen(old, "--json", "link", "backup")
    assert made.exit_code == 0, made.output
    blob = tmp_path / "backup.limenbak"
    blob.write_bytes(Path(json.loads(made.output)["file"]).read_bytes())  # as the cloud keeps it
    shutil.rmtree(old)  # smashed: nothing can be read off it any more

    for path in ("command", "recovery-key"):
        new = tmp_path / f"new-{path}"
        assert limen(new, "users", "add", "Olga", new_pin=NEW_PIN).exit_code == 0
        if path == "command":
            assert _paired(new, tmp_path, phone, actor_pin=NEW_PIN).exit_code == 0
            restore_key = X25519PublicKey.from_public_bytes(base64.b64decode(
                json.loads(limen(new, "--json", "link", "restore-key").output)["restore_key"]))
            _, content_key = unwrap_key(blob.read_bytes(), phone_x)
            args = {"backup": digest(blob.read_bytes()), "key": seal_reply(restore_key, content_key),
                    "from_lock": record["lock"],  # require_pin_for_remote (on): the PIN set in person, sealed
                    "pin": seal_pin(restore_key, NEW_PIN)}
            runs = [limen(new, "--json", "link", "execute", str(_restore_file(tmp_path, phone, n, blob, extra)))
                    for n, extra in ((1, args), (2, {**args, "from_lock_key": record["audit_key"]}))]
        else:
            runs = [limen(new, "--json", "link", "restore", str(blob), "--recovery-key", printed, *extra)
                    for extra in ((), ("--from-lock-key", record["audit_key"]))]
        refused, done = runs
        assert refused.exit_code != 0 and "not signed by a known audit key" in refused.output + refused.stderr_text
        assert done.exit_code == 0, done.output
        assert limen(new, "--json", "unlock", "--pin", MAX_PIN).exit_code == 0  # Max is back
        again = limen(new, "--json", "link", "backup")  # to the same owner devices and recovery key
        assert again.exit_code == 0, again.output
        after = Path(json.loads(again.output)["file"]).read_bytes()
        for private in (phone_x, parse_recovery_key(printed)):
            assert open_backup(after, unwrap_key(after, private)[1])[0].lock == record["lock"]


def _restore_file(tmp: Path, phone: Ed25519PrivateKey, counter: int, blob: Path, args: dict[str, str]) -> Path:
    cmd = Command("limen-lock", Action.RESTORE, counter, datetime.now(UTC) + timedelta(seconds=60), "olga-phone",
                  args)
    path = tmp / f"restore-{counter}.json"
    path.write_bytes(sign(cmd, phone).attach(blob.read_bytes()).to_bytes())
    return path
