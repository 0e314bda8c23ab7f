"""Removing a backup key: by an owner, with its device, when its person is no longer an owner or is erased; no
restore registers it again; a restore keeps a demotion (review 2, findings 1 and 2)."""

from __future__ import annotations

import base64
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from limen import thresholds
from limen.access.model import PermissionLevel, UserStatus
from limen.db import migrate, open_db
from limen.errors import BadRequest, NotFound
from limen.link.backup import MIGRATIONS, Backups, RecipientKind, Removal, unwrap_key
from limen.link.commands import Action, Command, DeviceRegistry, sign
from limen.link.schema import MIGRATIONS as LINK_MIGRATIONS
from tests.cli.test_access_cli import OWNER_PIN, limen
from tests.link.test_backup import Lock, open_lock, restore_command


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thresholds, "PIN_ARGON2_MEMORY_KIB", 64)
    monkeypatch.setattr(thresholds, "PIN_ARGON2_TIME_COST", 1)


def _with_eve(lock: Lock) -> tuple[str, X25519PrivateKey]:
    """A co-owner Eve whose phone is paired and registered as a backup key."""
    at = datetime.now(UTC)
    eve = lock.rt.access().add_user("Eve", lock.owner, at, pin="7154329", permission=PermissionLevel.OWNER).user_id
    eve_x = X25519PrivateKey.generate()
    DeviceRegistry(lock.rt.conn).pair("eve-phone", Ed25519PrivateKey.generate().public_key(), eve, lock.owner, at)
    lock.backups.add_recipient("eve-phone", RecipientKind.DEVICE, eve_x.public_key(), lock.owner, at)
    return eve, eve_x


def _names(lock: Lock) -> list[str]:
    return [r.name for r in lock.backups.recipients()]


def _locked_out(blob: bytes, key: X25519PrivateKey) -> bool:
    with pytest.raises(BadRequest, match="not encrypted to this key"):
        unwrap_key(blob, key)
    return True


def _audited_removals(lock: Lock) -> list[dict[str, object]]:
    return [r["data"] for r in lock.rt.audit.records() if r.get("reason") == "backup recipient removed"]


