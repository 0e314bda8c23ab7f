"""End-to-end-encrypted backups: the format, restore onto a replacement lock, revocations, refusals, erasure."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from limen import thresholds
from limen.access import pins, rows
from limen.access.attempt import Attempt, RfidEntry, Source
from limen.access.model import CredentialType, PermissionLevel, UserStatus
from limen.access.offline import CodeKind
from limen.audit.chain import canonical
from limen.audit.keys import SigningKey, public_b64
from limen.config import load_settings
from limen.db import open_db
from limen.door import SimulatedLock
from limen.errors import BadRequest
from limen.link.backup import (
    Backups,
    Recipient,
    RecipientKind,
    Revoked,
    digest,
    new_recovery_key,
    open_backup,
    parse_recovery_key,
    raw_public,
    read_header,
    restore_key,
    seal_backup,
    unwrap_key,
    verify_origin,
)
from limen.link.commands import Action, Command, DeviceRegistry, SignedCommand, sign
from limen.link.execute import LinkCommands, Outcome, for_runtime, seal_reply, verify_receipt
from limen.runtime import Runtime, open_runtime

OWNER_PIN, MAX_PIN, NEW_OWNER_PIN = "246813", "135792", "975312"
SIGNER = SigningKey(Ed25519PrivateKey.generate())  # a lock's audit key, for the format tests


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thresholds, "PIN_ARGON2_MEMORY_KIB", 64)
    monkeypatch.setattr(thresholds, "PIN_ARGON2_TIME_COST", 1)


@dataclass
class Lock:
    """A lock opened through its runtime (real vault, audit log, database), with the owner's phone paired."""

    rt: Runtime
    link: LinkCommands
    backups: Backups
    phone: Ed25519PrivateKey
    phone_x: X25519PrivateKey
    owner: str
    counter: int = 0
    codes: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.rt.settings.device_id

    def command(self, action: Action, *, signer: Ed25519PrivateKey | None = None, counter: int | None = None,
                lock: str | None = None, **args: str) -> SignedCommand:
        self.counter = counter if counter is not None else self.counter + 1
        cmd = Command(lock or self.id, action, self.counter, datetime.now(UTC) + timedelta(seconds=60), "phone",
                      args)
        return sign(cmd, signer or self.phone)

    def send(self, signed: SignedCommand) -> Outcome:
        return self.link.handle(signed.to_bytes(), datetime.now(UTC))

    def keypad(self, typed: str) -> bool:
        accepted = self.rt.controller.keypad(typed).accepted
        self.rt.controller.lock()
        return accepted

    def users(self) -> list[str]:
        return sorted(r[0] for r in self.rt.conn.execute("SELECT name FROM users"))

    def close(self) -> None:
        self.rt.close()


def open_lock(root: Path, lock_id: str, phone: Ed25519PrivateKey, phone_x: X25519PrivateKey,
              owner_pin: str = OWNER_PIN, backup_key: bool = True) -> Lock:
    """A lock whose owner Olga was added in person and paired her phone (a fresh replacement lock too); with
    `backup_key`, the phone's X25519 key is registered as a backup recipient too."""
    settings = load_settings(root, device_id=lock_id)
    rt = open_runtime(settings, door=SimulatedLock(travel_s=0.0))
    at = datetime.now(UTC)
    store = rt.access()
    owner = store.add_user("Olga", "", at, pin=owner_pin, permission=PermissionLevel.OWNER).user_id
    store.set_config(owner, at, require_pin_for_remote=False)
    DeviceRegistry(rt.conn).pair("phone", phone.public_key(), owner, owner, at)
    link = for_runtime(rt)
    assert link.eraser is not None
    backups = link.eraser.backups
    if backup_key:
        backups.add_recipient("phone", RecipientKind.DEVICE, phone_x.public_key(), owner, at)
    return Lock(rt, link, backups, phone, phone_x, owner)


