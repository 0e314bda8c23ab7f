"""`limen privacy export / erase` and the in-person backup commands, as typed."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from tests.cli.test_access_cli import MAX_PIN, OWNER_PIN, cheap_argon2, limen  # noqa: F401 - fixture


def lock_with_max(d: Path) -> None:
    assert limen(d, "users", "add", "Olga", new_pin=OWNER_PIN).exit_code == 0
    assert limen(d, "users", "add", "Max", "--as", "Olga", new_pin=MAX_PIN).exit_code == 0


def test_export_lists_a_persons_data_and_never_a_secret(tmp_path: Path) -> None:
    d = tmp_path / "data"
    lock_with_max(d)
    result = limen(d, "privacy", "export", "Max", "--as", "Olga")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["identity"]["name"] == "Max" and data["access"]["permission"] == "member"
    assert [c["cred_type"] for c in data["credentials"]] == ["pin"]
    assert any(r["reason"] == "user added" for r in data["audit_records"])
    with sqlite3.connect(d / "limen.db") as db:
        secret = bytes(db.execute("SELECT secret FROM access_credentials WHERE cred_type = 'pin' "
                                  "ORDER BY cred_index DESC").fetchone()[0])
    for needle in (MAX_PIN, secret.hex(), base64.b64encode(secret).decode(), "pin_length", "secret"):
        assert needle not in result.output
    member = limen(d, "privacy", "export", "Olga", "--as", "Max", actor_pin=MAX_PIN)
    wrong = limen(d, "privacy", "export", "Max", "--as", "Olga", actor_pin="000000")
    assert member.exit_code != 0 and wrong.exit_code != 0
    tail = json.loads(limen(d, "--json", "audit", "tail", "-n", "5").output)
    assert [r["reason"] for r in tail if r["kind"] == "privacy"] == ["personal data exported"]


def test_delete_me_at_the_lock_then_a_recovery_key_restore_does_not_bring_them_back(tmp_path: Path) -> None:
    d = tmp_path / "data"
    lock_with_max(d)
    phone = X25519PrivateKey.generate()
    pub = base64.b64encode(phone.public_key().public_bytes_raw()).decode()
    assert limen(d, "link", "backup-key", "olga-phone", "--public-key", pub, "--as", "Olga").exit_code == 0
    made = json.loads(limen(d, "--json", "link", "recovery-key", "--as", "Olga").output)
    printed = made["recovery_key"]
    with sqlite3.connect(d / "limen.db") as db:
        assert printed.replace("-", "") not in str(db.execute("SELECT * FROM backup_recipients").fetchall())
    backup = json.loads(limen(d, "--json", "link", "backup").output)
    blob = Path(backup["file"]).read_bytes()
    saved = tmp_path / "copy.limenbak"
    saved.write_bytes(blob)  # e.g. downloaded from the cloud later
    assert b"Max" not in blob
    listed = json.loads(limen(d, "--json", "link", "backups").output)
    assert [(b["counter"], b["uploaded_at"]) for b in listed] == [(1, None)]
    keys = {json.loads(limen(d, "--json", "link", "restore-key").output)["restore_key"] for _ in range(2)}
    assert len(keys) == 1 and len(base64.b64decode(keys.pop())) == 32  # made once, then the same

    erased = limen(d, "--json", "privacy", "erase", "Max", "--as", "Olga", "--yes")
    assert erased.exit_code == 0, erased.output
    counts = json.loads(erased.output)["erased"]["lock"]
    assert counts["person"] == 1 and counts["local_backups"] == 1 and not Path(backup["file"]).exists()
    fresh = Path(backup["file"]).parent / json.loads(erased.output)["fresh_backup"]
    assert fresh.exists() and fresh.name != Path(backup["file"]).name

    wrong = limen(d, "--json", "link", "restore", str(saved), "--recovery-key",
                  "A" * 52)
    assert wrong.exit_code != 0
    restored = limen(d, "--json", "link", "restore", str(saved), "--recovery-key", printed)
    assert restored.exit_code == 0, restored.output
    assert json.loads(restored.output)["rows"]["users"] == 2
    users = json.loads(limen(d, "--json", "users", "list").output)
    assert [u["name"] for u in users] == ["Olga"]  # the erased person stays erased
    tail = json.loads(limen(d, "--json", "audit", "tail", "-n", "10").output)
    assert [r["outcome"] for r in tail if r["reason"] in ("backup restored", "backup restore refused")] == [
        "refused", "restored"]


def test_an_export_written_to_a_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    d = tmp_path / "data"
    lock_with_max(d)
    out = tmp_path / "max.json"
    out.write_text("old")
    out.chmod(0o644)  # a file that was there: replaced, not rewritten in place with its mode
    result = limen(d, "privacy", "export", "Max", "--as", "Olga", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["identity"]["name"] == "Max"
    assert out.stat().st_mode & 0o777 == 0o600