def test_erasing_a_co_owner_removes_her_backup_key(tmp_path: Path) -> None:
    lock = open_lock(tmp_path / "front", "front-door", Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
    try:
        eve, eve_x = _with_eve(lock)
        registered = {r["name"]: r for r in lock.backups.registered()}
        assert registered["eve-phone"]["person"] == eve and registered["eve-phone"]["device"] == "eve-phone"
        erased = lock.link.eraser.erase_person(eve, lock.owner, datetime.now(UTC))  # type: ignore[union-attr]
        assert erased["backup_keys"] == 1 and _names(lock) == ["phone"]
        row = lock.rt.conn.execute("SELECT * FROM backup_removed_keys").fetchone()
        assert eve not in tuple(row) and "eve-phone" not in tuple(row)  # a hash of the key, not her name or id
        _, blob = lock.backups.make(datetime.now(UTC))
        assert _locked_out(blob, eve_x)
        unwrap_key(blob, lock.phone_x)  # the remaining owner's phone still opens it
    finally:
        lock.close()


def test_a_demoted_or_disabled_owners_key_is_removed_before_the_next_backup(tmp_path: Path) -> None:
    lock = open_lock(tmp_path / "front", "front-door", Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
    try:
        store, at = lock.rt.access(), datetime.now(UTC)
        eve, eve_x = _with_eve(lock)
        zoe = store.add_user("Zoe", lock.owner, at, pin="8264031", permission=PermissionLevel.OWNER).user_id
        zoe_x = X25519PrivateKey.generate()
        lock.backups.add_recipient("zoe-laptop", RecipientKind.DEVICE, zoe_x.public_key(), zoe, at)  # not paired
        store.modify_user(eve, lock.owner, at, permission=PermissionLevel.MEMBER)
        store.set_status(zoe, UserStatus.DISABLED, lock.owner, at)
        _, blob = lock.backups.make(datetime.now(UTC))
        assert _locked_out(blob, eve_x) and _locked_out(blob, zoe_x)
        assert _names(lock) == ["phone"]
        assert sorted((d["recipient"], d["why"]) for d in _audited_removals(lock)) == [
            ("eve-phone", Removal.NOT_AN_OWNER.value), ("zoe-laptop", Removal.NOT_AN_OWNER.value)]
    finally:
        lock.close()


def test_a_device_unpaired_without_the_cli_loses_its_key_before_the_next_backup(tmp_path: Path) -> None:
    lock = open_lock(tmp_path / "front", "front-door", Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
    try:
        _, eve_x = _with_eve(lock)
        DeviceRegistry(lock.rt.conn).unpair("eve-phone")  # Eve stays an owner; her lost phone is unpaired
        _, blob = lock.backups.make(datetime.now(UTC))
        assert _locked_out(blob, eve_x)
        assert [d["why"] for d in _audited_removals(lock)] == [Removal.DEVICE_UNPAIRED.value]
    finally:
        lock.close()


def test_no_restore_registers_a_removed_key_again(tmp_path: Path) -> None:
    lock = open_lock(tmp_path / "front", "front-door", Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
    try:
        _, eve_x = _with_eve(lock)
        _, older = lock.backups.make(datetime.now(UTC))  # encrypted to Eve's phone
        removed = lock.backups.remove_recipient("eve-phone", lock.owner, datetime.now(UTC))
        assert (removed.name, removed.reason) == ("eve-phone", Removal.BY_OWNER)
        with pytest.raises(NotFound):
            lock.backups.remove_recipient("eve-phone", lock.owner, datetime.now(UTC))
        out = lock.send(restore_command(lock, older, from_lock="front-door", phone_x=lock.phone_x))
        assert out.executed and out.data["backup_recipients_kept_removed"] == "1", out
        assert _names(lock) == ["phone"]  # the older backup's header names her key: not registered again
        _, newer = lock.backups.make(datetime.now(UTC))
        assert _locked_out(newer, eve_x)

        new = open_lock(tmp_path / "replacement", "front-door-2", lock.phone, lock.phone_x, backup_key=False)
        try:  # a replacement lock restoring the newer backup learns the removed list with it
            _, content_key = unwrap_key(older, lock.phone_x)
            keys = {lock.rt.audit.key.key_id: lock.rt.audit.key.public}
            _, newer_key = unwrap_key(newer, lock.phone_x)
            restored = new.backups.restore(newer, newer_key, datetime.now(UTC), from_lock="front-door",
                                           lock_keys=keys)
            assert restored.recipients_added == 1 and _names(new) == ["phone"]
            again = new.backups.restore(older, content_key, datetime.now(UTC), from_lock="front-door",
                                        lock_keys=keys)
            assert again.recipients_kept_removed == 1 and _names(new) == ["phone"]
        finally:
            new.close()
    finally:
        lock.close()


def test_a_restore_keeps_a_demotion_made_since_the_backup(tmp_path: Path) -> None:
    lock = open_lock(tmp_path / "front", "front-door", Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
    try:
        at = datetime.now(UTC)
        store = lock.rt.access()
        eve = store.add_user("Eve", lock.owner, at, pin="7154329", permission=PermissionLevel.OWNER).user_id
        eve_phone = Ed25519PrivateKey.generate()
        DeviceRegistry(lock.rt.conn).pair("eve-phone", eve_phone.public_key(), eve, lock.owner, at)
        _, blob = lock.backups.make(at)
        store.modify_user(eve, lock.owner, at, permission=PermissionLevel.MEMBER)
        out = lock.send(restore_command(lock, blob, from_lock="front-door", phone_x=lock.phone_x))
        assert out.executed and out.data["kept_lower_permissions"] == "1", out
        assert store.user(eve).permission is PermissionLevel.MEMBER
        cmd = Command("front-door", Action.UNLOCK, 1, datetime.now(UTC) + timedelta(seconds=60), "eve-phone")
        unlock = lock.link.handle(sign(cmd, eve_phone).to_bytes(), datetime.now(UTC))
        assert not unlock.executed  # a member's phone does not open remotely
        _, content_key = unwrap_key(blob, lock.phone_x)
        again = lock.backups.restore(blob, content_key, datetime.now(UTC), from_lock="front-door")
        assert again.lowered_permissions == 1 and again.to_dict()["kept_lower_permissions"] == 1
        assert store.user(eve).permission is PermissionLevel.MEMBER
        assert store.user(lock.owner).permission is PermissionLevel.OWNER
    finally:
        lock.close()


def test_keys_registered_before_the_migration_are_given_their_person_and_device(tmp_path: Path) -> None:
    conn = open_db(tmp_path / "limen.db")
    try:
        migrate(conn, "link", LINK_MIGRATIONS)
        migrate(conn, "link_backup", MIGRATIONS[:2])
        raw = X25519PrivateKey.generate().public_key().public_bytes_raw()
        conn.execute("INSERT INTO link_devices(name, public_key, owner, counter, paired_at, paired_by) "
                     "VALUES ('eve-phone', ?, 'eve-id', 0, '2026-01-01', 'olga-id')", (raw,))
        rows = [("eve-phone", "device", b"\1" * 32, "olga-id"), ("laptop", "device", b"\2" * 32, "olga-id"),
                ("old", "device", b"\3" * 32, "restore:front-door")]
        conn.executemany("INSERT INTO backup_recipients VALUES (?, ?, ?, '2026-01-01', ?)", rows)
        backups = Backups(conn, "front-door", tmp_path / "keys", tmp_path / "backups")
        assert {r["name"]: (r["person"], r["device"]) for r in backups.registered()} == {
            "eve-phone": ("eve-id", "eve-phone"), "laptop": ("olga-id", None), "old": (None, None)}
    finally:
        conn.close()


def test_the_cli_removes_a_key_and_says_what_older_backups_still_open(tmp_path: Path) -> None:
    d = tmp_path / "lock"
    assert limen(d, "users", "add", "Olga", new_pin=OWNER_PIN).exit_code == 0
    for name in ("olga-phone", "olga-laptop"):
        pub = base64.b64encode(X25519PrivateKey.generate().public_key().public_bytes_raw()).decode()
        assert limen(d, "link", "backup-key", name, "--public-key", pub, "--as", "Olga").exit_code == 0
    device = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    (tmp_path / "phone.pub").write_bytes(device)
    assert limen(d, "link", "pair-device", "olga-phone", "--public-key", str(tmp_path / "phone.pub"),
                 "--as", "Olga").exit_code == 0
    wrong = limen(d, "link", "backup-key-remove", "olga-laptop", "--as", "Olga", actor_pin="000000")
    assert wrong.exit_code != 0
    removed = limen(d, "link", "backup-key-remove", "olga-laptop", "--as", "Olga")
    assert removed.exit_code == 0, removed.output
    assert "stays readable" in removed.output and "limen credentials revoke offline_code:" in removed.output
    unpaired = limen(d, "--json", "link", "unpair", "olga-phone", "--as", "Olga")
    assert unpaired.exit_code == 0 and json.loads(unpaired.output)["backup_keys_removed"] == ["olga-phone"]
    listed = json.loads(limen(d, "--json", "link", "backup-keys").output)
    assert listed["keys"] == [] and [r["reason"] for r in listed["removed"]] == [
        Removal.BY_OWNER.value, Removal.DEVICE_UNPAIRED.value]
    tail = json.loads(limen(d, "--json", "audit", "tail", "-n", "10").output)
    assert [r["subject"] for r in tail if r["reason"] == "backup recipient removed"] == [
        "backup-key:olga-laptop", "backup-key:olga-phone"]
    with sqlite3.connect(d / "limen.db") as db:
        assert db.execute("SELECT count(*) FROM backup_recipients").fetchone()[0] == 0


def test_decommission_forgets_the_removed_list_too(tmp_path: Path) -> None:
    lock = open_lock(tmp_path / "front", "front-door", Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
    try:
        _with_eve(lock)
        lock.backups.remove_recipient("eve-phone", lock.owner, datetime.now(UTC))
        assert len(lock.backups.removed_keys()) == 1
        erased = lock.link.eraser.decommission(lock.owner, datetime.now(UTC))  # type: ignore[union-attr]
        assert erased["backup_keys"] == 1 and lock.backups.removed_keys() == [] and _names(lock) == []
    finally:
        lock.close()