@pytest.fixture
def lock(tmp_path: Path) -> Iterator[Lock]:
    lk = open_lock(tmp_path / "front", "front-door", Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
    at = datetime.now(UTC)
    store = lk.rt.access()
    store.add_user("Max", lk.owner, at, pin=MAX_PIN)
    code, grant = store.issue_code(CodeKind.LIMITED, lk.owner, at, hours=24)
    lk.codes[grant.code_id] = "*" + code  # typed with a star
    yield lk
    lk.close()


def restore_command(target: Lock, blob: bytes, *, from_lock: str, phone_x: X25519PrivateKey,
                    origin: Lock | None = None, **extra: str) -> SignedCommand:
    """What the owner's phone does: unwrap K with its key, seal K to the target lock's restore key, sign
    (naming the audit key it pinned for `origin`, the lock the backup was made on, when that is another)."""
    _, content_key = unwrap_key(blob, phone_x)
    lock_key = restore_key(target.rt.settings.keys_dir).public_key()
    if origin is not None:
        extra = {"from_lock_key": public_b64(origin.rt.audit.key.public), **extra}
    args = {"backup": digest(blob), "key": seal_reply(lock_key, content_key), "from_lock": from_lock, **extra}
    return target.command(Action.RESTORE, **args).attach(blob)


# ------------------------------------------------------------------------------------------ the format


def test_every_recipient_opens_and_nothing_else_does() -> None:
    phone, laptop, stranger = X25519PrivateKey.generate(), X25519PrivateKey.generate(), X25519PrivateKey.generate()
    printed, recovery_pub = new_recovery_key()
    at = datetime(2026, 3, 2, tzinfo=UTC)
    blob = seal_backup(b'{"secret": "rows"}', "front-door", 7, at,
                       [Recipient("phone", RecipientKind.DEVICE, phone.public_key()),
                        Recipient("laptop", RecipientKind.DEVICE, laptop.public_key()),
                        Recipient("recovery", RecipientKind.RECOVERY, recovery_pub)], SIGNER)
    for key in (phone, laptop, parse_recovery_key(printed.lower())):
        header, content_key = unwrap_key(blob, key)
        assert open_backup(blob, content_key) == (header, b'{"secret": "rows"}')
    assert (header.lock, header.counter, header.created_at) == ("front-door", 7, at.isoformat())
    assert b"rows" not in blob
    with pytest.raises(BadRequest, match="not encrypted to this key"):
        unwrap_key(blob, stranger)


def test_altered_truncated_or_rebound_blobs_are_refused() -> None:
    phone = X25519PrivateKey.generate()
    blob = seal_backup(b"payload" * 100, "front-door", 3, datetime.now(UTC),
                       [Recipient("phone", RecipientKind.DEVICE, phone.public_key())], SIGNER)
    _, content_key = unwrap_key(blob, phone)
    flipped = bytearray(blob)
    flipped[-70] ^= 1  # in the ciphertext (the last 64 bytes are the signature)
    with pytest.raises(BadRequest, match="altered"):
        open_backup(bytes(flipped), content_key)
    with pytest.raises(BadRequest, match="truncated|altered"):
        open_backup(blob[:-20], content_key)
    with pytest.raises(BadRequest, match="truncated"):
        read_header(blob[:10])
    rebound = blob.replace(b'"counter":3', b'"counter":9')  # a newer-looking header on old contents
    with pytest.raises(BadRequest):
        unwrap_key(rebound, phone)
    with pytest.raises(BadRequest):
        open_backup(rebound, content_key)
    with pytest.raises(BadRequest, match="not a Limen backup"):
        read_header(b"X" * 200)
    huge = seal_backup(b"x", "front-door", 2**40, datetime.now(UTC), [Recipient("p", "device", phone.public_key())],
                       SIGNER)
    with pytest.raises(BadRequest, match="malformed header"):  # a counter no database column holds
        read_header(huge)
    with pytest.raises(BadRequest, match="recovery key"):
        parse_recovery_key("not-a-key")


def test_the_blob_holds_no_plaintext(lock: Lock) -> None:
    _, blob = lock.backups.make(datetime.now(UTC))
    pin_hash = lock.rt.conn.execute("SELECT secret FROM access_credentials WHERE cred_type = 'pin'").fetchone()[0]
    for needle in (b"Olga", b"Max", bytes(pin_hash), base64.b64encode(bytes(pin_hash)), lock.owner.encode()):
        assert needle not in blob
    assert read_header(blob).lock == "front-door"


def test_no_backup_without_a_recipient(tmp_path: Path) -> None:
    conn = open_db(tmp_path / "limen.db")
    backups = Backups(conn, "front-door", tmp_path / "keys", tmp_path / "backups")
    with pytest.raises(BadRequest, match="no recipient"):
        backups.make(datetime.now(UTC))
    conn.close()


# ------------------------------------------------------------------------------------------ restore


def test_restore_onto_a_replacement_lock_brings_people_pins_and_codes_back(lock: Lock, tmp_path: Path) -> None:
    _, blob = lock.backups.make(datetime.now(UTC))
    code_id, code = next(iter(lock.codes.items()))
    assert lock.keypad(MAX_PIN) and lock.keypad(code)
    lock.rt.store.zeroize()  # the old lock was smashed: tamper erase

    new = open_lock(tmp_path / "replacement", "front-door-2", lock.phone, lock.phone_x, owner_pin=NEW_OWNER_PIN)
    try:
        outcome = new.send(restore_command(new, blob, from_lock="front-door", phone_x=lock.phone_x, origin=lock))
        assert outcome.executed, outcome
        assert outcome.data["from_lock"] == "front-door" and outcome.data["users"] == "2"
        assert new.users() == ["Max", "Olga"]
        assert new.keypad(MAX_PIN) and new.keypad(OWNER_PIN) and new.keypad(code)
        assert not new.keypad(NEW_OWNER_PIN)  # the in-person owner row was replaced by the backup's
        unlock = new.send(new.command(Action.UNLOCK))  # the paired phone acts for the restored owner
        assert unlock.executed, unlock
    finally:
        new.close()


def test_a_replacement_lock_backs_up_to_the_same_owner_devices_and_recovery_key(lock: Lock, tmp_path: Path) -> None:
    """Review finding: after the restore the replacement had no backup recipient, so the next erase said
    "fresh_backup: none: no backup key registered".  The backup's signed header names the recipients' public
    keys; the restore registers them again."""
    printed, recovery_public = new_recovery_key()
    lock.backups.add_recipient("recovery", RecipientKind.RECOVERY, recovery_public, lock.owner, datetime.now(UTC))
    _, blob = lock.backups.make(datetime.now(UTC))
    lock.rt.store.zeroize()  # the old lock was smashed: tamper erase
    recovery = parse_recovery_key(printed)
    for private in (lock.phone_x, recovery):  # public halves only: no private key is in the backup
        raw = private.private_bytes_raw()
        assert raw not in blob and raw not in open_backup(blob, unwrap_key(blob, lock.phone_x)[1])[1]

    new = open_lock(tmp_path / "replacement", "front-door-2", lock.phone, lock.phone_x, backup_key=False)
    try:
        assert new.backups.recipients() == []
        outcome = new.send(restore_command(new, blob, from_lock="front-door", phone_x=lock.phone_x, origin=lock))
        assert outcome.executed and outcome.data["backup_recipients_added"] == "2", outcome
        assert [(r.name, r.kind, raw_public(r.public_key)) for r in new.backups.recipients()] == [
            ("phone", "device", raw_public(lock.phone_x.public_key())),
            ("recovery", "recovery", raw_public(recovery_public))]
        _, after = new.backups.make(datetime.now(UTC))
        for private in (lock.phone_x, recovery):
            header, payload = open_backup(after, unwrap_key(after, private)[1])
            assert header.lock == "front-door-2" and json.loads(payload)["lock"] == "front-door-2"
            assert header.counter == 2  # after the restored backup's counter
        erased = new.send(new.command(Action.ERASE, user="Max", scope="person"))
        assert erased.executed and erased.data["fresh_backup"] == "3", erased.data
        assert new.users() == ["Olga"]
        header, _ = unwrap_key(new.backups.dir.joinpath(new.backups.local_files()[-1]["file"]).read_bytes(), recovery)
        assert header.counter == 3
    finally:
        new.close()


def test_a_restore_keeps_the_targets_own_recipients(lock: Lock, tmp_path: Path) -> None:
    """Registered in person on the replacement: its recovery key and a device under the same name stay; the
    backup's other device key is added; a restore of the same lock adds nothing."""
    _, old_recovery = new_recovery_key()
    lock.backups.add_recipient("recovery", RecipientKind.RECOVERY, old_recovery, lock.owner, datetime.now(UTC))
    laptop = X25519PrivateKey.generate()
    lock.backups.add_recipient("laptop", RecipientKind.DEVICE, laptop.public_key(), lock.owner, datetime.now(UTC))
    _, blob = lock.backups.make(datetime.now(UTC))
    same = lock.send(restore_command(lock, blob, from_lock="front-door", phone_x=lock.phone_x))
    assert same.executed and len(lock.backups.recipients()) == 3

    new_phone_x = X25519PrivateKey.generate()
    new = open_lock(tmp_path / "replacement", "front-door-2", lock.phone, new_phone_x)  # "phone", another key
    try:
        _, new_recovery = new_recovery_key()
        new.backups.add_recipient("recovery", RecipientKind.RECOVERY, new_recovery, new.owner, datetime.now(UTC))
        _, content_key = unwrap_key(blob, lock.phone_x)
        restored = new.backups.restore(blob, content_key, datetime.now(UTC), from_lock="front-door",
                                       lock_keys={lock.rt.audit.key.key_id: lock.rt.audit.key.public})
        assert restored.recipients_added == 1 and restored.to_dict()["backup_recipients_added"] == 1
        assert {r.name: raw_public(r.public_key) for r in new.backups.recipients()} == {
            "laptop": raw_public(laptop.public_key()), "phone": raw_public(new_phone_x.public_key()),
            "recovery": raw_public(new_recovery)}
    finally:
        new.close()


def test_a_revoked_code_or_user_is_not_resurrected_by_an_older_backup(lock: Lock, tmp_path: Path) -> None:
    _, old = lock.backups.make(datetime.now(UTC))
    code_id, code = next(iter(lock.codes.items()))
    assert lock.send(lock.command(Action.REVOKE_CODE, code=code_id)).executed
    assert lock.send(lock.command(Action.REVOKE_USER, user="Max")).executed
    assert not lock.keypad(code) and not lock.keypad(MAX_PIN)

    same = lock.send(restore_command(lock, old, from_lock="front-door", phone_x=lock.phone_x))
    assert same.executed, same  # the same lock: its own revocation list applies
    assert not lock.keypad(code) and not lock.keypad(MAX_PIN)

    for name, extra, accepted in (("control", {}, True), ("signed", {"revoked": f"code:{code_id},user:Max"}, False)):
        new = open_lock(tmp_path / name, "front-door-2", lock.phone, lock.phone_x)
        try:
            outcome = new.send(restore_command(new, old, from_lock="front-door", phone_x=lock.phone_x, origin=lock,
                                               **extra))
            assert outcome.executed, outcome
            assert new.keypad(code) is accepted and new.keypad(MAX_PIN) is accepted
        finally:
            new.close()


def test_a_user_disabled_at_the_console_is_not_re_enabled_by_an_older_backup(lock: Lock) -> None:
    _, old = lock.backups.make(datetime.now(UTC))
    lock.rt.access().set_status("Max", UserStatus.DISABLED, lock.owner, datetime.now(UTC))  # not through the link
    assert not lock.keypad(MAX_PIN)
    restored = lock.send(restore_command(lock, old, from_lock="front-door", phone_x=lock.phone_x))
    assert restored.executed and restored.data["revoked_users"] == "1", restored
    assert not lock.keypad(MAX_PIN) and lock.keypad(OWNER_PIN)


def test_a_newer_backup_carries_the_revocations(lock: Lock, tmp_path: Path) -> None:
    code_id, code = next(iter(lock.codes.items()))
    assert lock.send(lock.command(Action.REVOKE_CODE, code=code_id)).executed
    _, newer = lock.backups.make(datetime.now(UTC))
    new = open_lock(tmp_path / "n", "front-door-2", lock.phone, lock.phone_x)
    try:
        assert new.send(restore_command(new, newer, from_lock="front-door", phone_x=lock.phone_x, origin=lock)).executed
        assert not new.keypad(code) and new.keypad(MAX_PIN)
    finally:
        new.close()


def test_forged_replayed_foreign_and_damaged_restores_are_refused_and_nothing_changes(
        lock: Lock, tmp_path: Path) -> None:
    _, blob = lock.backups.make(datetime.now(UTC))
    new = open_lock(tmp_path / "replacement", "front-door-2", lock.phone, lock.phone_x, owner_pin=NEW_OWNER_PIN)
    try:
        before = new.users()
        forged = restore_command(new, blob, from_lock="front-door", phone_x=lock.phone_x, origin=lock)
        forged = SignedCommand(forged.body, Ed25519PrivateKey.generate().sign(b"limen-command-v1\0" + forged.body),
                               forged.attachment)
        other = restore_command(new, blob, from_lock="back-door", phone_x=lock.phone_x, origin=lock)
        swapped = restore_command(new, blob, from_lock="front-door", phone_x=lock.phone_x, origin=lock)
        swapped = swapped.attach(blob[:-1] + bytes([blob[-1] ^ 1]))  # the cloud sends different bytes
        _, content_key = unwrap_key(blob, lock.phone_x)
        wrong_key = new.command(Action.RESTORE, backup=digest(blob), from_lock="front-door",
                                key=seal_reply(X25519PrivateKey.generate().public_key(), content_key)).attach(blob)
        cases = {"bad_signature": forged, "another lock": other, "not the one the owner signed": swapped,
                 "restore key": wrong_key}
        for reason, signed in cases.items():
            outcome = new.send(signed)
            assert not outcome.executed and reason in outcome.reason, (reason, outcome)
            assert new.users() == before and new.keypad(NEW_OWNER_PIN)
        good = restore_command(new, blob, from_lock="front-door", phone_x=lock.phone_x, origin=lock)
        assert new.send(good).executed
        replay = new.send(good)
        assert not replay.executed and replay.reason == "replayed"
        records = [r for r in new.rt.audit.records() if r["kind"] == "remote_command"]
        assert sum(r["outcome"] == "refused" for r in records) == 5
    finally:
        new.close()


def test_a_backup_the_cloud_made_for_the_owners_phone_is_refused(lock: Lock, tmp_path: Path) -> None:
    """The cloud reads every recipient's public key in the headers it stores, so it can encrypt a blob of its
    own making to the owner's phone (its own owner, PIN pepper and offline-code secrets) and list it as the
    newest backup; the phone unwraps it fine.  Only the lock's signature tells the two apart."""
    now = datetime.now(UTC)
    payload = json.loads(lock.backups.snapshot(now))
    payload["tables"]["users"] = [u for u in payload["tables"]["users"] if u["name"] == "Olga"]
    cloud = SigningKey(Ed25519PrivateKey.generate())
    planted = seal_backup(canonical(payload), "front-door", 50, now, lock.backups.recipients(), cloud)
    unwrap_key(planted, lock.phone_x)  # the phone cannot tell
    same = lock.send(restore_command(lock, planted, from_lock="front-door", phone_x=lock.phone_x))
    assert not same.executed and "not signed by a known audit key" in same.reason, same
    assert lock.users() == ["Max", "Olga"]
    real = seal_backup(canonical(payload), "front-door", 51, now, lock.backups.recipients(), lock.rt.audit.key)
    assert verify_origin(real, {lock.rt.audit.key.key_id: lock.rt.audit.key.public}).counter == 51
    impostor = SimpleNamespace(key_id=lock.rt.audit.key.key_id, private=cloud.private)  # names the lock's key
    resigned = seal_backup(canonical(payload), "front-door", 52, now, lock.backups.recipients(), impostor)  # type: ignore[arg-type]
    new = open_lock(tmp_path / "replacement", "front-door-2", lock.phone, lock.phone_x, owner_pin=NEW_OWNER_PIN)
    try:
        for blob, why in ((planted, "not signed by a known audit key"), (resigned, "does not verify")):
            for origin in (lock, None):
                outcome = new.send(restore_command(new, blob, from_lock="front-door", phone_x=lock.phone_x,
                                                   origin=origin))
                assert not outcome.executed and ("not signed by" if origin is None else why) in outcome.reason
        assert new.users() == ["Olga"] and new.keypad(NEW_OWNER_PIN)
    finally:
        new.close()


def test_an_unsigned_version_1_backup_is_refused() -> None:
    phone = X25519PrivateKey.generate()
    blob = seal_backup(b"x", "front-door", 3, datetime.now(UTC), [Recipient("p", "device", phone.public_key())],
                       SIGNER)
    downgraded = blob[:8] + b"\x01" + blob[9:-64]
    with pytest.raises(BadRequest, match="format version 1"):
        read_header(downgraded)


# ------------------------------------------------------------------------------------------ erasure


def test_delete_me_erases_the_person_and_every_local_backup_with_a_signed_receipt(lock: Lock) -> None:
    path, old = lock.backups.make(datetime.now(UTC))
    max_id = lock.rt.access().user("Max").user_id
    finger = lock.rt.settings.data_dir / "fingerprints" / f"{max_id}.fmr"  # a sealed reference file (contents moot)
    finger.parent.mkdir()
    finger.write_bytes(b"sealed")
    outcome = lock.send(lock.command(Action.ERASE, user="Max", scope="person"))
    assert outcome.executed, outcome
    statement = verify_receipt(outcome.data["receipt"], lock.rt.audit.key.public)
    erased = statement["erased"]["lock"]
    assert statement["scope"] == "person" and statement["user"] == max_id
    assert erased["person"] == 1 and erased["credentials"] == 1 and erased["local_backups"] == 1
    assert erased["fingerprint_references"] == 1 and not finger.exists()
    assert statement["backups_through"] == 1 and outcome.data["fresh_backup"] == "2"
    assert [b["counter"] for b in lock.backups.local_files()] == [2]  # a new backup, without Max
    assert lock.users() == ["Olga"] and not path.exists() and not lock.keypad(MAX_PIN)
    restored = lock.send(restore_command(lock, old, from_lock="front-door", phone_x=lock.phone_x))
    assert restored.executed and lock.users() == ["Olga"]  # the older backup does not bring Max back
    last = lock.send(lock.command(Action.ERASE, user="Olga", scope="person"))
    assert not last.executed and "decommission" in last.reason


def test_delete_me_unpairs_the_persons_devices(lock: Lock) -> None:
    max_id = lock.rt.access().user("Max").user_id
    DeviceRegistry(lock.rt.conn).pair("max-phone", Ed25519PrivateKey.generate().public_key(), max_id, lock.owner,
                                      datetime.now(UTC))
    outcome = lock.send(lock.command(Action.ERASE, user="Max", scope="person"))
    assert outcome.executed, outcome
    assert verify_receipt(outcome.data["receipt"], lock.rt.audit.key.public)["erased"]["lock"]["paired_devices"] == 1
    assert [d.name for d in DeviceRegistry(lock.rt.conn).paired()] == ["phone"]


def test_an_erasure_that_fails_part_way_changes_nothing(lock: Lock, monkeypatch: pytest.MonkeyPatch) -> None:
    """The packages' repositories write inside the eraser's one transaction: a failure in the last one (the
    link's devices) leaves the person, their access rows and credentials, and the revocation list as they were."""
    import limen.privacy.erase as erase
    from limen.link.execute import lock_eraser

    max_id = lock.rt.access().user("Max").user_id
    eraser = lock_eraser(lock.rt)

    def broken(conn: object, owner: str | None = None) -> int:
        raise RuntimeError("link table unavailable")

    monkeypatch.setattr(erase, "forget_devices", broken)
    with pytest.raises(RuntimeError):
        eraser.erase_person(max_id, lock.owner, datetime.now(UTC))
    assert lock.users() == ["Max", "Olga"] and lock.keypad(MAX_PIN)
    assert max_id not in eraser.backups.revoked().erased
    with pytest.raises(RuntimeError):
        eraser.decommission(lock.owner, datetime.now(UTC))
    assert lock.users() == ["Max", "Olga"] and eraser.backups.recipients()


def test_decommission_erases_the_lock(lock: Lock) -> None:
    path, _ = lock.backups.make(datetime.now(UTC))
    outcome = lock.send(lock.command(Action.DECOMMISSION))
    assert outcome.executed, outcome
    statement = verify_receipt(outcome.data["receipt"], lock.rt.audit.key.public)
    assert statement["scope"] == "lock" and statement["user"] == "*"
    assert statement["erased"]["lock"] == {"vault_zeroized": 1, "fingerprint_references": 0, "people": 2,
                                           "credentials": 3, "backup_keys": 1, "paired_devices": 1,
                                           "local_backups": 1}
    assert lock.users() == [] and not path.exists() and lock.rt.store.status().state == "erased"
    after = lock.send(lock.command(Action.UNLOCK))
    assert not after.executed and after.reason == "unknown_device"


def test_the_recovery_key_restores_without_any_device(lock: Lock, tmp_path: Path) -> None:
    printed, public = new_recovery_key()
    lock.backups.add_recipient("recovery", RecipientKind.RECOVERY, public, lock.owner, datetime.now(UTC))
    _, blob = lock.backups.make(datetime.now(UTC))
    assert {w.kind for w in read_header(blob).wraps} == {"device", "recovery"}
    assert raw_public(public) in {w.public_key for w in read_header(blob).wraps}
    _, content_key = unwrap_key(blob, parse_recovery_key(printed))
    new = open_lock(tmp_path / "r", "front-door-2", Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
    try:
        pinned = {lock.rt.audit.key.key_id: lock.rt.audit.key.public}
        with pytest.raises(BadRequest, match="not signed by a known audit key"):  # the old lock's key not named
            new.backups.restore(blob, content_key, datetime.now(UTC), from_lock="front-door")
        with pytest.raises(BadRequest, match="another lock"):
            new.backups.restore(blob, content_key, datetime.now(UTC), from_lock="front-door-2", lock_keys=pinned)
        restored = new.backups.restore(blob, content_key, datetime.now(UTC), from_lock="front-door",
                                       lock_keys=pinned)
        assert restored.rows["users"] == 2 and new.backups.pepper_replaced
    finally:
        new.close()
    reopened = open_runtime(new.rt.settings, door=SimulatedLock(travel_s=0.0))  # as `limen link restore` leaves it
    try:
        assert reopened.controller.keypad(MAX_PIN).accepted
    finally:
        reopened.close()


def test_a_restore_that_fails_halfway_changes_nothing(lock: Lock) -> None:
    now = datetime.now(UTC)
    payload = json.loads(lock.backups.snapshot(now))
    payload["tables"]["users"].append(payload["tables"]["users"][0])  # the same person twice: fails mid-way
    blob = seal_backup(canonical(payload), "front-door", 99, now, lock.backups.recipients(), lock.rt.audit.key)
    _, content_key = unwrap_key(blob, lock.phone_x)
    before = lock.users()
    with pytest.raises(BadRequest, match="inconsistent rows"):
        lock.backups.restore(blob, content_key, now, from_lock="front-door")
    assert lock.users() == before and lock.keypad(MAX_PIN) and lock.keypad(next(iter(lock.codes.values())))
    payload["tables"]["users"].pop()
    payload["revoked"]["users"] = 5  # not a list: malformed, refused whole
    odd = seal_backup(canonical(payload), "front-door", 100, now, lock.backups.recipients(), lock.rt.audit.key)
    with pytest.raises(BadRequest, match="malformed contents"):
        lock.backups.restore(odd, unwrap_key(odd, lock.phone_x)[1], now, from_lock="front-door")
    payload["revoked"]["users"] = []
    payload["schemas"]["access"] += 1  # made by a newer Limen (older ones: tests/link/test_backup_schemas.py)
    newer = seal_backup(canonical(payload), "front-door", 100, now, lock.backups.recipients(), lock.rt.audit.key)
    with pytest.raises(BadRequest, match="made by newer software"):
        lock.backups.restore(newer, unwrap_key(newer, lock.phone_x)[1], now, from_lock="front-door")
    assert lock.users() == before


def test_a_scheduled_backup_is_due_once_a_period(lock: Lock, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    assert lock.backups.due(now, 24) and not lock.backups.due(now, 0)
    lock.backups.make(now)
    assert not lock.backups.due(now + timedelta(hours=23), 24) and lock.backups.due(now + timedelta(hours=24), 24)
    keyless = Backups(open_db(tmp_path / "other.db"), "x", tmp_path / "keys", tmp_path / "b")
    assert not keyless.due(now, 24)  # nobody could open it: none is made
    keyless.conn.close()


def test_an_attachment_rides_only_on_a_restore_and_only_up_to_the_limit(lock: Lock) -> None:
    unlock = lock.send(lock.command(Action.UNLOCK).attach(b"LIMENBAK"))
    assert not unlock.executed and "only a restore carries one" in unlock.reason
    big = lock.command(Action.RESTORE, backup="0" * 64, key="x").attach(bytes(thresholds.LINK_MAX_BACKUP_BYTES + 1))
    refused = lock.send(big)
    assert not refused.executed and refused.reason == "oversized"
    assert lock.users() == ["Max", "Olga"] and lock.rt.controller.door.is_locked


def test_a_credential_revoked_or_a_pin_changed_on_the_lock_is_not_resurrected_by_an_older_backup(lock: Lock) -> None:
    """Revoked at the console (or with its API token), or a PIN changed because it leaked: the backup made before
    still holds the credential, and restoring it left it opening the door."""
    _, old = lock.backups.make(datetime.now(UTC))
    store, at = lock.rt.access(), datetime.now(UTC)
    max_id = store.user("Max").user_id
    store.revoke_credential(next(c.id for c in store.credentials(max_id) if c.type.value == "pin"), lock.owner, at)
    store.change_pin("Olga", NEW_OWNER_PIN, lock.owner, at)
    assert not lock.keypad(MAX_PIN) and not lock.keypad(OWNER_PIN) and lock.keypad(NEW_OWNER_PIN)
    restored = lock.send(restore_command(lock, old, from_lock="front-door", phone_x=lock.phone_x))
    assert restored.executed, restored
    assert not lock.keypad(MAX_PIN) and not lock.keypad(OWNER_PIN)  # both refused still
    assert lock.users() == ["Max", "Olga"] and lock.keypad(next(iter(lock.codes.values())))  # the rest is back


def test_an_offline_code_secret_revoked_on_the_lock_stays_revoked_after_an_older_backup(lock: Lock) -> None:
    """A restore seals each offline-code secret again under this lock's vault (a fresh nonce: other bytes), so
    matching the revoked credential by its stored secret never found it, and every code it issued opened again."""
    _, old = lock.backups.make(datetime.now(UTC))
    store, at = lock.rt.access(), datetime.now(UTC)
    secret_id = next(c.id for c in store.credentials(lock.owner) if c.type.value == "offline_code")
    store.revoke_credential(secret_id, lock.owner, at)
    code = next(iter(lock.codes.values()))
    assert not lock.keypad(code)
    restored = lock.send(restore_command(lock, old, from_lock="front-door", phone_x=lock.phone_x))
    assert restored.executed, restored
    assert next(c for c in lock.rt.access().credentials(lock.owner) if c.id == secret_id).revoked
    assert not lock.keypad(code) and lock.keypad(OWNER_PIN)  # refused still; the rest is back


def test_a_card_or_offline_code_secret_removed_on_the_lock_stays_gone_after_an_older_backup(lock: Lock) -> None:
    """Removed (deleted, not revoked) at the console: the row left no trace, so the backup made before brought the
    card and the secret (with every code it issued) back, opening the door."""
    store, at = lock.rt.access(), datetime.now(UTC)
    card = store.add_credential("Max", CredentialType.RFID, lock.owner, at, secret="04A1B2C3")
    _, old = lock.backups.make(datetime.now(UTC))
    secret_id = next(c.id for c in store.credentials(lock.owner) if c.type is CredentialType.OFFLINE_CODE)
    code = next(iter(lock.codes.values()))
    assert lock_opens_for_card(lock, "04A1B2C3") and lock.keypad(code)
    store.remove_credential(card.id, lock.owner, at)
    store.remove_credential(secret_id, lock.owner, at)
    assert not lock_opens_for_card(lock, "04A1B2C3") and not lock.keypad(code)
    restored = lock.send(restore_command(lock, old, from_lock="front-door", phone_x=lock.phone_x))
    assert restored.executed, restored
    back = {c.id: c for c in lock.rt.access().credentials()}
    assert back[card.id].revoked and back[secret_id].revoked
    assert not lock_opens_for_card(lock, "04A1B2C3") and not lock.keypad(code)  # refused still
    assert lock.users() == ["Max", "Olga"] and lock.keypad(OWNER_PIN) and lock.keypad(MAX_PIN)  # the rest is back


def test_a_card_removed_on_the_smashed_lock_stays_refused_on_the_replacement_with_the_owners_list(
        lock: Lock, tmp_path: Path) -> None:
    """The replacement lock has no trace of a removal made on the old one after the backup: only the owner's signed
    list (`credential:<id>`) keeps the card refused there; the control shows the old backup would bring it back."""
    store, at = lock.rt.access(), datetime.now(UTC)
    card = store.add_credential("Max", CredentialType.RFID, lock.owner, at, secret="04A1B2C3")
    _, old = lock.backups.make(datetime.now(UTC))
    store.remove_credential(card.id, lock.owner, at)
    for name, extra, opens in (("control", {}, True), ("signed", {"revoked": f"credential:{card.id}"}, False)):
        new = open_lock(tmp_path / name, "front-door-2", lock.phone, lock.phone_x)
        try:
            outcome = new.send(restore_command(new, old, from_lock="front-door", phone_x=lock.phone_x, origin=lock,
                                               **extra))
            assert outcome.executed, outcome
            assert outcome.data["revoked_credentials"] == ("0" if opens else "1")
            assert lock_opens_for_card(new, "04A1B2C3") is opens
            assert new.keypad(MAX_PIN)  # the rest of Max is back
        finally:
            new.close()


def test_a_malformed_revocation_list_refuses_the_restore() -> None:
    assert Revoked.parse(" user:Max , code:c1,credential:k9 ") == Revoked(
        frozenset({"Max"}), frozenset({"c1"}), credentials=frozenset({"k9"}))
    for bad in ("card:k9", "credential:", "credential: ", "k9"):
        with pytest.raises(BadRequest, match="credential:<id>"):
            Revoked.parse(bad)


def lock_opens_for_card(lock: Lock, uid: str) -> bool:
    accepted = lock.rt.controller.attempt(Attempt((RfidEntry(uid),), Source.RFID_READER)).accepted
    lock.rt.controller.lock()
    return accepted


def test_an_old_format_pin_changed_on_the_lock_is_not_resurrected_by_an_older_backup(lock: Lock) -> None:
    """An old-format PIN hash (lock-wide salt) is rewritten when the PIN is typed, so the PIN history holds the new
    hash while the backup made before holds the old one: a changed PIN matched by its stored secret alone came back."""
    store, at = lock.rt.access(), datetime.now(UTC)
    max_id = store.user("Max").user_id
    conn = store.conn
    legacy = pins.hash_pin(MAX_PIN, rows.lock_salt(conn))
    conn.execute("UPDATE access_credentials SET secret = ? WHERE user_id = ? AND cred_type = 'pin'", (legacy, max_id))
    _, old = lock.backups.make(datetime.now(UTC))
    assert lock.keypad(MAX_PIN)  # typed: the hash is rewritten in the new format
    assert not pins.needs_upgrade(bytes(conn.execute("SELECT secret FROM access_credentials WHERE user_id = ? AND "
                                                     "cred_type = 'pin'", (max_id,)).fetchone()[0]))
    store.change_pin("Max", "864213", lock.owner, at)  # it leaked
    assert not lock.keypad(MAX_PIN)
    restored = lock.send(restore_command(lock, old, from_lock="front-door", phone_x=lock.phone_x))
    assert restored.executed, restored
    assert not lock.keypad(MAX_PIN)  # refused still
    assert lock.users() == ["Max", "Olga"] and lock.keypad(OWNER_PIN)  # the rest is back
