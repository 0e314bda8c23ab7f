"""`limen link backup-templates` and `limen link restore --from-lock-key` as typed, on two locks."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from limen.audit.keys import known_public_keys
from limen.config import Settings
from tests.cli.test_access_cli import OWNER_PIN, limen


def _lock_with_backup(d: Path) -> tuple[str, Path]:
    assert limen(d, "users", "add", "Olga", new_pin=OWNER_PIN).exit_code == 0
    assert limen(d, "users", "add", "Max", "--as", "Olga", new_pin="482916").exit_code == 0
    phone = X25519PrivateKey.generate()
    pub = base64.b64encode(phone.public_key().public_bytes_raw()).decode()
    assert limen(d, "link", "backup-key", "olga-phone", "--public-key", pub, "--as", "Olga").exit_code == 0
    printed = json.loads(limen(d, "--json", "link", "recovery-key", "--as", "Olga").output)["recovery_key"]
    made = json.loads(limen(d, "--json", "link", "backup").output)
    return printed, Path(made["file"])


def _said(result: object) -> str:
    return f"{getattr(result, 'output', '')} {getattr(result, 'stderr', '')} {getattr(result, 'exception', '')}"


def test_template_backup_is_off_until_the_owner_opts_in_and_each_change_is_audited(tmp_path: Path) -> None:
    d = tmp_path / "lock"
    assert limen(d, "users", "add", "Olga", new_pin=OWNER_PIN).exit_code == 0
    wrong = limen(d, "link", "backup-templates", "on", "--as", "Olga", actor_pin="000000")
    bad = limen(d, "link", "backup-templates", "maybe", "--as", "Olga")
    assert wrong.exit_code != 0 and bad.exit_code != 0
    on = limen(d, "--json", "link", "backup-templates", "on", "--as", "Olga")
    assert on.exit_code == 0 and json.loads(on.output) == {"backup_templates": True}
    off = limen(d, "--json", "link", "backup-templates", "off", "--as", "Olga")
    assert off.exit_code == 0 and json.loads(off.output) == {"backup_templates": False}
    tail = json.loads(limen(d, "--json", "audit", "tail", "-n", "20").output)
    assert [r["reason"] for r in tail if r["kind"] == "config_change" and r["source"] == "backup"] == [
        "template backup on", "template backup off"]


def test_a_replacement_lock_restores_only_with_the_old_locks_key_from_the_owner(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    printed, blob = _lock_with_backup(old)
    assert limen(new, "users", "add", "Nina", new_pin=OWNER_PIN).exit_code == 0  # the replacement, set up fresh

    unknown = limen(new, "--json", "link", "restore", str(blob), "--recovery-key", printed)
    assert unknown.exit_code != 0 and "signed" in _said(unknown)
    garbage = limen(new, "--json", "link", "restore", str(blob), "--recovery-key", printed,
                    "--from-lock-key", "not-a-key")
    assert garbage.exit_code != 0 and "Ed25519" in _said(garbage)
    stranger = base64.b64encode(Ed25519PrivateKey.generate().public_key().public_bytes_raw()).decode()
    forged = limen(new, "--json", "link", "restore", str(blob), "--recovery-key", printed, "--from-lock-key", stranger)
    assert forged.exit_code != 0 and "signed" in _said(forged)  # a real key, but not the one that signed it
    assert [u["name"] for u in json.loads(limen(new, "--json", "users", "list").output)] == ["Nina"]

    old_keys = known_public_keys(Settings(data_dir=old).keys_dir)
    assert len(old_keys) == 1
    text = base64.b64encode(next(iter(old_keys.values())).public_bytes_raw()).decode()
    done = limen(new, "--json", "link", "restore", str(blob), "--recovery-key", printed, "--from-lock-key", text)
    assert done.exit_code == 0, done.output
    assert sorted(u["name"] for u in json.loads(limen(new, "--json", "users", "list").output)) == ["Max", "Olga"]


def test_a_person_the_owner_removed_does_not_come_back_from_an_older_backup(tmp_path: Path) -> None:
    d = tmp_path / "lock"
    printed, blob = _lock_with_backup(d)  # the backup still holds Max
    saved = tmp_path / "older.limenbak"
    saved.write_bytes(blob.read_bytes())
    assert limen(d, "users", "remove", "Max", "--as", "Olga").exit_code == 0
    done = limen(d, "--json", "link", "restore", str(saved), "--recovery-key", printed)
    assert done.exit_code == 0, _said(done)
    assert [u["name"] for u in json.loads(limen(d, "--json", "users", "list").output)] == ["Olga"]


def test_status_says_whether_backups_carry_templates(tmp_path: Path) -> None:
    d = tmp_path / "lock"
    assert limen(d, "users", "add", "Olga", new_pin=OWNER_PIN).exit_code == 0
    fresh = json.loads(limen(d, "--json", "status").output)["backups"]
    assert fresh == {"set_up": False, "recipients": 0, "counter": 0, "templates": False}
    _lock_with_backup(tmp_path / "other")
    assert limen(d, "link", "recovery-key", "--as", "Olga").exit_code == 0
    assert limen(d, "link", "backup-templates", "on", "--as", "Olga").exit_code == 0
    assert limen(d, "link", "backup").exit_code == 0
    after = json.loads(limen(d, "--json", "status").output)["backups"]
    assert after == {"set_up": True, "recipients": 1, "counter": 1, "templates": True}
    assert "templates INCLUDED" in limen(d, "status").output
